"""Row-level security: the application role sees and writes only the tenant in app.tenant_id,
and only if that tenant is granted to the login (``session_user``) in reconciler_tenant_grants.

These tests SET ROLE from the test superuser; tests/integration/test_tenant_grants.py
connects as real LOGIN roles."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from reconciler.store import tables as t

SEED = [
    """INSERT INTO oauth_tokens (tenant_id, platform, access_token)
       VALUES ('a', 'STRIPE', 'enc:a'), ('b', 'STRIPE', 'enc:b')""",
    """INSERT INTO integration_configs (tenant_id, platform, config_type, environment)
       VALUES ('a', 'STRIPE', 'API_KEY', 'PRODUCTION'), ('b', 'STRIPE', 'API_KEY', 'PRODUCTION')""",
    """INSERT INTO webhook_configurations
         (tenant_id, platform, environment, name, webhook_type, endpoint_url, auth_type)
       VALUES ('a', 'STRIPE', 'PRODUCTION', 'hook', 'INBOUND', 'https://a.example', 'NONE'),
              ('b', 'STRIPE', 'PRODUCTION', 'hook', 'INBOUND', 'https://b.example', 'NONE')""",
    """INSERT INTO configuration_audit_logs
         (tenant_id, entity_type, action, changes, risk_level, performed_by, entry_hash)
       VALUES ('a', 'OAUTH_TOKEN', 'CREATE', '{}', 'LOW', 'ci', repeat('a', 64)),
              ('b', 'OAUTH_TOKEN', 'CREATE', '{}', 'LOW', 'ci', repeat('b', 64))""",
]

INSERT_FOR_B = {
    "oauth_tokens": "INSERT INTO oauth_tokens (tenant_id, platform, access_token) "
    "VALUES ('b', 'HUBSPOT', 'enc:x')",
    "integration_configs": "INSERT INTO integration_configs "
    "(tenant_id, platform, config_type, environment) VALUES ('b', 'HUBSPOT', 'API_KEY', 'SANDBOX')",
    "webhook_configurations": "INSERT INTO webhook_configurations "
    "(tenant_id, platform, environment, name, webhook_type, endpoint_url, auth_type) "
    "VALUES ('b', 'HUBSPOT', 'SANDBOX', 'x', 'INBOUND', 'https://x.example', 'NONE')",
    "configuration_audit_logs": "INSERT INTO configuration_audit_logs "
    "(tenant_id, entity_type, action, changes, risk_level, performed_by, entry_hash) "
    "VALUES ('b', 'OAUTH_TOKEN', 'CREATE', '{}', 'LOW', 'ci', repeat('c', 64))",
}


@pytest.fixture
def seeded(engine: sa.Engine) -> sa.Engine:
    # As the owner (not subject to RLS): both tenants' rows go in, as rows that existed
    # before (marked like the reconciler's own writes, so the database does not record them).
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT set_config('reconciler.audited_write', 'seed', true)"))
        for statement in SEED:
            conn.execute(sa.text(statement))
        # The grant is the login's: SET ROLE reconciler_app keeps session_user.
        conn.execute(sa.text("INSERT INTO reconciler_tenant_grants VALUES (session_user, 'a')"))
    return engine


@pytest.fixture
def as_app_a(seeded: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction acting as reconciler_app for tenant 'a' (rolled back afterwards)."""
    with seeded.connect() as conn:
        conn.execute(sa.text("SET ROLE reconciler_app"))
        conn.execute(sa.text("SELECT set_config('app.tenant_id', 'a', true)"))
        yield conn
        conn.rollback()


@pytest.mark.parametrize("table", t.TENANT_TABLES)
def test_owner_sees_every_tenant(seeded: sa.Engine, table: str) -> None:
    with seeded.connect() as conn:
        tenants = conn.execute(sa.text(f"SELECT DISTINCT tenant_id FROM {table} ORDER BY 1"))
        assert tenants.scalars().all() == ["a", "b"]


@pytest.mark.parametrize("table", t.TENANT_TABLES)
def test_other_tenants_rows_are_invisible(as_app_a: sa.Connection, table: str) -> None:
    rows = as_app_a.execute(sa.text(f"SELECT tenant_id FROM {table}")).scalars().all()
    assert rows == ["a"]


@pytest.mark.parametrize("table", t.TENANT_TABLES)
def test_rows_of_another_tenant_cannot_be_inserted(as_app_a: sa.Connection, table: str) -> None:
    # Only tokens may be inserted by services at all (the OAuth flow); elsewhere the
    # privilege is missing before row-level security is even asked.
    refusal = "row-level security" if table == "oauth_tokens" else "permission denied"
    with pytest.raises(DBAPIError, match=refusal):
        as_app_a.execute(sa.text(INSERT_FOR_B[table]))


RUNTIME_UPDATE = {
    "oauth_tokens": "access_token = 'enc:refreshed'",
    "integration_configs": "health_status = 'HEALTHY'",
    "webhook_configurations": "consecutive_failures = consecutive_failures + 1",
}


@pytest.mark.parametrize("table", ["oauth_tokens", "integration_configs", "webhook_configurations"])
def test_own_rows_can_be_written_and_others_not_touched(
    as_app_a: sa.Connection, table: str
) -> None:
    if table == "oauth_tokens":
        inserted = as_app_a.execute(
            sa.text(INSERT_FOR_B[table].replace("('b'", "('a'") + " RETURNING id")
        ).scalar_one()
        assert inserted is not None
    # UPDATE cannot reach tenant b's rows: they are not visible to it.
    updated = as_app_a.execute(sa.text(f"UPDATE {table} SET {RUNTIME_UPDATE[table]}"))
    assert updated.rowcount == (2 if table == "oauth_tokens" else 1)


@pytest.mark.parametrize("table", ["oauth_tokens", "integration_configs", "webhook_configurations"])
def test_rows_cannot_be_moved_to_another_tenant(as_app_a: sa.Connection, table: str) -> None:
    with pytest.raises(DBAPIError, match="permission denied"):
        as_app_a.execute(sa.text(f"UPDATE {table} SET tenant_id = 'b'"))


def test_without_a_tenant_the_app_role_sees_nothing(seeded: sa.Engine) -> None:
    with seeded.connect() as conn:
        conn.execute(sa.text("SET ROLE reconciler_app"))
        assert conn.execute(sa.text("SELECT count(*) FROM integration_configs")).scalar() == 0


def test_app_role_may_neither_update_nor_delete_audit_rows(as_app_a: sa.Connection) -> None:
    as_app_a.execute(sa.text("SAVEPOINT s"))
    with pytest.raises(DBAPIError, match="permission denied"):
        as_app_a.execute(
            sa.text("UPDATE configuration_audit_logs SET reviewed_by = 'lead', reviewed_at = now()")
        )
    as_app_a.execute(sa.text("ROLLBACK TO SAVEPOINT s"))
    with pytest.raises(DBAPIError, match="permission denied"):
        as_app_a.execute(sa.text("UPDATE configuration_audit_logs SET performed_by = 'x'"))
    as_app_a.execute(sa.text("ROLLBACK TO SAVEPOINT s"))
    with pytest.raises(DBAPIError, match="permission denied"):
        as_app_a.execute(sa.text("DELETE FROM configuration_audit_logs"))
