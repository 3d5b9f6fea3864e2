"""Every write to a configuration table is audited, whoever makes it.

A service logs in with its own LOGIN role (a member of ``reconciler_app``, its own password,
its own session: not a superuser doing SET ROLE). It may write the runtime-owned columns of
its tenant's rows, and the database records each such write in the tenant's audit chain
with the login, client address and application name; it can change no manifest-owned
column, write no audit row, review nothing. The reconciler's own writes are audited once,
by the reconciler, and ``audit verify`` links over database-recorded rows without letting
them cover for an edited keyed row.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from reconciler.crypto.audit_key import AuditKey
from reconciler.errors import LockTimeout
from reconciler.model.enums import AuditAction, EntityType, RiskLevel
from reconciler.store import audit
from reconciler.store.audit import AuditContext, AuditEntry, append_audit_entries
from tests.e2e.workspace import Workspace, libpq_url, stripe_manifest

PASSWORD = "svc-Passw0rd"
APP = "billing-worker"
KEY = AuditKey(b"k" * 32)
RECONCILER = AuditContext("deployer", None, "reconciler/test", "run-1", key=KEY)


@dataclass
class Service:
    """A service's own LOGIN role and how to connect as it."""

    role: str
    url: str

    def connect(self, tenant: str, application: str = APP) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.url, application_name=application)
        conn.execute("SELECT set_config('app.tenant_id', %s, false)", (tenant,))
        conn.commit()
        return conn


@pytest.fixture
def service(pg_server_url: str, database_url: str) -> Iterator[Service]:
    role = f"svc_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}' IN ROLE reconciler_app")
    # The service acts for acme only (row-level security admits granted tenants alone).
    with psycopg.connect(libpq_url(database_url), autocommit=True) as owner:
        owner.execute("INSERT INTO reconciler_tenant_grants VALUES (%s, 'acme')", (role,))
    url = make_url(libpq_url(database_url)).set(username=role, password=PASSWORD)
    try:
        yield Service(role, url.render_as_string(hide_password=False))
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
            admin.execute(f"DROP ROLE {role}")


SEED = [
    """INSERT INTO integration_configs (tenant_id, platform, config_type, environment, api_key)
       VALUES ('acme', 'STRIPE', 'API_KEY', 'PRODUCTION', 'rcn2:ciphertext-a'),
              ('globex', 'STRIPE', 'API_KEY', 'PRODUCTION', 'rcn2:ciphertext-g')""",
    """INSERT INTO webhook_configurations
         (tenant_id, platform, environment, name, webhook_type, endpoint_url, auth_type)
       VALUES ('acme', 'STRIPE', 'PRODUCTION', 'hook', 'INBOUND', 'https://a.example', 'NONE'),
              ('globex', 'STRIPE', 'PRODUCTION', 'hook', 'INBOUND', 'https://g.example', 'NONE')""",
    """INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id)
       VALUES ('acme', 'STRIPE', 'enc:acme-token', 'acct_1')""",
]


@pytest.fixture
def seeded(engine: sa.Engine) -> sa.Engine:
    """Rows of two tenants as the reconciler wrote them, with one keyed audit row each."""
    with engine.begin() as conn:
        audit.mark_audited_write(conn, "seed")
        for statement in SEED:
            conn.execute(sa.text(statement))
        append_audit_entries(
            conn, [_entry("acme", "a"), _entry("globex", "g")], RECONCILER, now=_now(conn)
        )
    return engine


def _now(conn: sa.Connection) -> Any:
    return conn.execute(sa.text("SELECT now()")).scalar_one()


def _entry(tenant: str, name: str) -> AuditEntry:
    return AuditEntry(
        tenant_id=tenant,
        entity_type=EntityType.WEBHOOK_CONFIGURATION,
        entity_id=1,
        entity_address=f"{tenant}/stripe/production/webhook/{name}",
        action=AuditAction.UPDATE,
        changes={"fields": [{"field": "endpoint_url", "before": "x", "after": "y"}]},
        risk_level=RiskLevel.MEDIUM,
    )


