"""tests/integration/test_runtime_functions.py on a Citus cluster.

A service login calls the runtime functions with its session's ``app.tenant_id``: the
functions carry the tenant (and their own settings) to the workers, where the row-level
security policy and the recording trigger run, in a transaction block or not. The
concurrency tests run at a smaller scale (each connection to the coordinator opens its own
connections to the workers).
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from tests.integration.test_runtime_functions import *  # noqa: F403
from tests.integration.test_runtime_functions import (
    Service,
    allow,
    circuit,
    concurrently,
    hook_id,
    open_since,
    record,
    recorded,
    transitions,
)

pytestmark = pytest.mark.citus

# Replaced below by the same tests at a smaller scale.
del test_fifty_concurrent_failures_count_exactly_and_open_once  # noqa: F821
del test_twenty_concurrent_allows_past_the_reset_time_admit_one_trial  # noqa: F821


def test_concurrent_failures_count_exactly_and_open_once(
    seeded: sa.Engine, service: Service
) -> None:
    webhook = hook_id(seeded)

    states = concurrently(12, service, lambda c: record(c, webhook, False, "HTTP 503\nfrom edge"))

    assert sorted(states) == ["CLOSED"] * 4 + ["OPEN"] * 8
    after = circuit(seeded)
    assert (after["status"], after["consecutive_failures"]) == ("OPEN", 12)
    assert (after["total_trigger_count"], after["total_failure_count"]) == (12, 12)
    # One recorded row, on the tenant's shard: the transition, with the service's error.
    rows = recorded(seeded)
    assert transitions(rows) == [("CLOSED", "OPEN")]
    (opened,) = rows
    assert opened["risk"] == "LOW" and opened["performed_by"] == service.role
    assert opened["changes"]["runtime_error"] == "HTTP 503 from edge"


def test_concurrent_allows_past_the_reset_time_admit_one_trial(
    seeded: sa.Engine, service: Service
) -> None:
    webhook = hook_id(seeded)
    open_since(seeded, 120)  # reset time is 60 s

    answers = concurrently(8, service, lambda c: allow(c, webhook))

    assert sorted(answers) == [False] * 7 + [True]
    assert circuit(seeded)["status"] == "HALF_OPEN"


def test_the_functions_answer_in_autocommit_and_in_a_transaction_block(
    seeded: sa.Engine, service: Service
) -> None:
    webhook = hook_id(seeded)
    conn: psycopg.Connection[Any] = service.connect()
    try:
        conn.autocommit = True
        # A read alone (no lock, no write) reaches the worker with the tenant too.
        assert allow(conn, webhook) is True
        rows = conn.execute(
            "SELECT count(*) FROM reconciler_active_config('stripe', 'production')"
        ).fetchone()
        assert rows is not None and rows[0] == 1
        conn.autocommit = False
        with conn.transaction():
            assert record(conn, webhook, True) == "CLOSED"
            assert allow(conn, webhook) is True
    finally:
        conn.close()
