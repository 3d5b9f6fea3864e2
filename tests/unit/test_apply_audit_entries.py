"""The audit entries apply writes: a change's ``changes`` and ``risk_reasons`` read as views
are the same mapping and list as those built for it."""

from __future__ import annotations

from reconciler.commands.apply_audit import _audit_entry
from reconciler.core.planner import build_plan
from reconciler.core.risk import RiskPolicy
from reconciler.model.actual import ActualState
from reconciler.store.jsonb_text import jsonb_text
from tests.unit.core.builders import integration, state, webhook


def test_a_lazy_entry_has_the_changes_of_the_built_one() -> None:
    desired = state(integration(), webhook(), integration(tenant="beta", sync_interval=60))
    plan = build_plan(desired, ActualState(), policy=RiskPolicy(), created_at="t")
    extras = [{}, {"authorization": {"approvals": 2, "allow_risk": None}, "remediation": True}]
    for extra in extras:
        for change in plan.changes:
            built = _audit_entry(change, 7, extra)
            lazy = _audit_entry(change, 7, extra, lazy=True)
            assert dict(lazy.changes) == built.changes
            assert list(lazy.changes) == list(built.changes)
            assert len(lazy.changes) == len(built.changes)
            assert jsonb_text(dict(lazy.changes)) == jsonb_text(built.changes)
            assert list(lazy.risk_reasons) == built.risk_reasons
            assert len(lazy.risk_reasons) == len(built.risk_reasons)
            assert lazy.risk_reasons[:1] == built.risk_reasons[:1]