def _rows(engine: sa.Engine, tenant: str | None = None) -> list[sa.Row[Any]]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT id, tenant_id, action::text AS action, risk_level::text AS risk,"
                    " requires_review, performed_by, host(ip_address) AS ip, user_agent,"
                    " session_id, entity_address, changes, changes::text AS raw, entry_hash"
                    " FROM configuration_audit_logs"
                    " WHERE CAST(:t AS text) IS NULL OR tenant_id = :t ORDER BY id"
                ),
                {"t": tenant},
            )
        )


def _recorded(engine: sa.Engine) -> list[sa.Row[Any]]:
    return [r for r in _rows(engine) if r.entry_hash.startswith(audit.DATABASE_PREFIX)]


def test_a_service_runtime_write_is_recorded_with_its_security_context(
    seeded: sa.Engine, service: Service
) -> None:
    with service.connect("acme") as conn:
        context = conn.execute(
            "SELECT host(inet_client_addr()), to_hex(pg_backend_pid())"
        ).fetchone()
        assert context is not None
        changed = conn.execute(
            "UPDATE integration_configs SET health_status = 'DEGRADED',"
            " health_message = 'slow', last_health_check_at = now()"
        ).rowcount
        conn.execute("UPDATE webhook_configurations SET consecutive_failures = 3")
        conn.commit()
    assert changed == 1  # tenant acme's row only: row-level security

    recorded = _recorded(seeded)
    assert [(r.tenant_id, r.action, r.risk, r.requires_review) for r in recorded] == [
        ("acme", "UPDATE", "LOW", False),
        ("acme", "UPDATE", "LOW", False),
    ]
    health, circuit = recorded
    client, pid = context
    for row in recorded:
        # Who, from where, with what, in which backend: set by the server, not the client
        # (except the application name, which a client chooses).
        assert (row.performed_by, row.ip, row.user_agent) == (service.role, client, APP)
        assert re.fullmatch(rf"[0-9a-f]+\.{pid}", row.session_id)
        assert row.changes["recorded_by"] == "database"
    assert health.entity_address == "acme/stripe/production/integration/API_KEY"
    fields = {f["field"]: (f["before"], f["after"]) for f in health.changes["fields"]}
    assert set(fields) == {"health_status", "health_message", "last_health_check_at"}
    assert fields["health_status"] == ("UNKNOWN", "DEGRADED")
    assert circuit.changes["fields"] == [
        {"field": "consecutive_failures", "before": 0, "after": 3, "sensitive": False}
    ]

    with seeded.connect() as conn:
        report = audit.inspect_chains(conn, key=KEY)
        listed = audit.list_entries(conn, tenant="acme")
    assert report.breaks == [] and (report.database_rows, report.database_uncovered) == (2, 2)
    newest = listed[0].to_dict()
    assert newest["recorded_by"] == "database" and newest["performed_by"] == service.role
    assert (newest["user_agent"], newest["ip_address"]) == (APP, client)
    assert newest["session_id"] == health.session_id or newest["session_id"] == circuit.session_id
    assert listed[-1].recorded_by == "reconciler"


def test_a_token_refresh_is_recorded_masked(seeded: sa.Engine, service: Service) -> None:
    with service.connect("acme") as conn:
        conn.execute(
            "INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id)"
            " VALUES ('acme', 'STRIPE', 'enc:new-connection', 'acct_2')"
        )
        conn.execute(
            "UPDATE oauth_tokens SET access_token = 'enc:refreshed', expires_at = now()"
            " WHERE stripe_account_id = 'acct_1'"
        )
        conn.commit()
    created, refreshed = _recorded(seeded)
    assert (created.action, created.risk, created.entity_address) == (
        "CREATE",
        "MEDIUM",
        "acme/stripe/-/oauth_account/acct_2",
    )
    assert (refreshed.action, refreshed.risk) == ("UPDATE", "LOW")
    fields = {f["field"]: f for f in refreshed.changes["fields"]}
    assert fields["access_token"] == {
        "field": "access_token",
        "before": "(sensitive)",
        "after": "(sensitive)",
        "sensitive": True,
    }
    for row in (created, refreshed):
        assert "enc:" not in row.raw  # token material never reaches the audit log


