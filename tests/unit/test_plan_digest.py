"""The plan digest: what approvals are bound to and ``apply_runs`` records."""

from __future__ import annotations

import dataclasses
from concurrent.futures import Future

import pytest

from reconciler.commands.planning import plan_digest
from tests.unit.render.sample_plans import many_tenants_plan, mixed_plan


def test_locations_do_not_change_the_digest() -> None:
    """``plan`` adds lines (and deletions' files) that apply does not look up again: an
    approval of the saved plan must still count for the changes apply derives."""
    plan = mixed_plan()
    located = dataclasses.replace(
        plan,
        changes=tuple(
            dataclasses.replace(c, source="manifests/tenants/x/stripe.yaml", line=7)
            for c in plan.changes
        ),
    )
    assert plan_digest(located) == plan_digest(plan)


def test_any_change_to_what_is_applied_changes_the_digest() -> None:
    plan = mixed_plan()
    fewer = dataclasses.replace(plan, changes=plan.changes[1:])
    assert plan_digest(fewer) != plan_digest(plan)


def test_the_digest_is_the_hash_of_the_changes_json() -> None:
    """Computed a change at a time, the digest is still the SHA-256 of the JSON list of the
    changes (sorted keys, locations left out): digests recorded and approved by earlier
    releases keep matching."""
    import hashlib
    import json

    for plan in (mixed_plan(), dataclasses.replace(mixed_plan(), changes=())):
        body = json.dumps(
            [
                {k: v for k, v in c.to_dict().items() if k not in ("source", "line")}
                for c in plan.changes
            ],
            sort_keys=True,
        ).encode()
        assert plan_digest(plan) == hashlib.sha256(body).hexdigest()


def test_a_large_plans_digest_is_made_by_a_forked_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from reconciler.commands import apply_audit

    monkeypatch.setattr(apply_audit, "FORK_MIN_CHANGES", 1)
    plan, other = mixed_plan(), many_tenants_plan(3)
    with apply_audit.PlanDigests() as digests:
        digests.start(plan)
        assert isinstance(digests._find(plan), Future)  # being made elsewhere
        assert digests.of(plan) == plan_digest(plan)
        assert digests._find(plan) == plan_digest(plan)  # kept: made once
        assert digests.of(other) == plan_digest(other)  # never started: made here


def test_a_digest_whose_process_fails_is_made_here(monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.commands import apply_audit

    def lost(_plan: object) -> None:
        """The process starts without its plan: its digest fails there."""

    monkeypatch.setattr(apply_audit, "FORK_MIN_CHANGES", 1)
    monkeypatch.setattr(apply_audit, "_inherit", lost)
    plan = mixed_plan()
    with apply_audit.PlanDigests() as digests:
        digests.start(plan)
        started = digests._find(plan)
        assert isinstance(started, Future)
        assert isinstance(started.exception(), AssertionError)  # failed in that process
        assert digests.of(plan) == plan_digest(plan)


def test_a_small_plans_digest_is_made_here() -> None:
    from reconciler.commands.apply_audit import PlanDigests

    plan = mixed_plan()
    with PlanDigests() as digests:
        digests.start(plan)
        assert digests._find(plan) is None
        assert digests.of(plan) == plan_digest(plan)


def test_authorizing_a_plan_nothing_in_which_needs_approval_needs_no_digest() -> None:
    """A fleet-wide digest costs seconds: it is made only to look approvals up."""
    from reconciler.commands.apply_checks import authorize_plan
    from reconciler.settings import Settings

    def no_digest(_plan: object) -> str:
        raise AssertionError("digest computed")

    auth, _, missing = authorize_plan(
        None,  # type: ignore[arg-type]  # no approvals to look up: never connects
        many_tenants_plan(3),
        Settings(),
        author="a",
        performer="a",
        allow_risk=None,
        digest_of=no_digest,
    )
    assert missing is None and not auth.needed
