"""judgement_difference: the first disagreement between a recorded and a derived judgement."""

from __future__ import annotations

from reconciler.core.planner import judgement_difference
from reconciler.model.plan_judgement import Judgement

ADDRESS = "acme/stripe/production/webhook/billing"


def judgement(
    level: str = "CRITICAL", review: bool = True, codes: tuple[str, ...] = ("DELETE",)
) -> Judgement:
    return Judgement(
        changes=((ADDRESS, level, review, tuple((c, level) for c in codes)),),
        mass_deletions=(("acme", 1, 1, True, "delete"),),
        by_risk=(("CRITICAL", 1),),
        requires_review=1,
    )


def test_equal_judgements_have_no_difference() -> None:
    assert judgement_difference(judgement(), judgement()) is None


def test_each_kind_of_difference_is_named() -> None:
    derived = judgement()
    assert judgement_difference(judgement(level="LOW"), derived) == (
        f"{ADDRESS}: risk LOW recorded, CRITICAL derived"
    )
    assert "requires_review False recorded" in str(
        judgement_difference(judgement(review=False), derived)
    )
    assert "risk reasons [none] recorded, [DELETE] derived" in str(
        judgement_difference(judgement(codes=()), derived)
    )
    no_breaker = Judgement(derived.changes, (), derived.by_risk, derived.requires_review)
    assert judgement_difference(no_breaker, derived) == "mass deletions differ (acme)"
    counts = Judgement(derived.changes, derived.mass_deletions, (("LOW", 1),), 0)
    assert (
        judgement_difference(counts, derived) == "the summary's risk counts differ from its changes"
    )
