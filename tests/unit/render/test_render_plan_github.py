"""GitHub workflow commands: one annotation per change, levels by risk, escaping."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from reconciler.model.enums import Platform, RiskLevel
from reconciler.model.plan import Action, Change, FieldChange, Plan, ResourceKind, Risk
from reconciler.render.plan_github import escape_data, escape_property, render_github
from tests.unit.render.sample_plans import (
    CREATED_AT,
    DIGEST,
    FINGERPRINT,
    addr,
    empty_plan,
    mixed_plan,
)


def test_golden(golden: Callable[[str, str], None]) -> None:
    golden("github_mixed.txt", render_github(mixed_plan()))


def test_one_command_per_change_breaker_and_notice() -> None:
    lines = render_github(mixed_plan()).splitlines()
    assert len(lines) == 5 + 1 + 2
    assert all(line.startswith("::") for line in lines)


@pytest.mark.parametrize(
    ("level", "command"),
    [
        (RiskLevel.LOW, "notice"),
        (RiskLevel.MEDIUM, "notice"),
        (RiskLevel.HIGH, "warning"),
        (RiskLevel.CRITICAL, "error"),
    ],
)
def test_command_follows_risk(level: RiskLevel, command: str) -> None:
    change = Change(
        addr("acme", Platform.STRIPE, ResourceKind.WEBHOOK, "w"),
        Action.UPDATE,
        fields=(FieldChange("retry", 1, 2),),
        risk=Risk(level),
        source="manifests/tenants/acme/stripe.yaml",
    )
    out = render_github(Plan(CREATED_AT, DIGEST, FINGERPRINT, changes=(change,)))
    assert out.startswith(
        f"::{command} file=manifests/tenants/acme/stripe.yaml,"
        "title=update acme/stripe/production/webhook/w::"
        f"Risk {level.value}"
    )
    assert out.endswith("%0A~ retry: 1 → 2\n")


def test_mass_deletion_is_an_error() -> None:
    out = render_github(mixed_plan())
    assert (
        "::error title=Mass deletion in tenant globex::mass deletion in tenant globex: 1 of 1"
        in out
    )


def test_change_without_source_has_no_file() -> None:
    out = render_github(mixed_plan())
    assert "::warning title=delete globex/hubspot/sandbox/webhook/legacy::" in out


def test_escaping_follows_github_rules() -> None:
    assert escape_data("50%\r\nnext: a,b") == "50%25%0D%0Anext: a,b"
    assert escape_property("a%b:c,d\r\n") == "a%25b%3Ac%2Cd%0D%0A"


def test_values_cannot_break_out_of_their_command() -> None:
    change = Change(
        addr("acme", Platform.STRIPE, ResourceKind.WEBHOOK, "w"),
        Action.UPDATE,
        fields=(FieldChange("endpoint_url", "a", "b"),),
        reason="x\n::error::forged 100%",
        source="dir,with:odd/na%me.yaml",
    )
    out = render_github(Plan(CREATED_AT, DIGEST, FINGERPRINT, changes=(change,)))
    assert out.count("\n") == 1
    assert "file=dir%2Cwith%3Aodd/na%25me.yaml," in out
    # The text plan already shows the newline as \n; escaping would have caught a raw one.
    assert "# x\\n::error::forged 100%25" in out


def test_empty_plan_has_no_commands() -> None:
    assert render_github(empty_plan()) == ""
