"""The policy verdict a plan carries: what apply would refuse, and the flag that allows it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from reconciler.commands.show import show
from reconciler.core.policy import check_policy, policy_verdict, rederive_policy, with_policy
from reconciler.errors import PolicyViolation
from reconciler.model.enums import RiskLevel
from reconciler.model.plan import Plan
from reconciler.model.plan_policy import PolicyBlock
from tests.unit.render.sample_plans import empty_plan, mixed_plan


def test_verdict_names_each_block_and_the_flag_that_allows_it() -> None:
    verdict = policy_verdict(mixed_plan(), allow_risk=RiskLevel.HIGH, allow_mass_deletion=False)
    assert verdict.blocked
    kinds = {b.kind: b.needs for b in verdict.blocks}
    assert kinds[PolicyBlock.RISK] == "--allow-risk critical"
    assert kinds[PolicyBlock.MASS_DELETION] == "--allow-mass-deletion"


def test_flags_clear_the_verdict() -> None:
    verdict = policy_verdict(
        mixed_plan(),
        allow_risk=RiskLevel.CRITICAL,
        allow_mass_deletion=True,
        allow_mass_revocation=True,
    )
    assert not verdict.blocked
    assert not policy_verdict(
        empty_plan(), allow_risk=RiskLevel.LOW, allow_mass_deletion=False
    ).blocked


def test_check_policy_and_verdict_agree() -> None:
    plan = mixed_plan()
    verdict = policy_verdict(plan, allow_risk=RiskLevel.HIGH, allow_mass_deletion=False)
    with pytest.raises(PolicyViolation) as raised:
        check_policy(plan, allow_risk=RiskLevel.HIGH, allow_mass_deletion=False)
    for block in verdict.blocks:
        assert f"{block.summary} (allow with {block.needs}):" in str(raised.value)


def test_verdict_round_trips_and_is_rederived_not_trusted(tmp_path: Path) -> None:
    plan = with_policy(mixed_plan(), allow_risk=RiskLevel.HIGH, allow_mass_deletion=False)
    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
    assert rederive_policy(plan) == (plan, False)
    assert plan.policy is not None
    edited = dataclasses.replace(plan, policy=dataclasses.replace(plan.policy, blocks=()))
    assert rederive_policy(edited) == (plan, True)

    path = tmp_path / "plan.json"
    path.write_text(json.dumps(edited.to_dict()))
    shown = show(path)
    assert shown.plan.policy == plan.policy
    assert any("recorded policy verdict does not match" in w for w in shown.warnings)


def test_show_refuses_what_is_not_a_plan(tmp_path: Path) -> None:
    from reconciler.errors import ConfigError

    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ConfigError, match="not a reconciler plan file"):
        show(tmp_path / "x.json")
    with pytest.raises(ConfigError, match="plan file not found"):
        show(tmp_path / "missing.json")
