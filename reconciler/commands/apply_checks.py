"""The checks ``apply`` makes before it writes: approvals, a saved plan's claim, moved rows.

Each refuses with a typed error (:class:`~reconciler.errors.PlanStale`, or what is missing
for :class:`~reconciler.errors.ApprovalRequired`); ``commands/applying.py`` decides when.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from reconciler.commands.planning import plan_digest
from reconciler.core.approval import (
    Authorization,
    approval_message,
    count_approvals,
    needing_approval,
)
from reconciler.core.planner import judgement_difference
from reconciler.crypto.fingerprint import Fingerprinter
from reconciler.errors import PlanStale
from reconciler.model.actual import ActualState
from reconciler.model.enums import RiskLevel
from reconciler.model.plan import Plan, Selectors
from reconciler.model.plan_judgement import Judgement, SavedPlan
from reconciler.settings import Settings
from reconciler.store.approvals import approvals_for
from reconciler.store.read import read_actual_state
from reconciler.store.session import Connection


def authorize_plan(
    conn: Connection,
    p: Plan,
    settings: Settings,
    *,
    author: str | None,
    performer: str,
    allow_risk: RiskLevel | None,
    digest_of: Callable[[Plan], str] = plan_digest,
) -> tuple[Authorization, RiskLevel, str | None]:
    """How ``p`` is authorized, the risk level that allows, and what is missing (if anything).

    Missing: changes need approvals, there are not enough, and no explicit ``allow_risk``
    covers them (break-glass). The risk level is then the plan's highest, so that the policy
    gate reports only what approvals cannot lift (the breakers) beside it. ``digest_of``
    makes the plan's digest (:func:`plan_digest`, or the caller's memo of it); it is called
    only when some change needs approval (a fleet-wide digest costs seconds).
    """
    gated = needing_approval(p, settings.approval_level)
    if not gated:
        return Authorization(0), RiskLevel.LOW, None
    found = approvals_for(conn, [digest_of(p)])
    auth = count_approvals(
        ((a.id, a.approved_by, a.plan_author) for a in found),
        needed=settings.approvals_required,
        author=author,
        performer=performer,
    )
    highest = max(c.risk.level for c in gated)
    top = max(c.risk.level for c in p.changes)
    if auth.approved:
        return auth, top, None
    if allow_risk is not None and allow_risk >= highest:
        return replace(auth, break_glass=True), RiskLevel.LOW, None
    return auth, top, approval_message(gated, auth, settings.approval_level, author)


def replan_under_lock(
    conn: Connection,
    saved_plan: SavedPlan | None,
    confirm: Callable[[Plan], bool] | None,
    replan: Callable[[ActualState], Plan],
    selectors: Selectors,
    fingerprint: Fingerprinter,
    gate: Callable[[Plan], None],
) -> Plan:
    """The rows moved while we waited for the lock: refuse, or re-plan and re-gate.

    A saved plan, or one a person approved, is refused as stale (what was reviewed is not
    what would be written); an auto-approved plan is re-made against the new state.
    """
    if saved_plan is not None:
        raise PlanStale("the database changed since the plan was made; make a new plan")
    if confirm is not None:
        raise PlanStale(
            "the database changed while waiting; run apply again to review the new plan"
        )
    fresh = replan(read_actual_state(conn, selectors, fingerprint))
    gate(fresh)
    return fresh


def check_saved_plan_matches(saved: SavedPlan, fresh: Plan) -> None:
    """Refuse (exit 3) a saved plan that is not what apply derives now, naming the difference."""
    if saved.plan.read_set != fresh.read_set:
        raise PlanStale("the database changed since the plan was made; make a new plan")

    def shape(p: Plan) -> list[tuple[str, str, list[dict[str, Any]]]]:
        return [
            (str(c.address), c.action.value, [f.to_dict() for f in c.fields]) for c in p.changes
        ]

    if shape(saved.plan) != shape(fresh):
        raise PlanStale(
            "the saved plan no longer matches the manifests and database; make a new plan"
        )
    difference = judgement_difference(saved.recorded, Judgement.of(fresh))
    if difference is not None:
        raise PlanStale(
            f"the saved plan's risk judgement does not match its changes ({difference}); "
            "it was edited or made under another risk policy; make a new plan"
        )
