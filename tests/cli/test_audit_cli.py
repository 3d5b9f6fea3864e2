"""``reconciler audit list | pending | review | summary | verify`` through click's CliRunner."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from reconciler.cli.main import cli
from reconciler.model.enums import AuditAction, EntityType, RiskLevel
from reconciler.store.audit import AuditContext, AuditEntry, append_audit_entries

CONTEXT = AuditContext("alice", "192.0.2.7", "reconciler/test", "s1")


def _entry(tenant: str, risk: RiskLevel, name: str) -> AuditEntry:
    return AuditEntry(
        tenant_id=tenant,
        entity_type=EntityType.WEBHOOK_CONFIGURATION,
        entity_id=1,
        entity_address=f"{tenant}/stripe/production/webhook/{name}",
        action=AuditAction.UPDATE,
        changes={"signing_secret": {"before": "(sensitive)", "after": "(sensitive, changed)"}},
        risk_level=risk,
        risk_reasons=[{"code": "SECRET_CHANGED", "level": risk.value, "message": "m"}],
        requires_review=risk.requires_review,
    )


@pytest.fixture
def seeded(database_url: str, engine: sa.Engine) -> dict[str, str]:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        append_audit_entries(
            conn,
            [
                _entry("acme", RiskLevel.LOW, "a"),
                _entry("acme", RiskLevel.CRITICAL, "b"),
                _entry("globex", RiskLevel.HIGH, "c"),
                _entry("globex", RiskLevel.MEDIUM, "d"),
            ],
            CONTEXT,
            now=now - timedelta(days=2),
        )
        append_audit_entries(conn, [_entry("acme", RiskLevel.LOW, "e")], CONTEXT, now=now)
    return {"RECONCILER_DATABASE_URL": database_url}


def _run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["audit", *args], env=env)
    return result.exit_code, result.output


def test_list_text_and_filters(seeded: dict[str, str]) -> None:
    code, out = _run(seeded, "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "ID",
        "TIME",
        "(UTC)",
        "TENANT",
        "ACTION",
        "RISK",
        "REVIEW",
        "BY",
        "ADDRESS",
    ]
    assert len(lines) == 6 and lines[1].split()[-1] == "acme/stripe/production/webhook/e"
    _, out = _run(seeded, "list", "--risk", "high")
    assert [line.split()[3] for line in out.splitlines()[1:]] == ["globex", "acme"]
    _, out = _run(seeded, "list", "--since", "1d")
    assert len(out.splitlines()) == 2
    _, out = _run(seeded, "list", "--tenant", "globex", "--format", "json")
    data = json.loads(out)
    assert [d["entity_address"].rsplit("/", 1)[1] for d in data] == ["d", "c"]
    assert data[1]["review_status"] == "PENDING" and data[1]["risk_reasons"][0]["code"]
    code, out = _run(seeded, "list", "--since", "yesterday")
    assert code == 1 and "--since 'yesterday'" in out


def test_pending_review_flow(seeded: dict[str, str]) -> None:
    _, out = _run(seeded, "pending", "--format", "json")
    pending = json.loads(out)
    assert [(p["tenant_id"], p["risk_level"]) for p in pending] == [
        ("acme", "CRITICAL"),
        ("globex", "HIGH"),
    ]
    target = pending[0]
    code, out = _run(
        seeded,
        "review",
        str(target["id"]),
        "--tenant",
        "acme",
        "--decision",
        "reject",
        "--by",
        "carol",
        "--note",
        "not approved in change board",
    )
    assert code == 0 and "REJECTED by carol" in out
    code, out = _run(
        seeded,
        "review",
        str(target["id"]),
        "--tenant",
        "acme",
        "--decision",
        "approve",
        "--by",
        "dan",
    )
    assert code == 1 and "already reviewed: REJECTED by carol" in out
    code, out = _run(
        seeded,
        "review",
        str(target["id"]),
        "--tenant",
        "globex",
        "--decision",
        "approve",
        "--by",
        "dan",
    )
    assert code == 1 and "no audit row" in out
    _, out = _run(seeded, "pending", "--tenant", "acme")
    assert out.strip() == "No changes await review."
    _, out = _run(seeded, "pending")
    assert "globex" in out and "PENDING" in out
    # The id alone is enough (ids are unique across tenants), as `audit review ID` promises.
    code, out = _run(
        seeded, "review", str(pending[1]["id"]), "--decision", "approve", "--by", "eve"
    )
    assert code == 0 and "APPROVED by eve" in out


def test_summary(seeded: dict[str, str]) -> None:
    _, out = _run(seeded, "summary", "--format", "json")
    rows = json.loads(out)
    assert sum(r["count"] for r in rows) == 5
    # Newest day first; within a day, the highest risk first.
    assert rows[0]["risk_level"] == "LOW" and rows[0]["count"] == 1
    assert [r["risk_level"] for r in rows[1:]] == ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
    _, text = _run(seeded, "summary", "--days", "1")
    assert text.splitlines()[0].split() == ["DATE", "ENTITY", "ACTION", "RISK", "COUNT"]
    assert len(text.splitlines()) == 2


def test_verify_intact_then_broken(seeded: dict[str, str], engine: sa.Engine) -> None:
    code, out = _run(seeded, "verify")
    assert code == 0 and "Audit chain intact: 5 row(s), 2 tenant(s) checked." in out
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE configuration_audit_logs DISABLE TRIGGER USER"))
        conn.execute(
            sa.text(
                "UPDATE configuration_audit_logs SET risk_level = 'LOW' WHERE risk_level = 'HIGH'"
            )
        )
        conn.execute(sa.text("ALTER TABLE configuration_audit_logs ENABLE TRIGGER USER"))
    code, out = _run(seeded, "verify")
    assert code == 1
    assert out.splitlines()[0].startswith("BROKEN tenant globex at row ")
    assert "(edited)" in out
    code, out = _run(seeded, "verify", "--tenant", "acme", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["intact"] and list(data["heads"]) == ["acme"]