@pytest.mark.parametrize(
    ("statement", "what"),
    [
        ("UPDATE webhook_configurations SET endpoint_url = 'https://evil.example'", "manifest"),
        ("UPDATE integration_configs SET features = '{\"x\": true}'", "manifest"),
        ("UPDATE integration_configs SET row_version = row_version + 1", "plan lock"),
        ("UPDATE integration_configs SET encryption_key_version = 9", "key version"),
        ("UPDATE oauth_tokens SET revoked_at = NULL, is_active = true", "revocation"),
        ("DELETE FROM webhook_configurations", "delete"),
        (
            "INSERT INTO integration_configs (tenant_id, platform, config_type, environment)"
            " VALUES ('acme', 'HUBSPOT', 'API_KEY', 'SANDBOX')",
            "create",
        ),
        (
            "INSERT INTO configuration_audit_logs (tenant_id, entity_type, action, changes,"
            " risk_level, performed_by, entry_hash)"
            " VALUES ('acme', 'OAUTH_TOKEN', 'CREATE', '{}', 'LOW', 'someone', repeat('a', 64))",
            "audit row",
        ),
        (
            "UPDATE configuration_audit_logs SET reviewed_by = 'me', reviewed_at = now(),"
            " review_decision = 'APPROVED'",
            "review",
        ),
        (
            "INSERT INTO apply_runs (actor, manifests_digest, outcome, reconciler_version)"
            " VALUES ('me', 'x', 'APPLIED', '0')",
            "apply run",
        ),
    ],
)
def test_a_service_cannot_write_what_it_does_not_own(
    seeded: sa.Engine, service: Service, statement: str, what: str
) -> None:
    before = _rows(seeded)
    with (
        service.connect("acme") as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"),
    ):
        conn.execute(statement)
    assert _rows(seeded) == before, what


def test_a_review_row_cannot_be_appended_by_a_service(seeded: sa.Engine, service: Service) -> None:
    # Through the Python API too: a service login has no INSERT on the audit log.
    engine = sa.create_engine(
        make_url(service.url).set(drivername="postgresql+psycopg"), poolclass=sa.pool.NullPool
    )
    try:
        with (
            pytest.raises(sa.exc.ProgrammingError, match="permission denied"),
            engine.begin() as conn,
        ):
            append_audit_entries(conn, [_entry("acme", "x")], RECONCILER, now=_now(conn))
    finally:
        engine.dispose()


def test_the_database_hash_agrees_with_the_verifier_on_any_text(
    seeded: sa.Engine, service: Service
) -> None:
    # Byte lengths, not character counts, and PostgreSQL's own JSON text: non-ASCII text,
    # quotes, backslashes and newlines hash the same in SQL and in Python.
    message = 'Zeitüberschreitung ✓ "quoted" \\ back\nslash 🙂'
    with service.connect("acme", application="worker 7") as conn:
        conn.execute("UPDATE integration_configs SET health_message = %s", (message,))
        conn.commit()
    (row,) = _recorded(seeded)
    assert row.changes["fields"][0]["after"] == message
    with seeded.connect() as conn:
        report = audit.inspect_chains(conn, key=KEY)
    assert report.breaks == [] and report.database_rows == 1


def test_the_marker_of_the_reconciler_is_not_believed_from_a_service(
    seeded: sa.Engine, service: Service
) -> None:
    with service.connect("acme") as conn:
        conn.execute("SELECT set_config('reconciler.audited_write', 'apply 1', true)")
        conn.execute("UPDATE integration_configs SET health_status = 'HEALTHY'")
        conn.commit()
    assert [r.performed_by for r in _recorded(seeded)] == [service.role]


def test_owner_writes_outside_apply_are_recorded_as_high_and_await_review(
    seeded: sa.Engine,
) -> None:
    with seeded.begin() as conn:
        conn.execute(
            sa.text("UPDATE webhook_configurations SET endpoint_url = 'https://x.example'")
        )
        conn.execute(sa.text("UPDATE integration_configs SET api_key = 'rcn2:swapped'"))
    recorded = _recorded(seeded)
    assert [(r.tenant_id, r.risk, r.requires_review) for r in recorded] == [
        ("acme", "HIGH", True),
        ("globex", "HIGH", True),
        ("acme", "HIGH", True),
        ("globex", "HIGH", True),
    ]
    secret = recorded[2].changes["fields"]
    assert secret == [
        {"field": "api_key", "before": "(sensitive)", "after": "(sensitive)", "sensitive": True}
    ]
    assert all("rcn2:" not in r.raw for r in recorded)
    with seeded.connect() as conn:
        pending = audit.pending_reviews(conn)
    assert {p.id for p in pending} == {r.id for r in recorded}


