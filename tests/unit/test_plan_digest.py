"""The plan digest: what approvals are bound to and ``apply_runs`` records."""

from __future__ import annotations

import dataclasses

from reconciler.commands.planning import plan_digest
from tests.unit.render.sample_plans import mixed_plan


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
