"""The audit entries apply writes: a change's ``changes`` and ``risk_reasons`` read as views
render as those built for it, and parts shared between changes render as they would alone."""

from __future__ import annotations

from reconciler.commands.apply_audit import _audit_entry
from reconciler.core.planner import build_plan
from reconciler.core.risk import RiskPolicy
from reconciler.model.actual import ActualState
from reconciler.model.plan import Action
from reconciler.store.audit import render_documents
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
            assert list(lazy.changes) == list(built.changes)
            assert len(lazy.changes) == len(built.changes)
            assert jsonb_text(dict(lazy.changes)) == jsonb_text(built.changes)
            assert jsonb_text(list(lazy.risk_reasons)) == jsonb_text(list(built.risk_reasons))
            assert len(lazy.risk_reasons) == len(built.risk_reasons)
            assert jsonb_text(lazy.risk_reasons[:1]) == jsonb_text(built.risk_reasons[:1])


def test_shared_parts_render_as_the_plain_dicts_do() -> None:
    """Field changes and reasons are rendered once and reused; the text of every entry is
    still that of its own dicts, with values equal across types kept apart."""
    import math

    import pytest

    from reconciler.model.enums import RiskLevel
    from reconciler.model.plan import Address, Change, FieldChange, Risk, RiskReason

    some = Address.from_dict(
        {
            "tenant": "t",
            "platform": "STRIPE",
            "environment": "PRODUCTION",
            "kind": "integration",
            "name": "API",
        }
    )
    reason = RiskReason("CREATE", RiskLevel.LOW, "new object")
    for values in ([True, 1, 1.5, "1"], [1, True, None, {"a": [1]}]):
        fields = tuple(FieldChange(f"f{i}", None, v) for i, v in enumerate(values))
        change = Change(some, Action.CREATE, fields, Risk(RiskLevel.LOW, (reason,)))
        entry = _audit_entry(change, 1, {})
        plain = {"fields": [f.to_dict() for f in fields], "reason": change.reason}
        assert jsonb_text(entry.changes) == jsonb_text(plain)
        assert jsonb_text(list(entry.risk_reasons)) == jsonb_text([reason.to_dict()])
    nan = Change(some, Action.CREATE, (FieldChange("f", None, math.nan),), Risk(RiskLevel.LOW))
    with pytest.raises(TypeError, match=r"^audit entry t/stripe/production/integration/API: "):
        render_documents([_audit_entry(nan, 1, {})])