def test_concurrent_service_writes_do_not_fork_the_chain(
    seeded: sa.Engine, service: Service
) -> None:
    first = service.connect("acme")
    second = service.connect("acme")
    try:
        first.execute("UPDATE integration_configs SET health_status = 'HEALTHY'")
        done = threading.Event()

        def write_second() -> None:
            second.execute("UPDATE webhook_configurations SET consecutive_failures = 1")
            second.commit()
            done.set()

        thread = threading.Thread(target=write_second)
        thread.start()
        # The second writer waits for the tenant's chain lock held by the first.
        assert not done.wait(0.5)
        first.commit()
        thread.join(10)
        assert done.is_set()
    finally:
        first.close()
        second.close()
    with seeded.connect() as conn:
        report = audit.inspect_chains(conn, key=KEY)
    assert report.breaks == [] and report.database_rows == 2


def test_the_reconciler_waits_for_a_service_holding_the_tenant_chain(
    seeded: sa.Engine, service: Service
) -> None:
    busy = service.connect("acme")
    try:
        busy.execute("UPDATE integration_configs SET health_status = 'HEALTHY'")  # not committed
        with seeded.connect() as conn, pytest.raises(LockTimeout, match="audit chain lock"):
            append_audit_entries(
                conn, [_entry("acme", "x")], RECONCILER, now=_now(conn), lock_timeout_seconds=0.3
            )
        with seeded.begin() as conn:  # another tenant's chain is not held up
            append_audit_entries(
                conn, [_entry("globex", "x")], RECONCILER, now=_now(conn), lock_timeout_seconds=0.3
            )
        busy.commit()
    finally:
        busy.close()
    with seeded.begin() as conn:
        append_audit_entries(conn, [_entry("acme", "y")], RECONCILER, now=_now(conn))
    with seeded.connect() as conn:
        report = audit.inspect_chains(conn, key=KEY)
    assert report.breaks == [] and report.database_rows == 1


def test_a_stale_snapshot_cannot_fork_the_chain(seeded: sa.Engine, service: Service) -> None:
    stale = service.connect("acme")
    try:
        stale.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        stale.execute("SELECT count(*) FROM configuration_audit_logs").fetchone()
        with service.connect("acme") as other:
            other.execute("UPDATE integration_configs SET health_status = 'HEALTHY'")
            other.commit()
        # Its snapshot misses the new head: extending the old one is refused, not forked.
        with pytest.raises(psycopg.errors.UniqueViolation, match="successor"):
            stale.execute("UPDATE webhook_configurations SET consecutive_failures = 1")
    finally:
        stale.close()
    with seeded.connect() as conn:
        assert audit.inspect_chains(conn, key=KEY).breaks == []


def test_database_rows_cannot_be_inserted_by_a_client(seeded: sa.Engine) -> None:
    # Even the owner (or the deploy role, which may insert audit rows) cannot write one.
    with (
        pytest.raises(sa.exc.ProgrammingError, match="written only by record_configuration_write"),
        seeded.begin() as conn,
    ):
        conn.execute(
            sa.text(
                "INSERT INTO configuration_audit_logs (tenant_id, entity_type, action, changes,"
                " risk_level, performed_by, entry_hash)"
                " VALUES ('acme', 'OAUTH_TOKEN', 'CREATE', '{}', 'LOW', 'x',"
                " 't' || repeat('0', 63))"
            )
        )


# --- the reconciler's apply, and verification ----------------------------------------------


def _verify(ws: Workspace) -> dict[str, Any]:
    result = ws.run("audit", "verify", "--format", "json")
    data: dict[str, Any] = json.loads(result.stdout)
    data["exit"] = result.returncode
    return data


