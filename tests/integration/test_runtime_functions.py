"""The services' SQL functions, called as a service's own login, concurrently.

``reconciler_webhook_record`` and ``reconciler_webhook_allow`` serialise on the webhook's row:
concurrent calls lose no count and make each transition exactly once. Row-level security and
``app.tenant_id`` keep a service to its own tenant. Counter-only deliveries are not written
to the audit chain; transitions are, and the chain still verifies. Plans and drift ignore it
all.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from reconciler.store import audit
from tests.e2e.workspace import Workspace, libpq_url, stripe_manifest

PASSWORD = "svc-Passw0rd"
T = TypeVar("T")


@dataclass
class Service:
    """A service's own LOGIN role (a member of ``reconciler_app``) and how to connect as it."""

    role: str
    url: str

    def connect(self, tenant: str | None = "acme") -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.url, application_name="dispatcher", autocommit=True)
        if tenant is not None:
            conn.execute("SELECT set_config('app.tenant_id', %s, false)", (tenant,))
        return conn


def make_service(pg_server_url: str, database_url: str, tenants: tuple[str, ...]) -> Service:
    role = f"svc_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}' IN ROLE reconciler_app")
    with psycopg.connect(libpq_url(database_url), autocommit=True) as owner:
        for tenant in tenants:
            owner.execute("INSERT INTO reconciler_tenant_grants VALUES (%s, %s)", (role, tenant))
    url = make_url(libpq_url(database_url)).set(username=role, password=PASSWORD)
    return Service(role, url.render_as_string(hide_password=False))


def drop_service(pg_server_url: str, service: Service) -> None:
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
            (service.role,),
        )
        admin.execute(f"DROP ROLE {service.role}")


@pytest.fixture
def service(pg_server_url: str, database_url: str) -> Iterator[Service]:
    """A service login granted the tenant ``acme`` only."""
    svc = make_service(pg_server_url, database_url, ("acme",))
    try:
        yield svc
    finally:
        drop_service(pg_server_url, svc)


SEED = [
    """INSERT INTO integration_configs
         (tenant_id, platform, config_type, environment, is_primary, api_key)
       VALUES ('acme', 'STRIPE', 'API_KEY', 'PRODUCTION', true, 'rcn2:ciphertext-a'),
              ('acme', 'STRIPE', 'SETTINGS', 'PRODUCTION', false, NULL),
              ('acme', 'STRIPE', 'WEBHOOK', 'SANDBOX', true, 'rcn2:ciphertext-s'),
              ('globex', 'STRIPE', 'API_KEY', 'PRODUCTION', true, 'rcn2:ciphertext-g')""",
    """INSERT INTO webhook_configurations
         (tenant_id, platform, environment, name, webhook_type, endpoint_url, auth_type,
          circuit_breaker_threshold, circuit_breaker_reset_seconds)
       VALUES ('acme', 'STRIPE', 'PRODUCTION', 'hook', 'OUTBOUND', 'https://a.example', 'NONE',
               5, 60),
              ('globex', 'STRIPE', 'PRODUCTION', 'hook', 'OUTBOUND', 'https://g.example',
               'NONE', 5, 60)""",
]


@pytest.fixture
def seeded(engine: sa.Engine) -> sa.Engine:
    """Rows of two tenants as the reconciler wrote them (audited by the reconciler)."""
    with engine.begin() as conn:
        audit.mark_audited_write(conn, "seed")
        for statement in SEED:
            conn.execute(sa.text(statement))
    return engine


def hook_id(engine: sa.Engine, tenant: str = "acme") -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT id FROM webhook_configurations WHERE tenant_id = :t"), {"t": tenant}
            ).scalar_one()
        )


def circuit(engine: sa.Engine, tenant: str = "acme") -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                """SELECT circuit_breaker_status::text AS status, consecutive_failures,
                          total_trigger_count, total_failure_count, circuit_opened_at,
                          last_trigger_at, last_success_at, last_failure_at, row_version,
                          updated_at, clock_timestamp() AS now
                   FROM webhook_configurations WHERE tenant_id = :t"""
            ),
            {"t": tenant},
        ).one()
    return dict(row._mapping)


def open_since(engine: sa.Engine, seconds: int, status: str = "OPEN") -> None:
    with engine.begin() as conn:
        audit.mark_audited_write(conn, "test set-up")
        conn.execute(
            sa.text(
                """UPDATE webhook_configurations
                   SET circuit_breaker_status = CAST(:s AS circuit_breaker_status),
                       consecutive_failures = 5,
                       circuit_opened_at = now() - make_interval(secs => :secs)
                   WHERE tenant_id = 'acme'"""
            ),
            {"s": status, "secs": seconds},
        )


