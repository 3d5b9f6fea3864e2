"""The schema on Citus: distributed by tenant, colocated, and the same guarantees."""

from __future__ import annotations

import psycopg
import pytest

from tests.e2e.workspace import libpq_url

TENANT_TABLES = {
    "oauth_tokens",
    "integration_configs",
    "webhook_configurations",
    "configuration_audit_logs",
}

pytestmark = pytest.mark.citus


def test_citus_tables_distributed_by_tenant_in_one_colocation_group(database_url: str) -> None:
    with psycopg.connect(libpq_url(database_url)) as conn:
        rows = conn.execute(
            "SELECT table_name::text, citus_table_type, distribution_column, colocation_id "
            "FROM citus_tables"
        ).fetchall()
    by_name = {r[0]: r[1:] for r in rows}
    assert {n for n, (kind, _, _) in by_name.items() if kind == "distributed"} == TENANT_TABLES
    assert {by_name[t][1] for t in TENANT_TABLES} == {"tenant_id"}
    assert len({by_name[t][2] for t in TENANT_TABLES}) == 1
    assert by_name["apply_runs"][0] == "reference"
    assert by_name["reconciler_tenant_grants"][0] == "reference"
    assert "alembic_version" not in by_name


def test_audit_log_stays_append_only_on_the_shards(database_url: str) -> None:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO configuration_audit_logs (tenant_id, entity_type, entity_id, action, "
            "changes, risk_level, performed_by, entry_hash) VALUES ('acme', "
            "'INTEGRATION_CONFIG', 1, 'CREATE', '{}', 'LOW', 'x', 'legacy')"
        )
        for statement in (
            "UPDATE configuration_audit_logs SET performed_by = 'y'",
            "DELETE FROM configuration_audit_logs",
            "TRUNCATE configuration_audit_logs",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM configuration_audit_logs").fetchone() == (1,)


def test_upgrade_is_idempotent_and_downgrade_undistributes(database_url: str) -> None:
    from reconciler.store import migrate
    from reconciler.store.database import resolve_database_url

    target = resolve_database_url(database_url)
    migrate.downgrade(target, "approvals")
    with psycopg.connect(libpq_url(database_url)) as conn:
        assert conn.execute("SELECT count(*) FROM citus_tables").fetchone() == (0,)
    migrate.upgrade(target)
    with psycopg.connect(libpq_url(database_url)) as conn:
        assert conn.execute("SELECT count(*) FROM citus_tables").fetchone() == (6,)


FUNCTIONS = (
    "record_configuration_write()",
    "reconciler_active_config(text, text)",
    "reconciler_webhook_allow(bigint)",
    "reconciler_webhook_record(bigint, boolean, text)",
    "reconciler_granted_tenant()",
)


def _definitions(database_url: str) -> dict[str, object]:
    with psycopg.connect(libpq_url(database_url)) as conn:
        return {
            f: conn.execute(
                "SELECT pg_get_functiondef(to_regprocedure(%s)), "
                "(SELECT proacl::text FROM pg_proc WHERE oid = to_regprocedure(%s))",
                (f, f),
            ).fetchone()
            for f in FUNCTIONS
        }


def test_downgrade_past_the_runtime_functions_and_back_composes(database_url: str) -> None:
    """The in-place edits of the recording function (runtime_functions, citus_distribution,
    citus_runtime) undo in reverse order on Citus, and redo to the same definitions."""
    from reconciler.store import migrate
    from reconciler.store.database import resolve_database_url

    target = resolve_database_url(database_url)
    at_head = _definitions(database_url)
    migrate.downgrade(target, "approvals")
    # Undistributing rebuilds integration_configs; the function returning its rows stays.
    before_citus = _definitions(database_url)
    assert before_citus["reconciler_active_config(text, text)"] is not None
    assert "recorded_table" not in str(before_citus["record_configuration_write()"])
    assert "last_id" not in str(before_citus["record_configuration_write()"])
    migrate.downgrade(target, "managed_tokens")
    with psycopg.connect(libpq_url(database_url)) as conn:
        assert conn.execute(
            "SELECT to_regprocedure('reconciler_active_config(text, text)')"
        ).fetchone() == (None,)
    migrate.upgrade(target)
    assert _definitions(database_url) == at_head
    with psycopg.connect(libpq_url(database_url)) as conn:
        assert conn.execute("SELECT count(*) FROM citus_tables").fetchone() == (6,)