def test_apply_is_audited_once_and_the_chain_verifies_across_database_rows(
    ws: Workspace, service: Service
) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    assert ws.run("apply", "--auto-approve").returncode == 0
    # Only the reconciler's own (keyed) rows: the database did not record the apply again.
    forms = [h[0][0] for h in ws.sql("SELECT entry_hash FROM configuration_audit_logs")]
    assert forms == ["k", "k"]

    with service.connect("acme") as conn:  # runtime write between two applies
        conn.execute("UPDATE integration_configs SET health_status = 'HEALTHY'")
        conn.commit()
    ws.sql("UPDATE webhook_configurations SET endpoint_url = 'https://hand.example'")  # by hand
    ws.write("acme", "stripe", stripe_manifest("acme", interval=30))
    assert ws.run("apply", "--auto-approve").returncode == 0  # also restores endpoint_url

    forms = [h[0][0] for h in ws.sql("SELECT entry_hash FROM configuration_audit_logs ORDER BY id")]
    assert forms == ["k", "k", "t", "t", "k", "k"]
    report = _verify(ws)
    assert (report["exit"], report["intact"], report["verified"]) == (0, True, True)
    assert (report["database_rows"], report["database_uncovered"]) == (2, 0)
    text = ws.run("audit", "verify")
    assert "2 row(s) recorded by the database" in text.stdout

    listed = json.loads(ws.run("audit", "list", "--format", "json").stdout)
    assert [r["recorded_by"] for r in listed] == ["reconciler"] * 2 + ["database"] * 2 + [
        "reconciler"
    ] * 2
    by_db = [r for r in listed if r["recorded_by"] == "database"]
    assert {(r["performed_by"], r["user_agent"]) for r in by_db} == {
        (service.role, APP),
        ("postgres", None),
    }
    wide = ws.run("audit", "list", "--wide").stdout.splitlines()
    assert wide[0].split()[8:13] == ["SOURCE", "CLIENT", "USER", "AGENT", "SESSION"]
    assert any(APP in line and "database" in line for line in wide)

    # A database-recorded row cannot cover for an edited keyed row ...
    ws.sql(
        "ALTER TABLE configuration_audit_logs DISABLE TRIGGER USER;"
        " UPDATE configuration_audit_logs SET performed_by = 'someone else'"
        "  WHERE id = (SELECT min(id) FROM configuration_audit_logs);"
        " ALTER TABLE configuration_audit_logs ENABLE TRIGGER USER"
    )
    broken = _verify(ws)
    assert broken["exit"] == 1 and [b["kind"] for b in broken["breaks"]] == ["edited"]


def test_database_rows_cannot_pass_for_or_hide_keyed_rows(
    seeded: sa.Engine, service: Service
) -> None:
    with service.connect("acme") as conn:
        conn.execute("UPDATE integration_configs SET health_status = 'HEALTHY'")
        conn.commit()
    with seeded.begin() as db:
        append_audit_entries(db, [_entry("acme", "b")], RECONCILER, now=_now(db))
    keyed_a, recorded, keyed_b = _rows(seeded, "acme")
    assert [r.entry_hash[0] for r in (keyed_a, recorded, keyed_b)] == ["k", "t", "k"]

    def tamper(sql: str, **params: Any) -> list[audit.ChainBreak]:
        """What the table owner can do; rolled back after verifying."""
        with seeded.connect() as conn:
            conn.execute(sa.text("ALTER TABLE configuration_audit_logs DISABLE TRIGGER USER"))
            conn.execute(sa.text(sql), params)
            breaks = audit.inspect_chains(conn, key=KEY).breaks
            conn.rollback()
        return breaks

    # Its content is covered by its own hash, and it by the next keyed row.
    edited = tamper(
        "UPDATE configuration_audit_logs SET performed_by = 'nobody' WHERE id = :id",
        id=recorded.id,
    )
    assert [(b.audit_id, b.kind) for b in edited] == [(recorded.id, "edited")]

    # Rewritten consistently (its hash recomputed), the next keyed row's link breaks.
    with seeded.connect() as db:
        row = dict(
            db.execute(sa.text(audit._VERIFY_SELECT + " WHERE id = :id"), {"id": recorded.id})
            .one()
            ._mapping
        )
    row["performed_by"] = "nobody"
    row["created_at"] = row["created_at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    rehashed = audit.database_entry_hash(row)
    relinked = tamper(
        "UPDATE configuration_audit_logs SET performed_by = 'nobody', entry_hash = :h"
        " WHERE id = :id",
        id=recorded.id,
        h=rehashed,
    )
    assert [(b.audit_id, b.kind) for b in relinked] == [(keyed_b.id, "link")]

    # It may not claim an apply run or a review.
    claimed = tamper(
        "UPDATE configuration_audit_logs SET apply_run_id = gen_random_uuid() WHERE id = :id",
        id=recorded.id,
    )
    assert [(b.audit_id, b.kind) for b in claimed] == [(recorded.id, "format")]

    # An unkeyed (v1) row after it is a break, as after a keyed row.
    with seeded.connect() as db:
        v1 = dict(
            db.execute(sa.text(audit._VERIFY_SELECT + " WHERE id = :id"), {"id": keyed_b.id})
            .one()
            ._mapping
        )
    v1["created_at"] = v1["created_at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    unkeyed = tamper(
        "UPDATE configuration_audit_logs SET entry_hash = :h WHERE id = :id",
        id=keyed_b.id,
        h=audit.entry_hash(v1),
    )
    assert [(b.audit_id, b.kind) for b in unkeyed] == [(keyed_b.id, "unkeyed")]


def _advisory_locks(conn: sa.Connection) -> int:
    return int(
        conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_locks"
                " WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted"
            )
        ).scalar_one()
    )