def recorded(engine: sa.Engine, tenant: str = "acme") -> list[dict[str, Any]]:
    """The database-recorded audit rows of the tenant's webhook, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """SELECT changes, risk_level::text AS risk, performed_by
                   FROM configuration_audit_logs
                   WHERE tenant_id = :t AND entity_type = 'WEBHOOK_CONFIGURATION'
                     AND substr(entry_hash, 1, 1) = 't'
                   ORDER BY id"""
            ),
            {"t": tenant},
        )
        return [dict(r._mapping) for r in rows]


def transitions(rows: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
    return [
        (f["before"], f["after"])
        for r in rows
        for f in r["changes"]["fields"]
        if f["field"] == "circuit_breaker_status"
    ]


def concurrently(
    count: int, service: Service, call: Callable[[psycopg.Connection[Any]], T]
) -> list[T]:
    """Run ``call`` once on each of ``count`` connections of its own, all released at once."""
    connections = [service.connect() for _ in range(count)]
    barrier = threading.Barrier(count)
    results: list[T] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(conn: psycopg.Connection[Any]) -> None:
        try:
            barrier.wait(timeout=30)
            value = call(conn)
            with lock:
                results.append(value)
        except BaseException as exc:  # reported below, in the test's thread
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in connections]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        for c in connections:
            c.close()
    assert not errors, errors
    assert len(results) == count
    return results


def record(conn: psycopg.Connection[Any], webhook: int, ok: bool, error: str | None = None) -> str:
    row = conn.execute(
        "SELECT reconciler_webhook_record(%s, %s, %s)::text", (webhook, ok, error)
    ).fetchone()
    assert row is not None
    return str(row[0])


def allow(conn: psycopg.Connection[Any], webhook: int) -> bool:
    row = conn.execute("SELECT reconciler_webhook_allow(%s)", (webhook,)).fetchone()
    assert row is not None
    return bool(row[0])


def test_fifty_concurrent_failures_count_exactly_and_open_once(
    seeded: sa.Engine, service: Service
) -> None:
    webhook = hook_id(seeded)
    before = circuit(seeded)

    states = concurrently(50, service, lambda c: record(c, webhook, False, "HTTP 503\nfrom edge"))

    assert sorted(states) == ["CLOSED"] * 4 + ["OPEN"] * 46
    after = circuit(seeded)
    assert (after["status"], after["consecutive_failures"]) == ("OPEN", 50)
    assert (after["total_trigger_count"], after["total_failure_count"]) == (50, 50)
    assert after["circuit_opened_at"] is not None and after["last_success_at"] is None
    assert after["last_failure_at"] == after["last_trigger_at"]
    # Runtime bookkeeping never makes a plan stale.
    assert (after["row_version"], after["updated_at"]) == (
        before["row_version"],
        before["updated_at"],
    )
    # One recorded row: the transition. The 49 counter-only deliveries are not chained.
    rows = recorded(seeded)
    assert transitions(rows) == [("CLOSED", "OPEN")]
    (opened,) = rows
    assert opened["risk"] == "LOW" and opened["performed_by"] == service.role
    assert opened["changes"]["runtime_error"] == "HTTP 503 from edge"


def test_twenty_concurrent_allows_past_the_reset_time_admit_one_trial(
    seeded: sa.Engine, service: Service
) -> None:
    webhook = hook_id(seeded)
    open_since(seeded, 120)  # reset time is 60 s

    admitted = concurrently(20, service, lambda c: allow(c, webhook))

    assert admitted.count(True) == 1
    assert circuit(seeded)["status"] == "HALF_OPEN"
    with service.connect() as conn:
        assert allow(conn, webhook) is False  # the trial is under way
        # The trial succeeds: closed, and deliveries flow again.
        assert record(conn, webhook, True) == "CLOSED"
        assert allow(conn, webhook) is True
    after = circuit(seeded)
    assert (after["status"], after["consecutive_failures"], after["circuit_opened_at"]) == (
        "CLOSED",
        0,
        None,
    )
    assert after["last_success_at"] is not None
    assert transitions(recorded(seeded)) == [("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]


def test_a_failed_trial_reopens_the_circuit_for_another_reset_period(
    seeded: sa.Engine, service: Service
) -> None:
    webhook = hook_id(seeded)
    open_since(seeded, 61)
    with service.connect() as conn:
        assert allow(conn, webhook) is True
        assert record(conn, webhook, False, "timeout") == "OPEN"
        assert allow(conn, webhook) is False
    after = circuit(seeded)
    assert (after["status"], after["consecutive_failures"], after["total_failure_count"]) == (
        "OPEN",
        6,
        1,
    )
    assert 0 <= (after["now"] - after["circuit_opened_at"]).total_seconds() < 30


def test_an_open_circuit_before_its_reset_time_refuses(seeded: sa.Engine, service: Service) -> None:
    webhook = hook_id(seeded)
    open_since(seeded, 10)
    with service.connect() as conn:
        assert [allow(conn, webhook) for _ in range(3)] == [False] * 3
    assert circuit(seeded)["status"] == "OPEN"


def test_a_half_open_circuit_from_the_health_check_admits_one_trial(
    seeded: sa.Engine, service: Service
) -> None:
    # `reconciler health check` moves due circuits to HALF_OPEN without admitting a trial.
    webhook = hook_id(seeded)
    open_since(seeded, 120, status="HALF_OPEN")
    with service.connect() as conn:
        assert [allow(conn, webhook) for _ in range(3)] == [True, False, False]


def test_a_closed_circuit_allows_and_failures_below_the_threshold_keep_it_closed(
    seeded: sa.Engine, service: Service
) -> None:
    webhook = hook_id(seeded)
    with service.connect() as conn:
        assert allow(conn, webhook) is True
        assert [record(conn, webhook, False) for _ in range(4)] == ["CLOSED"] * 4
        assert record(conn, webhook, True) == "CLOSED"
        assert record(conn, webhook, False) == "CLOSED"
    after = circuit(seeded)
    assert (after["consecutive_failures"], after["total_trigger_count"]) == (1, 6)
    assert after["total_failure_count"] == 5
    assert recorded(seeded) == []  # no transition, nothing chained


def test_a_service_cannot_touch_another_tenants_webhook(
    seeded: sa.Engine, service: Service
) -> None:
    theirs = hook_id(seeded, "globex")
    before = circuit(seeded, "globex")
    # Its own tenant's session, another tenant's id: not found, as for a missing id.
    with service.connect("acme") as conn:
        for statement in (
            "SELECT reconciler_webhook_record(%s, false)",
            "SELECT reconciler_webhook_allow(%s)",
        ):
            with pytest.raises(psycopg.errors.NoDataFound, match="no webhook"):
                conn.execute(statement, (theirs,))
    # Claiming the other tenant: row-level security admits no row of an ungranted tenant.
    with service.connect("globex") as conn:
        with pytest.raises(psycopg.errors.NoDataFound):
            conn.execute("SELECT reconciler_webhook_record(%s, false)", (theirs,))
        assert conn.execute(
            "SELECT count(*) FROM reconciler_active_config('STRIPE', 'PRODUCTION')"
        ).fetchone() == (0,)
    # No tenant at all: refused.
    with (
        service.connect(None) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match=r"app\.tenant_id"),
    ):
        conn.execute("SELECT reconciler_webhook_allow(%s)", (theirs,))
    after = circuit(seeded, "globex")
    assert {**after, "now": None} == {**before, "now": None}


def test_active_config_is_the_tenants_primary_active_rows_still_encrypted(
    seeded: sa.Engine, service: Service
) -> None:
    with service.connect() as conn:
        rows = conn.execute(
            "SELECT tenant_id, config_type::text, api_key "
            "FROM reconciler_active_config('stripe', 'production')"
        ).fetchall()
        named = conn.execute(
            "SELECT count(*) FROM reconciler_active_config(platform => 'STRIPE', "
            "environment => 'SANDBOX')"
        ).fetchone()
    assert rows == [("acme", "API_KEY", "rcn2:ciphertext-a")]
    assert named == (1,)


def test_the_functions_are_for_services_not_for_everyone(seeded: sa.Engine) -> None:
    with seeded.connect() as conn:
        granted = conn.execute(
            sa.text(
                """SELECT p.proname, has_function_privilege('reconciler_app', p.oid, 'EXECUTE'),
                          has_function_privilege('reconciler_ci', p.oid, 'EXECUTE'),
                          p.prosecdef
                   FROM pg_proc p WHERE p.proname LIKE 'reconciler\\_%' ESCAPE '\\'
                    AND p.proname IN ('reconciler_active_config', 'reconciler_webhook_allow',
                                      'reconciler_webhook_record')
                   ORDER BY 1"""
            )
        ).all()
    assert [tuple(r) for r in granted] == [
        ("reconciler_active_config", True, False, False),
        ("reconciler_webhook_allow", True, False, False),
        ("reconciler_webhook_record", True, False, False),
    ]


def test_plan_and_drift_show_no_change_after_runtime_calls(
    tmp_path: Path, pg_server_url: str, database_url: str
) -> None:
    ws = Workspace.create(tmp_path, database_url)
    ws.write("acme", "stripe", stripe_manifest("acme"))
    assert ws.run("apply", "--auto-approve").returncode == 0
    svc = make_service(pg_server_url, database_url, ("acme",))
    try:
        ((webhook,),) = ws.sql("SELECT id FROM webhook_configurations")
        with svc.connect() as conn:
            for _ in range(5):
                assert allow(conn, webhook)
                record(conn, webhook, False, "HTTP 500")
            assert not allow(conn, webhook)
            rows = conn.execute(
                "SELECT config_type::text FROM reconciler_active_config('STRIPE', 'PRODUCTION')"
            ).fetchall()
            assert rows == [("API_KEY",)]
    finally:
        drop_service(pg_server_url, svc)
    assert ws.sql("SELECT circuit_breaker_status::text FROM webhook_configurations") == [("OPEN",)]

    plan = ws.run("plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    drift = ws.run("drift", "--detailed-exitcode")
    assert drift.returncode == 0, drift.stdout + drift.stderr
    verified = ws.run("audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
