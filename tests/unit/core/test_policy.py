"""check_policy: the gate between a plan and apply, as pure code on a plan."""

from __future__ import annotations

from dataclasses import replace

import pytest

from reconciler.core.planner import build_plan
from reconciler.core.policy import check_policy
from reconciler.core.risk import RiskPolicy
from reconciler.errors import PolicyViolation
from reconciler.model.actual import ActualState
from reconciler.model.enums import RiskLevel
from reconciler.model.plan import MassDeletion, Plan
from tests.unit.core.builders import integration, state, webhook


def _create_plan() -> Plan:
    desired = state(integration(), webhook())
    return build_plan(
        desired, ActualState(), policy=RiskPolicy(), created_at="2026-01-01T00:00:00Z"
    )


def test_changes_within_the_allowed_risk_pass() -> None:
    check_policy(_create_plan(), allow_risk=RiskLevel.MEDIUM, allow_mass_deletion=False)


def test_changes_above_the_allowed_risk_are_listed() -> None:
    with pytest.raises(PolicyViolation) as caught:
        check_policy(_create_plan(), allow_risk=RiskLevel.LOW, allow_mass_deletion=False)
    lines = str(caught.value).splitlines()
    assert lines[0] == "blocked by policy; nothing written"
    assert lines[1] == "2 change(s) above the allowed risk LOW (allow with --allow-risk medium):"
    assert lines[2].startswith("  + acme/stripe/production/integration")


def test_breakers_need_their_own_permission() -> None:
    p = replace(
        Plan(created_at="2026-01-01T00:00:00Z", manifests_digest="", actual_fingerprint=""),
        mass_deletions=(
            MassDeletion("acme", 3, 4, False),
            MassDeletion("beta", 2, 2, True, MassDeletion.TOKENS),
        ),
    )
    with pytest.raises(PolicyViolation) as caught:
        check_policy(p, allow_risk=RiskLevel.CRITICAL, allow_mass_deletion=False)
    assert str(caught.value).splitlines()[1:] == [
        "mass deletion (allow with --allow-mass-deletion):",
        "  tenant acme: 3 of 4 objects",
        "mass revocation of OAuth tokens (allow with --allow-mass-revocation):",
        "  tenant beta: 2 of 2 active tokens (whole tenant removed)",
    ]
    with pytest.raises(PolicyViolation, match="mass revocation"):
        check_policy(p, allow_risk=RiskLevel.CRITICAL, allow_mass_deletion=True)
    check_policy(
        p, allow_risk=RiskLevel.CRITICAL, allow_mass_deletion=True, allow_mass_revocation=True
    )
