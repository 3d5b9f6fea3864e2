"""Timeouts: a statement timeout says so (not "database unavailable"), and unusable timeout
values in reconciler.yaml or on the command line are refused before anything runs."""

from __future__ import annotations

import psycopg
import pytest

from reconciler.store.locks import APPLY_LOCK_KEY
from tests.e2e.workspace import Workspace, libpq_url, stripe_manifest


def test_statement_timeout_during_apply_says_what_happened(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    # 1 ms: the wait for the apply lock (held below) runs into it well before lock_timeout.
    (ws.root / "reconciler.yaml").write_text("apply:\n  statement_timeout_seconds: 0.001\n")
    with psycopg.connect(libpq_url(ws.database_url), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (APPLY_LOCK_KEY,))
        result = ws.run("apply", "--auto-approve", "--lock-timeout", "30")
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(
        "Error: the database cancelled a statement: canceling statement due to statement timeout"
    ), result.stderr
    assert "statement_timeout_seconds" in error and "nothing applied" in error
    assert "unavailable" not in result.stderr and "Traceback" not in result.stderr
    assert ws.sql("SELECT count(*) FROM integration_configs") == [(0,)]


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [("lock_timeout_seconds", ".nan", "nan"), ("statement_timeout_seconds", "0", "0")],
)
def test_unusable_timeouts_in_settings_are_refused(
    ws: Workspace, key: str, value: str, shown: str
) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    (ws.root / "reconciler.yaml").write_text(f"apply:\n  allow_risk: high\n  {key}: {value}\n")
    result = ws.run("apply", "--auto-approve")
    assert result.returncode == 1
    where = f"{ws.root / 'reconciler.yaml'}:3:{len(key) + 5}"
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: {where}: apply.{key}: must be from 0.001 to 86400 seconds (one day), got {shown}"
    )
    assert ws.sql("SELECT count(*) FROM integration_configs") == [(0,)]


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "1e308", "90000"])
def test_unusable_lock_timeout_option_is_refused(ws: Workspace, value: str) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    result = ws.run("apply", "--auto-approve", "--lock-timeout", value)
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("Error: --lock-timeout must be from 0.001 to 86400 seconds (one day), got ")
    )
    assert ws.sql("SELECT count(*) FROM integration_configs") == [(0,)]
