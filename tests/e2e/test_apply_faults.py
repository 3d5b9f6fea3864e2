"""Fault tolerance of apply against real PostgreSQL: kill, lost connection, concurrency.

To stop an apply half-way through its transaction without a test hook in the product, the
test holds a row lock on a webhook row the apply must update: the apply writes the
integration change, then blocks on that row, inside its open transaction.
"""

from __future__ import annotations

import signal
import subprocess
import time

import psycopg
import pytest

from reconciler.store.locks import APPLY_LOCK_KEY
from tests.e2e.workspace import Workspace, libpq_url, stripe_manifest

pytestmark = pytest.mark.slow


def _wait_for(ws: Workspace, sql: str, timeout: float = 30.0) -> list[tuple[object, ...]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = ws.sql(sql)
        if rows:
            return rows
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {sql}")


_BLOCKED_APPLY = (
    "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'reconciler%' "
    "AND wait_event_type = 'Lock' AND query ILIKE '%webhook_configurations%'"
)


def _two_changes(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    assert ws.run("apply", "--auto-approve").returncode == 0
    ws.write(
        "acme",
        "stripe",
        stripe_manifest("acme", interval=30, endpoint="https://hooks.example.com/v2"),
    )


@pytest.mark.parametrize("fault", ["sigkill", "terminate_backend"])
def test_interrupted_apply_leaves_database_as_it_was(ws: Workspace, fault: str) -> None:
    _two_changes(ws)
    before = ws.snapshot()
    with psycopg.connect(libpq_url(ws.database_url)) as blocker:
        blocker.execute("SELECT 1 FROM webhook_configurations FOR UPDATE")
        proc = ws.popen("apply", "--auto-approve")
        ((pid,),) = _wait_for(ws, _BLOCKED_APPLY)
        # The integration update is written inside the apply's open transaction by now.
        if fault == "sigkill":
            proc.send_signal(signal.SIGKILL)
        else:
            ws.sql("SELECT pg_terminate_backend(%s)", pid)
        out, err = proc.communicate(timeout=30)
        blocker.rollback()
    if fault == "sigkill":
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 1, out + err
        assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("Error:")
    _wait_for(
        ws,
        "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity "
        "WHERE application_name LIKE 'reconciler%' AND state <> 'idle')",
    )
    assert ws.snapshot() == before

    rerun = ws.run("apply", "--auto-approve")
    assert rerun.returncode == 0, rerun.stderr
    assert "2 updated" in rerun.stdout
    assert ws.sql("SELECT count(*) FROM configuration_audit_logs WHERE action = 'UPDATE'") == [(2,)]


def test_lock_timeout_names_the_holder(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    with psycopg.connect(libpq_url(ws.database_url), autocommit=True) as holder:
        holder.execute("SET application_name = 'deploy-job-42'")
        holder.execute("SELECT pg_advisory_lock(%s)", (APPLY_LOCK_KEY,))
        result = ws.run("apply", "--auto-approve", "--lock-timeout", "1")
    assert result.returncode == 1
    assert "deploy-job-42" in result.stderr and "Traceback" not in result.stderr
    assert ws.sql("SELECT count(*) FROM integration_configs") == [(0,)]


def test_concurrent_applies_write_once(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    ws.write("beta", "stripe", stripe_manifest("beta"))
    with psycopg.connect(libpq_url(ws.database_url), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (APPLY_LOCK_KEY,))
        procs = [ws.popen("apply", "--auto-approve") for _ in range(2)]
        _wait_for(
            ws,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'reconciler%' "
            "AND query ILIKE '%advisory%' HAVING count(*) >= 2",
        )
        holder.execute("SELECT pg_advisory_unlock(%s)", (APPLY_LOCK_KEY,))
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    summaries = sorted(out.strip().splitlines()[-1] for out, _ in outputs)
    assert summaries[0].startswith("Applied 4 change(s)")
    assert summaries[1].startswith("No changes")
    assert ws.sql("SELECT count(*) FROM configuration_audit_logs") == [(4,)]
    assert ws.sql("SELECT count(*) FROM apply_runs") == [(1,)]


def test_failure_in_last_batch_rolls_back_and_names_object(ws: Workspace) -> None:
    ws.sql("ALTER TABLE webhook_configurations ADD CONSTRAINT no_zeta CHECK (tenant_id <> 'zeta')")
    ws.write("acme", "stripe", stripe_manifest("acme"))
    ws.write("zeta", "stripe", stripe_manifest("zeta"))
    result = ws.run("apply", "--auto-approve")
    assert result.returncode == 1
    assert "zeta/stripe/production/webhook/billing-events" in result.stderr
    assert "no_zeta" in result.stderr and "nothing applied" in result.stderr
    assert ws.sql("SELECT count(*) FROM integration_configs") == [(0,)]
    assert ws.sql("SELECT count(*) FROM configuration_audit_logs") == [(0,)]


def test_stopped_server_is_a_clean_error(ws: Workspace) -> None:
    ws.env["RECONCILER_DATABASE_URL"] = "postgresql://postgres@127.0.0.1:9/postgres"
    ws.write("acme", "stripe", stripe_manifest("acme"))
    result = ws.run("apply", "--auto-approve")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("Error:")]) == 1
    _ = subprocess  # keep import for readers running this module alone