def test_the_database_and_the_reconciler_agree_on_the_fleet_lock_key(seeded: sa.Engine) -> None:
    with seeded.connect() as conn:
        key = conn.execute(
            sa.text(
                "SELECT ('x' || left(encode(sha256(convert_to('reconciler/audit-chains',"
                " 'UTF8')), 'hex'), 16))::bit(64)::bigint"
            )
        ).scalar_one()
    assert key == audit.FLEET_CHAIN_LOCK_KEY


def test_a_write_to_many_tenants_holds_one_chain_lock_not_one_per_tenant(
    seeded: sa.Engine,
) -> None:
    many = [f"t{i:04d}" for i in range(audit.FLEET_THRESHOLD + 1)]
    with seeded.begin() as conn:
        # A write the database records (not marked as audited by the reconciler).
        conn.execute(
            sa.text(
                "INSERT INTO oauth_tokens (tenant_id, platform, access_token)"
                " SELECT t, 'STRIPE', 'enc:x' FROM unnest(CAST(:t AS text[])) AS t"
            ),
            {"t": many},
        )
        assert _advisory_locks(conn) == 1
    with seeded.begin() as conn:
        audit.mark_audited_write(conn, "many")
        append_audit_entries(conn, [_entry(t, "m") for t in many], RECONCILER, now=_now(conn))
        assert _advisory_locks(conn) == 2  # the reconciler's append lock and the fleet lock
    with seeded.connect() as conn:
        assert audit.inspect_chains(conn, key=KEY).breaks == []


def test_a_write_to_few_tenants_locks_each_under_the_shared_fleet_lock(seeded: sa.Engine) -> None:
    few = ["acme", "globex", "initech"]
    with seeded.begin() as conn:
        append_audit_entries(conn, [_entry(t, "f") for t in few], RECONCILER, now=_now(conn))
        assert _advisory_locks(conn) == 2 + len(few)


def test_a_write_to_many_tenants_waits_for_a_writer_of_any_one(
    seeded: sa.Engine, service: Service
) -> None:
    # None of them is the tenant the service is writing: the fleet lock is what waits.
    many = [f"t{i:04d}" for i in range(audit.FLEET_THRESHOLD + 1)]
    busy = service.connect("acme")
    try:
        busy.execute("UPDATE integration_configs SET health_status = 'HEALTHY'")  # not committed
        with seeded.connect() as conn, pytest.raises(LockTimeout, match="audit chain lock"):
            append_audit_entries(
                conn,
                [_entry(t, "w") for t in many],
                RECONCILER,
                now=_now(conn),
                lock_timeout_seconds=0.3,
            )
        busy.commit()
    finally:
        busy.close()
    with seeded.begin() as conn:
        append_audit_entries(conn, [_entry(t, "w") for t in many], RECONCILER, now=_now(conn))
    with seeded.connect() as conn:
        assert audit.inspect_chains(conn, key=KEY).breaks == []
