"""``reconciler report health|circuits`` and ``reconciler health check`` through CliRunner."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from reconciler.cli.main import cli


def _run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def _integration(
    conn: sa.Connection, tenant: str, platform: str, status: str, message: str | None, **kw: Any
) -> None:
    conn.execute(
        sa.text(
            """INSERT INTO integration_configs (tenant_id, platform, config_type, environment,
                   health_status, health_message, last_health_check_at, is_active, deleted_at)
               VALUES (:t, CAST(:p AS platform), :c, 'PRODUCTION',
                   CAST(:s AS health_status), :m, '2030-01-15 12:00:00+00', :a,
                   CASE WHEN :d THEN now() END)"""
        ),
        {
            "t": tenant,
            "p": platform,
            "s": status,
            "m": message,
            "c": kw.get("config_type", "OAUTH"),
            "a": kw.get("active", True),
            "d": kw.get("deleted", False),
        },
    )


def _webhook(
    conn: sa.Connection,
    tenant: str,
    platform: str,
    name: str,
    status: str,
    failures: int,
    opened_ago_seconds: int | None = None,
    reset: int | None = 300,
) -> None:
    conn.execute(
        sa.text(
            """INSERT INTO webhook_configurations (tenant_id, platform, environment, name,
                   webhook_type, endpoint_url, auth_type, circuit_breaker_status,
                   consecutive_failures, circuit_breaker_threshold,
                   circuit_breaker_reset_seconds, circuit_opened_at)
               VALUES (:t, CAST(:p AS platform), 'PRODUCTION', :n, 'OUTBOUND',
                   'https://x.example/h', 'NONE', CAST(:s AS circuit_breaker_status), :f, 5, :r,
                   CASE WHEN CAST(:o AS integer) IS NOT NULL
                        THEN now() - make_interval(secs => CAST(:o AS integer)) END)"""
        ),
        {
            "t": tenant,
            "p": platform,
            "n": name,
            "s": status,
            "f": failures,
            "r": reset,
            "o": opened_ago_seconds,
        },
    )


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    return {"RECONCILER_DATABASE_URL": database_url}


@pytest.fixture
def seeded(env: dict[str, str], engine: sa.Engine) -> dict[str, str]:
    with engine.begin() as conn:
        _integration(
            conn,
            "acme",
            "STRIPE",
            "UNHEALTHY",
            "authentication failed (HTTP 401)",
            config_type="API_KEY",
        )
        _integration(conn, "acme", "HUBSPOT", "HEALTHY", "HTTP 200")
        _integration(conn, "globex", "HUBSPOT", "DEGRADED", "rate limited (HTTP 429)")
        _integration(conn, "globex", "QUICKBOOKS", "UNKNOWN", None)
        _integration(conn, "off", "STRIPE", "UNHEALTHY", "ignored", active=False)
        _integration(conn, "gone", "STRIPE", "UNHEALTHY", "ignored", deleted=True)
        _webhook(conn, "acme", "STRIPE", "billing", "OPEN", 7, opened_ago_seconds=600)
        _webhook(conn, "acme", "STRIPE", "erp", "OPEN", 5, opened_ago_seconds=60)
        _webhook(conn, "globex", "STRIPE", "ok", "CLOSED", 0)
        _webhook(conn, "globex", "HUBSPOT", "crm", "HALF_OPEN", 3, opened_ago_seconds=900)
    return env


def test_report_health_json_and_text(seeded: dict[str, str]) -> None:
    code, out = _run(seeded, "report", "health", "--format", "json")
    assert code == 0, out
    report = json.loads(out)
    assert report["counts"]["STRIPE"] == {"HEALTHY": 0, "DEGRADED": 0, "UNHEALTHY": 1, "UNKNOWN": 0}
    assert report["counts"]["HUBSPOT"] == {
        "HEALTHY": 1,
        "DEGRADED": 1,
        "UNHEALTHY": 0,
        "UNKNOWN": 0,
    }
    assert report["counts"]["QUICKBOOKS"]["UNKNOWN"] == 1
    assert [
        (u["tenant"], u["platform"], u["status"], u["message"]) for u in report["unhealthy"]
    ] == [
        ("acme", "STRIPE", "UNHEALTHY", "authentication failed (HTTP 401)"),
        ("globex", "HUBSPOT", "DEGRADED", "rate limited (HTTP 429)"),
    ]
    assert report["unhealthy"][0]["last_health_check_at"] == "2030-01-15T12:00:00+00:00"

    code, out = _run(seeded, "report", "health", "--platform", "hubspot")
    assert code == 0
    assert "STRIPE" not in out
    assert "1 DEGRADED or UNHEALTHY active integration(s):" in out
    assert "rate limited (HTTP 429)" in out


def test_report_health_fail_on_unhealthy(seeded: dict[str, str], env: dict[str, str]) -> None:
    assert _run(seeded, "report", "health", "--fail-on-unhealthy")[0] == 2
    code, out = _run(seeded, "report", "health", "--platform", "quickbooks", "--fail-on-unhealthy")
    assert code == 0 and "No DEGRADED or UNHEALTHY" in out


def test_report_circuits(seeded: dict[str, str]) -> None:
    code, out = _run(seeded, "report", "circuits", "--format", "json")
    assert code == 0, out
    report = json.loads(out)
    summary = {p["platform"]: p for p in report["platforms"]}
    assert summary["STRIPE"] == {
        "platform": "STRIPE",
        "webhooks": 3,
        "open_circuits": 2,
        "half_open": 0,
        "avg_failures": 4.0,
    }
    assert summary["HUBSPOT"]["half_open"] == 1
    assert summary["QUICKBOOKS"] == {
        "platform": "QUICKBOOKS",
        "webhooks": 0,
        "open_circuits": 0,
        "half_open": 0,
        "avg_failures": None,
    }
    circuits = {c["name"]: c for c in report["circuits"]}
    assert set(circuits) == {"billing", "erp", "crm"}
    assert circuits["crm"]["half_open_eligible_at"] is None
    opened = datetime.fromisoformat(circuits["erp"]["opened_at"])
    eligible = datetime.fromisoformat(circuits["erp"]["half_open_eligible_at"])
    assert (eligible - opened).total_seconds() == 300

    code, out = _run(seeded, "report", "circuits")
    assert code == 0
    billing = next(line for line in out.splitlines() if "billing" in line)
    erp = next(line for line in out.splitlines() if " erp " in line)
    assert "7/5" in billing and "(due now)" in billing
    assert "(in 3m" in erp or "(in 4m" in erp


def test_report_circuits_fail_on_open(seeded: dict[str, str], env: dict[str, str]) -> None:
    assert _run(seeded, "report", "circuits", "--fail-on-open")[0] == 2
    code, out = _run(seeded, "report", "circuits", "--platform", "quickbooks", "--fail-on-open")
    assert code == 0 and "All circuits are CLOSED." in out


def test_reports_on_an_empty_database(env: dict[str, str]) -> None:
    code, out = _run(env, "report", "health", "--fail-on-unhealthy")
    assert code == 0 and "No DEGRADED or UNHEALTHY" in out
    code, out = _run(env, "report", "circuits", "--fail-on-open")
    assert code == 0 and "All circuits are CLOSED." in out


def test_health_check_cli_without_network_calls(seeded: dict[str, str], engine: sa.Engine) -> None:
    # Only OAuth client credentials / no credentials are stored: nothing goes to the network.
    code, out = _run(seeded, "health", "check", "--platform", "hubspot", "--dry-run", "-q")
    assert code == 0, out
    assert "Dry run: nothing written." in out
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM integration_configs WHERE health_status = 'UNKNOWN'")
            ).scalar_one()
            == 1
        )  # unchanged by the dry run
        assert (
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM webhook_configurations "
                    "WHERE circuit_breaker_status = 'HALF_OPEN'"
                )
            ).scalar_one()
            == 1
        )

    code, out = _run(seeded, "health", "check", "--tenant", "globex", "--format", "json", "-q")
    assert code == 0, out
    result = json.loads(out)
    assert {i["status"] for i in result["integrations"]} == {"UNKNOWN"}
    assert result["circuit_transitions"] == []
    # Selectors apply to circuits too: a HubSpot-only check leaves Stripe circuits alone.
    code, out = _run(seeded, "health", "check", "--tenant", "acme", "--platform", "hubspot", "-q")
    assert code == 0 and "0 circuit(s) moved" in out
    code, out = _run(seeded, "health", "check", "--tenant", "acme", "-q")
    assert code == 0
    assert "acme/stripe/production/webhook/billing" in out  # OPEN 10 min, reset 5 min
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT name, circuit_breaker_status::text FROM webhook_configurations "
                "ORDER BY name"
            )
        ).all()
    assert dict(rows) == {"billing": "HALF_OPEN", "crm": "HALF_OPEN", "erp": "OPEN", "ok": "CLOSED"}
