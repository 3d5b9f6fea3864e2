"""The database_recorded_writes revision: up, down and up again keep every audit row, and the
recording works for a table owner without superuser rights under FORCE ROW LEVEL SECURITY."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from reconciler.store import audit, migrate
from reconciler.store.database import DatabaseTarget, resolve_database_url
from reconciler.store.tables import APP_ROLE

PASSWORD = "0wner-Passw0rd"
PREVIOUS = "keyed_audit_chain"


def _libpq(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _sql(url: str, query: str, tenant: str | None = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        if tenant is not None:
            conn.execute("SELECT set_config('app.tenant_id', %s, false)", (tenant,))
        cur = conn.execute(query)
        while cur.nextset():  # several statements: the last one's rows
            pass
        return cur.fetchall() if cur.description else []


def _audit_rows(url: str, tenant: str | None = None) -> list[tuple[Any, ...]]:
    return _sql(url, "SELECT * FROM configuration_audit_logs ORDER BY id", tenant)


def _app_may(url: str, privilege: str, table: str) -> bool:
    return bool(
        _sql(url, f"SELECT has_table_privilege('{APP_ROLE}', '{table}', '{privilege}')")[0][0]
    )


def test_up_down_up_keeps_every_audit_row(database_url: str) -> None:
    target: DatabaseTarget = resolve_database_url(database_url)
    _sql(
        database_url,
        "INSERT INTO integration_configs (tenant_id, platform, config_type, environment)"
        " VALUES ('acme', 'STRIPE', 'API_KEY', 'PRODUCTION');"
        " UPDATE integration_configs SET health_status = 'HEALTHY'",
    )
    before = _audit_rows(database_url)
    assert len(before) == 2 and not _app_may(database_url, "INSERT", "integration_configs")

    migrate.downgrade(target, PREVIOUS)
    assert migrate.current(target) == PREVIOUS
    assert _audit_rows(database_url) == before  # nothing dropped, nothing changed
    assert _app_may(database_url, "INSERT", "integration_configs")
    assert _app_may(database_url, "INSERT", "configuration_audit_logs")
    # The previous version's behaviour: writes are not recorded.
    _sql(database_url, "UPDATE integration_configs SET health_status = 'DEGRADED'")
    assert _audit_rows(database_url) == before

    migrate.upgrade(target)
    assert migrate.current(target) == migrate.head_revision()
    assert _audit_rows(database_url) == before
    assert not _app_may(database_url, "INSERT", "integration_configs")
    assert not _app_may(database_url, "INSERT", "configuration_audit_logs")
    _sql(database_url, "UPDATE integration_configs SET health_status = 'UNHEALTHY'")
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            report = audit.inspect_chains(conn)
    finally:
        engine.dispose()
    assert report.breaks == [] and report.database_rows == 3


@pytest.fixture
def owned(pg_server_url: str, database_url: str) -> Iterator[tuple[str, str]]:
    """(owner URL, service URL): a database migrated by a LOGIN owner without superuser
    rights, and a service LOGIN role in ``reconciler_app`` (``database_url`` made sure the
    role exists)."""
    suffix = uuid.uuid4().hex[:8]
    owner, service, database = f"owner_{suffix}", f"svc_{suffix}", f"t_owner_{suffix}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {owner} LOGIN NOSUPERUSER PASSWORD '{PASSWORD}'")
        admin.execute(f"CREATE ROLE {service} LOGIN PASSWORD '{PASSWORD}' IN ROLE {APP_ROLE}")
        admin.execute(f"CREATE DATABASE {database} OWNER {owner}")
    base = sa.make_url(pg_server_url).set(drivername="postgresql+psycopg", database=database)
    owner_url = base.set(username=owner, password=PASSWORD).render_as_string(hide_password=False)
    service_url = base.set(username=service, password=PASSWORD).render_as_string(
        hide_password=False
    )
    try:
        yield owner_url, service_url
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            admin.execute(f"DROP ROLE IF EXISTS {service}")
            admin.execute(f"DROP ROLE IF EXISTS {owner}")


def test_recording_works_for_a_plain_owner_under_forced_row_level_security(
    owned: tuple[str, str],
) -> None:
    owner_url, service_url = owned
    service = sa.make_url(service_url).username
    migrate.upgrade(resolve_database_url(owner_url))
    _sql(
        owner_url,
        "ALTER TABLE integration_configs FORCE ROW LEVEL SECURITY;"
        " ALTER TABLE webhook_configurations FORCE ROW LEVEL SECURITY;"
        " ALTER TABLE oauth_tokens FORCE ROW LEVEL SECURITY;"
        " ALTER TABLE configuration_audit_logs FORCE ROW LEVEL SECURITY;"
        " SELECT set_config('reconciler.audited_write', 'seed', false);"
        " INSERT INTO integration_configs (tenant_id, platform, config_type, environment)"
        " VALUES ('acme', 'STRIPE', 'API_KEY', 'PRODUCTION');"
        f" INSERT INTO reconciler_tenant_grants VALUES ('{service}', 'acme')",
        tenant="acme",
    )
    assert _audit_rows(owner_url, "acme") == []  # marked: the owner may insert audit rows

    after = _sql(
        service_url,
        "UPDATE integration_configs SET health_status = 'DEGRADED';"
        " SELECT current_setting('app.tenant_id'), health_status::text FROM integration_configs",
        tenant="acme",
    )
    assert after == [("acme", "DEGRADED")]  # the caller's tenant setting is as it was

    rows = _sql(
        owner_url,
        "SELECT performed_by, action::text, risk_level::text, left(entry_hash, 1)"
        " FROM configuration_audit_logs",
        tenant="acme",
    )
    assert rows == [(sa.make_url(service_url).username, "UPDATE", "LOW", "t")]
