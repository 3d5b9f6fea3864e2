"""A saved plan's risk, review flags and breakers are claims that apply re-derives, not trusts."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.workspace import Workspace, stripe_manifest


def _deletion_plan(ws: Workspace) -> dict[str, Any]:
    """Apply one tenant, remove its file and save the (CRITICAL, mass-deletion) plan."""
    ws.write("acme", "stripe", stripe_manifest("acme"))
    assert ws.run("apply", "--auto-approve").returncode == 0
    ws.remove("acme", "stripe")
    made = ws.run("plan", "--prune", "--out", "plan.json", "--quiet")
    assert made.returncode == 0, made.stderr
    plan: dict[str, Any] = json.loads((ws.root / "plan.json").read_text())
    assert {c["risk"]["level"] for c in plan["changes"]} == {"CRITICAL"}
    assert plan["mass_deletions"]
    return plan


def _relabel_low(plan: dict[str, Any]) -> None:
    """What an attacker with write access to the plan file would do: call it all harmless."""
    for change in plan["changes"]:
        change["risk"] = {"level": "LOW", "requires_review": False, "reasons": []}
    plan["mass_deletions"] = []
    plan["summary"]["by_risk"] = {"LOW": len(plan["changes"]), "MEDIUM": 0, "HIGH": 0}
    plan["summary"]["by_risk"]["CRITICAL"] = 0
    plan["summary"]["requires_review"] = 0
    plan["summary"]["mass_deletions"] = 0


def _only_review_flag(plan: dict[str, Any]) -> None:
    plan["changes"][0]["risk"]["requires_review"] = False


def _only_breakers(plan: dict[str, Any]) -> None:
    plan["mass_deletions"] = []


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (_relabel_low, "risk LOW recorded, CRITICAL derived"),
        (_only_review_flag, "requires_review False recorded, True derived"),
        (_only_breakers, "mass deletions differ (acme)"),
    ],
)
def test_edited_judgement_is_refused(
    ws: Workspace, edit: Callable[[dict[str, Any]], None], named: str
) -> None:
    plan = _deletion_plan(ws)
    edit(plan)
    (ws.root / "plan.json").write_text(json.dumps(plan))
    before = ws.snapshot()

    # Even with every permission given, an edited plan is not applied.
    result = ws.run(
        "apply", "plan.json", "--auto-approve", "--allow-risk", "critical", "--allow-mass-deletion"
    )

    assert result.returncode == 3, result.stdout + result.stderr
    assert named in result.stderr
    assert "Traceback" not in result.stderr
    assert ws.snapshot() == before


def test_untouched_plan_is_gated_by_derived_risk_and_audited_with_it(ws: Workspace) -> None:
    _deletion_plan(ws)
    before = ws.snapshot()

    blocked = ws.run("apply", "plan.json", "--auto-approve")
    assert blocked.returncode == 4, blocked.stdout + blocked.stderr
    assert ws.snapshot() == before

    allowed = ws.run(
        "apply", "plan.json", "--auto-approve", "--allow-risk", "critical", "--allow-mass-deletion"
    )
    assert allowed.returncode == 0, allowed.stderr
    rows = ws.sql(
        "SELECT DISTINCT risk_level::text, requires_review FROM configuration_audit_logs "
        "WHERE action = 'DELETE'"
    )
    assert rows == [("CRITICAL", True)]


def test_plan_file_with_wrong_shapes_is_one_line(ws: Workspace) -> None:
    plan = _deletion_plan(ws)
    plan["changes"][0]["risk"] = ["LOW"]
    (ws.root / "plan.json").write_text(json.dumps(plan))
    result = ws.run("apply", "plan.json", "--auto-approve")
    assert result.returncode == 1
    assert "not a reconciler plan file" in result.stderr
    assert "Traceback" not in result.stderr
