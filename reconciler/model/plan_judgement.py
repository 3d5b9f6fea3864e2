"""A plan's judgement of its own changes, and a plan read back from a file with the one it records.

Apply derives the judgement again and compares it with the recorded one (see ``Judgement``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.model.plan import MassDeletion, Plan


@dataclass(frozen=True, slots=True)
class Judgement:
    """What a plan says about its own changes: risk, review flags and tripped breakers.

    A plan derives its judgement from its changes; a saved plan only *records* one. Apply
    derives the judgement again and compares it with the recorded one, so an edited file
    (a CRITICAL deletion relabelled LOW, an emptied breaker list) is refused, never obeyed.

    Attributes:
        changes: per change ``(address, level, requires_review, ((code, level), ...))``.
        mass_deletions: per breaker ``(tenant, deleting, total, whole_tenant, kind)``, sorted.
        by_risk: number of changes per risk level, as in the plan summary.
        requires_review: number of changes marked for review, as in the plan summary.
    """

    changes: tuple[tuple[str, str, bool, tuple[tuple[str, str], ...]], ...]
    mass_deletions: tuple[tuple[str, int, int, bool, str], ...]
    by_risk: tuple[tuple[str, int], ...]
    requires_review: int

    @classmethod
    def of(cls, plan: Plan) -> Judgement:
        """The judgement ``plan`` derives from its changes."""
        return cls.recorded_in(plan.to_dict())

    @classmethod
    def recorded_in(cls, d: dict[str, Any]) -> Judgement:
        """The judgement a plan document records, as written (never re-derived)."""
        summary = d.get("summary") or {}
        return cls(
            changes=tuple(
                (
                    str(c["address"]),
                    str(c["risk"]["level"]),
                    c["risk"].get("requires_review") is True,
                    tuple((str(r["code"]), str(r["level"])) for r in c["risk"]["reasons"]),
                )
                for c in d["changes"]
            ),
            mass_deletions=tuple(
                sorted(
                    (
                        str(m["tenant"]),
                        int(m["deleting"]),
                        int(m["total"]),
                        bool(m["whole_tenant"]),
                        str(m.get("kind", MassDeletion.OBJECTS)),
                    )
                    for m in d.get("mass_deletions", ())
                )
            ),
            by_risk=tuple(sorted((str(k), int(v)) for k, v in summary.get("by_risk", {}).items())),
            requires_review=int(summary.get("requires_review", -1)),
        )


@dataclass(frozen=True, slots=True)
class SavedPlan:
    """A plan read back from a file: the plan, and the judgement the file records for it."""

    plan: Plan
    recorded: Judgement

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SavedPlan:
        return cls(Plan.from_dict(d), Judgement.recorded_in(d))
