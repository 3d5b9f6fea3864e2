"""Fault tolerance of apply on a Citus cluster: kill mid-apply, concurrency, stale plans.

As tests/e2e/test_apply_faults.py, with what differs on a cluster: the apply is stopped
half-way by a row lock held through the coordinator on the tenant's webhook row (Citus
locks rows only in single-shard statements), the blocked apply is seen in
``citus_lock_waits``, and every node is checked (no prepared transaction left anywhere).
"""

from __future__ import annotations

import signal
import time

import psycopg
import pytest
from sqlalchemy.engine import make_url

from reconciler.store.locks import APPLY_LOCK_KEY
from tests.e2e.test_apply_faults import (
    test_concurrent_applies_write_once,
    test_failure_in_last_batch_rolls_back_and_names_object,
    test_lock_timeout_names_the_holder,
)
from tests.e2e.workspace import Workspace, libpq_url, stripe_manifest

__all__ = [
    "test_concurrent_applies_write_once",
    "test_failure_in_last_batch_rolls_back_and_names_object",
    "test_lock_timeout_names_the_holder",
]

pytestmark = pytest.mark.citus


def _wait_for(ws: Workspace, sql: str, timeout: float = 60.0) -> list[tuple[object, ...]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = ws.sql(sql)
        if rows:
            return rows
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {sql}")


def _on_every_node(ws: Workspace, workers: list[tuple[str, int]], sql: str) -> list[object]:
    url = make_url(libpq_url(ws.database_url))
    out: list[object] = []
    for host, port in [(url.host, url.port), *workers]:
        node = url.set(host=host, port=port).render_as_string(hide_password=False)
        with psycopg.connect(node, autocommit=True) as conn:
            out.append(conn.execute(sql).fetchone())
    return out


@pytest.mark.parametrize("fault", ["sigkill", "terminate_backend"])
def test_interrupted_apply_leaves_every_node_as_it_was(
    ws: Workspace, citus_workers: list[tuple[str, int]], fault: str
) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    assert ws.run("apply", "--auto-approve").returncode == 0
    ws.write(
        "acme",
        "stripe",
        stripe_manifest("acme", interval=30, endpoint="https://hooks.example.com/v2"),
    )
    before = ws.snapshot()
    with psycopg.connect(libpq_url(ws.database_url)) as blocker:
        blocker.execute(
            "UPDATE webhook_configurations SET updated_at = updated_at WHERE tenant_id = 'acme'"
        )
        proc = ws.popen("apply", "--auto-approve")
        # The integration update is written (on its worker) by the time the apply waits.
        _wait_for(ws, "SELECT 1 FROM citus_lock_waits")
        if fault == "sigkill":
            proc.send_signal(signal.SIGKILL)
        else:
            ws.sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name LIKE 'reconciler%' AND pid <> pg_backend_pid()"
            )
        out, err = proc.communicate(timeout=60)
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
    # Nothing half-committed on any node: no prepared transaction is left behind.
    deadline = time.monotonic() + 60
    while _on_every_node(ws, citus_workers, "SELECT count(*) FROM pg_prepared_xacts") != [(0,)] * (
        1 + len(citus_workers)
    ):
        assert time.monotonic() < deadline, "prepared transactions left on a node"
        time.sleep(0.5)

    rerun = ws.run("apply", "--auto-approve")
    assert rerun.returncode == 0, rerun.stderr
    assert "2 updated" in rerun.stdout
    assert ws.sql("SELECT count(*) FROM configuration_audit_logs WHERE action = 'UPDATE'") == [(2,)]
    verify = ws.run("audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_apply_lock_is_taken_on_the_coordinator(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    with psycopg.connect(libpq_url(ws.database_url), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (APPLY_LOCK_KEY,))
        proc = ws.popen("apply", "--auto-approve")
        _wait_for(
            ws,
            "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND NOT l.granted "
            "AND a.application_name LIKE 'reconciler%'",
        )
        holder.execute("SELECT pg_advisory_unlock(%s)", (APPLY_LOCK_KEY,))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
