"""The least_privilege_roles revision: what it sets up, and a downgrade that keeps every row."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from reconciler.store import migrate
from reconciler.store.database import DatabaseTarget, resolve_database_url

REVISION = "least_privilege_roles"
TABLES = (
    "oauth_tokens",
    "integration_configs",
    "webhook_configurations",
    "configuration_audit_logs",
    "apply_runs",
)
SEED = [
    "INSERT INTO oauth_tokens (tenant_id, platform, access_token) VALUES ('a', 'STRIPE', 'enc:a')",
    "INSERT INTO integration_configs (tenant_id, platform, config_type, environment) "
    "VALUES ('a', 'STRIPE', 'API_KEY', 'PRODUCTION')",
    "INSERT INTO webhook_configurations "
    "(tenant_id, platform, environment, name, webhook_type, endpoint_url, auth_type) "
    "VALUES ('a', 'STRIPE', 'PRODUCTION', 'hook', 'INBOUND', 'https://a.example', 'NONE')",
    "INSERT INTO configuration_audit_logs "
    "(tenant_id, entity_type, action, changes, risk_level, performed_by, entry_hash) "
    "VALUES ('a', 'OAUTH_TOKEN', 'CREATE', '{}', 'LOW', 'ci', repeat('a', 64))",
    "INSERT INTO apply_runs (actor, manifests_digest, outcome, reconciler_version) "
    "VALUES ('ci', 'x', 'APPLIED', '1')",
]


@pytest.fixture
def target(empty_database_url: str) -> DatabaseTarget:
    return resolve_database_url(empty_database_url)


@pytest.fixture
def conn(target: DatabaseTarget) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    libpq = make_url(target.url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as connection:
        yield connection


def rows(conn: psycopg.Connection[tuple[object, ...]]) -> list[object]:
    return [conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in TABLES]


def security(conn: psycopg.Connection[tuple[object, ...]]) -> list[tuple[object, ...]]:
    """(table, RLS enabled, forced, policies with their roles) of every table."""
    return conn.execute(
        """
        SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity,
               ARRAY(SELECT p.polname || ':' || array_to_string(ARRAY(
                        SELECT CASE WHEN r = 0 THEN 'public' ELSE r::regrole::text END
                          FROM unnest(p.polroles) AS r ORDER BY 1), ',')
                       FROM pg_policy p WHERE p.polrelid = c.oid ORDER BY 1)
          FROM pg_class c WHERE c.relname = ANY(%s) ORDER BY 1
        """,
        (list(TABLES),),
    ).fetchall()


def test_upgrade_forces_rls_and_downgrade_keeps_every_row(
    target: DatabaseTarget, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    migrate.upgrade(target, "keyed_audit_chain")
    before_security = security(conn)
    for statement in SEED:
        conn.execute(statement)
    seeded = rows(conn)

    migrate.upgrade(target, REVISION)
    owner = conn.execute("SELECT current_user").fetchone()
    assert owner is not None
    forced = security(conn)
    assert all(enabled and force for _, enabled, force, _ in forced), forced
    policies = {str(r[0]): list(r[3]) for r in forced}  # type: ignore[call-overload]
    own = [
        "reconciler_ci:reconciler_ci",
        "reconciler_deploy:reconciler_deploy",
        f"reconciler_owner:{owner[0]}",
    ]
    assert policies["apply_runs"] == own
    assert policies["integration_configs"] == [*own, "tenant_isolation:reconciler_app"]
    assert conn.execute(
        "SELECT has_table_privilege('reconciler_app', 'apply_runs', 'SELECT'), "
        "has_table_privilege('reconciler_ci', 'integration_configs', 'UPDATE'), "
        "has_table_privilege('reconciler_deploy', 'oauth_tokens', 'DELETE'), "
        "has_function_privilege('reconciler_app', 'reconciler_row_counts(text[])', 'EXECUTE')"
    ).fetchone() == (False, False, False, False)
    assert conn.execute(
        "SELECT table_name, row_count "
        "FROM reconciler_row_counts(ARRAY['apply_runs', 'oauth_tokens']) ORDER BY 1"
    ).fetchall() == [("apply_runs", 1), ("oauth_tokens", 1)]
    assert rows(conn) == seeded
    conn.execute("INSERT INTO reconciler_tenant_grants VALUES ('someone', 'a')")

    migrate.downgrade(target, "keyed_audit_chain")
    assert rows(conn) == seeded
    assert security(conn) == before_security
    assert conn.execute(
        "SELECT to_regclass('reconciler_tenant_grants'), to_regproc('reconciler_row_counts'), "
        "has_table_privilege('reconciler_app', 'apply_runs', 'SELECT'), "
        "has_table_privilege('reconciler_ci', 'integration_configs', 'SELECT')"
    ).fetchone() == (None, None, True, False)

    migrate.upgrade(target, REVISION)
    assert rows(conn) == seeded
    migrate.upgrade(target)
    migrate.check(target)


@pytest.fixture
def application_owner(pg_server_url: str, target: DatabaseTarget) -> Iterator[tuple[str, str]]:
    """(name, libpq URL) of a LOGIN role standing for an application that owns oauth_tokens."""
    name = f"oauth_app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'App-Passw0rd'")
    url = (
        make_url(target.url)
        .set(drivername="postgresql", username=name, password="App-Passw0rd")
        .render_as_string(hide_password=False)
    )
    try:
        yield name, url
    finally:
        libpq = make_url(target.url).set(drivername="postgresql")
        with psycopg.connect(libpq.render_as_string(hide_password=False), autocommit=True) as c:
            c.execute(f"REASSIGN OWNED BY {name} TO current_user")
            c.execute(f"DROP OWNED BY {name}")
            c.execute(f"DROP ROLE {name}")


def test_an_application_owning_oauth_tokens_keeps_every_token(
    target: DatabaseTarget,
    conn: psycopg.Connection[tuple[object, ...]],
    application_owner: tuple[str, str],
) -> None:
    # The table existed before the reconciler, owned by the application's login; a superuser
    # migrates, so the reconciler's tables belong to another role.
    name, url = application_owner
    migrate.upgrade(target, "keyed_audit_chain")
    conn.execute(f"ALTER TABLE oauth_tokens OWNER TO {name}")
    conn.execute(SEED[0])
    conn.execute(SEED[0].replace("'a'", "'b'"))

    migrate.upgrade(target, REVISION)
    with psycopg.connect(url, autocommit=True) as app:
        assert app.execute("SELECT count(*) FROM oauth_tokens").fetchone() == (2,)
        app.execute(SEED[0].replace("'a'", "'c'"))
        assert app.execute("SELECT count(*) FROM oauth_tokens").fetchone() == (3,)
    assert conn.execute(
        "SELECT * FROM reconciler_row_counts(ARRAY['oauth_tokens'])"
    ).fetchall() == [("oauth_tokens", 3)]
