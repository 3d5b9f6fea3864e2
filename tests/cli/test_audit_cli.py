"""``reconciler audit list | pending | review | summary | verify`` through click's CliRunner."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from reconciler.cli.main import cli
from reconciler.crypto.audit_key import AuditKey
from reconciler.model.enums import AuditAction, EntityType, RiskLevel
from reconciler.store import audit
from reconciler.store.audit import AuditContext, AuditEntry, append_audit_entries

KEY_B64 = base64.b64encode(os.urandom(32)).decode()
CONTEXT = AuditContext(
    "alice", "192.0.2.7", "reconciler/test", "s1", key=AuditKey.from_base64(KEY_B64, source="test")
)


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
    return {"RECONCILER_DATABASE_URL": database_url, "RECONCILER_AUDIT_KEY": KEY_B64}


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
        "SOURCE",
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
    assert code == 0 and "Audit chain intact: 5 row(s), 2 tenant(s) checked;" in out
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


def _owner_recomputes_unkeyed(engine: sa.Engine, tenant: str) -> None:
    """The finding: HIGH turned into LOW, then the chain recomputed with the unkeyed hash."""
    with engine.begin() as conn:
        rows = [
            dict(r._mapping)
            for r in conn.execute(
                sa.text(audit._VERIFY_SELECT + " WHERE tenant_id = :t ORDER BY id"), {"t": tenant}
            )
        ]
        conn.execute(sa.text("ALTER TABLE configuration_audit_logs DISABLE TRIGGER USER"))
        prev = None
        for row in rows:
            if row["risk_level"] in ("HIGH", "CRITICAL"):
                row["risk_level"], row["requires_review"] = "LOW", False
            row["prev_hash"] = prev
            record = dict(row, created_at=row["created_at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
            row["entry_hash"] = prev = audit.entry_hash(record)
            conn.execute(
                sa.text(
                    "UPDATE configuration_audit_logs SET risk_level = CAST(:risk_level AS"
                    " risk_level), requires_review = :requires_review, prev_hash = :prev_hash,"
                    " entry_hash = :entry_hash WHERE tenant_id = :tenant_id AND id = :id"
                ),
                row,
            )
        conn.execute(sa.text("ALTER TABLE configuration_audit_logs ENABLE TRIGGER USER"))


def test_verify_fails_after_the_owner_recomputes_an_unkeyed_chain(
    seeded: dict[str, str], engine: sa.Engine
) -> None:
    _owner_recomputes_unkeyed(engine, "globex")
    code, out = _run(seeded, "pending")
    assert "globex" not in out  # the HIGH change no longer awaits review ...
    code, out = _run(seeded, "verify")
    assert code == 1  # ... and verify says so
    assert "NOT VERIFIED: 2 unkeyed row(s) covered by no keyed row or checkpoint" in out
    assert "Audit chain NOT VERIFIED: 5 row(s)" in out


def test_self_review_is_refused(seeded: dict[str, str]) -> None:
    _, out = _run(seeded, "pending", "--format", "json")
    target = json.loads(out)[0]
    code, out = _run(seeded, "review", str(target["id"]), "--decision", "approve", "--by", "alice")
    assert code == 1
    assert out == (
        f"Error: audit row {target['id']} of tenant acme was performed by alice: "
        "a change must be reviewed by someone else\n"
    )
    _, out = _run(seeded, "pending", "--format", "json")
    assert json.loads(out)[0]["id"] == target["id"]


def test_verify_without_the_key_fails_closed(seeded: dict[str, str]) -> None:
    env = {**seeded, "RECONCILER_AUDIT_KEY": ""}
    code, out = _run(env, "verify")
    assert code == 1
    assert "NOT VERIFIED: 5 keyed row(s) not verified: no audit key" in out
    code, out = _run(env, "verify", "--without-key")
    assert code == 0 and "Audit chain intact: 5 row(s)" in out
    assert "WARNING: keyed verification was skipped" in out
    code, out = _run(env, "review", "1", "--decision", "approve", "--by", "zed")
    assert code == 1 and "set $RECONCILER_AUDIT_KEY to write audit rows" in out


def test_checkpoint_then_truncation_is_caught(
    seeded: dict[str, str], engine: sa.Engine, tmp_path: Path
) -> None:
    path = tmp_path / "audit-checkpoint.json"
    code, out = _run(seeded, "checkpoint", "--out", str(path))
    assert code == 0 and "Checkpoint of 2 tenant chain(s)" in out
    document = json.loads(path.read_text())
    assert document["format"] == "reconciler-audit-checkpoint/v1"
    assert {t: h["rows"] for t, h in document["heads"].items()} == {"acme": 3, "globex": 2}
    code, out = _run(seeded, "verify", "--checkpoint", str(path))
    assert code == 0 and f"intact against checkpoint {path}" in out
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE configuration_audit_logs DISABLE TRIGGER USER"))
        conn.execute(
            sa.text(
                "DELETE FROM configuration_audit_logs WHERE id = "
                "(SELECT max(id) FROM configuration_audit_logs WHERE tenant_id = 'acme')"
            )
        )
        conn.execute(sa.text("ALTER TABLE configuration_audit_logs ENABLE TRIGGER USER"))
    code, out = _run(seeded, "verify")
    assert code == 0  # a shorter chain is a valid chain ...
    code, out = _run(seeded, "verify", "--checkpoint", str(path))
    assert code == 1  # ... but not the one recorded
    assert "BROKEN tenant acme" in out and "(truncated)" in out


def test_checkpoint_of_another_format_is_refused(seeded: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text('{"format": "reconciler-audit-checkpoint/v0", "heads": {}}')
    code, out = _run(seeded, "verify", "--checkpoint", str(path))
    assert code == 1 and out.count("\n") == 1
    assert "is not an audit checkpoint this reconciler reads" in out


def test_review_names_and_notes_are_one_line_and_stored_text_prints_escaped(
    seeded: dict[str, str], engine: sa.Engine
) -> None:
    _, out = _run(seeded, "pending", "--format", "json")
    target = str(json.loads(out)[0]["id"])
    for flag, value in (("--by", "mallory\n::error::forged"), ("--note", "ok\x1b[2J")):
        args = ["review", target, "--decision", "approve", "--by", "carol", flag, value]
        code, out = _run(seeded, *args)
        assert code == 1, out
        assert f"{flag}: " in out and "one line of printable text" in out
        assert "::error::forged" not in out
    # A name stored by another writer of the table prints escaped, never as its own line.
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE configuration_audit_logs DISABLE TRIGGER USER"))
        conn.execute(
            sa.text("UPDATE configuration_audit_logs SET performed_by = :name"),
            {"name": "x\n::error::forged"},
        )
        conn.execute(sa.text("ALTER TABLE configuration_audit_logs ENABLE TRIGGER USER"))
    code, out = _run(seeded, "list")
    assert code == 0
    assert not any(line.startswith("::") for line in out.splitlines())
    assert "x\\n::error::forged" in out


def test_rejected_changes_are_listed_and_fail_the_compliance_check(seeded: dict[str, str]) -> None:
    code, _ = _run(seeded, "pending", "--fail-on-rejected")
    assert code == 0
    _, out = _run(seeded, "pending", "--format", "json")
    target = json.loads(out)[0]
    code, out = _run(seeded, "review", str(target["id"]), "--decision", "reject", "--by", "carol")
    assert code == 0, out
    code, out = _run(seeded, "rejected", "--format", "json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == [target["id"]]
    assert json.loads(out)[0]["reviewed_by"] == "carol"
    code, out = _run(seeded, "pending", "--fail-on-rejected")
    assert code == 1 and "rejected in review" in out
    code, out = _run(seeded, "rejected", "--tenant", "globex")
    assert code == 0 and "No change was rejected" in out


def test_list_by_address(seeded: dict[str, str]) -> None:
    code, out = _run(
        seeded, "list", "--address", "globex/stripe/production/webhook/c", "--format", "json"
    )
    assert code == 0 and [r["entity_address"] for r in json.loads(out)] == [
        "globex/stripe/production/webhook/c"
    ]
    code, out = _run(seeded, "list", "--run", "0000")
    assert code == 0 and "No audit rows match." in out


def test_format_before_the_command_reaches_its_own_format_option(seeded: dict[str, str]) -> None:
    before = CliRunner().invoke(cli, ["--format", "json", "audit", "list"], env=seeded)
    assert before.exit_code == 0, before.output
    assert len(json.loads(before.stdout)) == 5
    after_wins = CliRunner().invoke(
        cli, ["--format", "json", "audit", "summary", "--format", "text"], env=seeded
    )
    assert after_wins.exit_code == 0 and not after_wins.stdout.lstrip().startswith("[")
    unsupported = CliRunner().invoke(cli, ["--format", "markdown", "audit", "list"], env=seeded)
    assert unsupported.exit_code == 64
    assert "--format 'markdown' is not supported here" in unsupported.output


def test_quiet_checkpoint_writes_the_file_and_says_nothing(
    seeded: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "checkpoint.json"
    result = CliRunner().invoke(
        cli, ["--quiet", "audit", "checkpoint", "--out", str(path)], env=seeded
    )
    assert result.exit_code == 0, result.output
    assert result.output == "" and json.loads(path.read_text())["heads"]
