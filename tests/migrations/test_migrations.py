"""Migrations: up -> down -> up round trips keep baseline tokens, and the head matches tables.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from reconciler.errors import ConfigError, StateError
from reconciler.store import migrate
from reconciler.store.database import DatabaseTarget, resolve_database_url
from reconciler.store.tables import metadata

ARCHIVE = migrate.ARCHIVE_SCHEMA

REPO = Path(__file__).resolve().parents[2]
BASELINE_COLUMNS = (
    "id",
    "tenant_id",
    "platform",
    "access_token",
    "refresh_token",
    "token_type",
    "scope",
    "expires_at",
    "created_at",
    "updated_at",
)
SELECT_BASELINE = f"SELECT {', '.join(BASELINE_COLUMNS)} FROM oauth_tokens ORDER BY tenant_id, id"


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def target(empty_database_url: str) -> DatabaseTarget:
    return resolve_database_url(empty_database_url)


@pytest.fixture
def conn(target: DatabaseTarget) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(libpq(target.url), autocommit=True) as connection:
        yield connection


def tables(conn: psycopg.Connection[tuple[object, ...]]) -> set[str]:
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {str(row[0]) for row in rows}


def enum_types(conn: psycopg.Connection[tuple[object, ...]]) -> set[str]:
    rows = conn.execute("SELECT typname FROM pg_type WHERE typtype = 'e'")
    return {str(row[0]) for row in rows}


def oauth_columns(conn: psycopg.Connection[tuple[object, ...]]) -> set[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'oauth_tokens'"
    )
    return {str(row[0]) for row in rows}


def insert_baseline_tokens(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    conn.execute(
        """
        INSERT INTO oauth_tokens (tenant_id, platform, access_token, refresh_token, token_type,
                                  scope, expires_at, created_at, updated_at)
        VALUES ('acme', 'STRIPE', 'enc:access-1', 'enc:refresh-1', 'bearer', 'read_write',
                '2030-01-01T00:00:00Z', '2024-01-01T00:00:00Z', '2024-06-01T00:00:00Z'),
               ('acme', 'HUBSPOT', 'enc:access-2', NULL, NULL, NULL, NULL,
                '2024-02-01T00:00:00Z', '2024-02-01T00:00:00Z'),
               ('globex', 'QUICKBOOKS', 'enc:access-3', 'enc:refresh-3', 'bearer',
                'com.intuit.quickbooks.accounting', '2029-05-05T05:05:05Z',
                '2024-03-01T00:00:00Z', '2024-03-02T00:00:00Z')
        """
    )


def test_round_trip_keeps_baseline_token_rows(
    target: DatabaseTarget, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    migrate.upgrade(target, "baseline")
    assert migrate.current(target) == "baseline"
    insert_baseline_tokens(conn)
    before = conn.execute(SELECT_BASELINE).fetchall()

    migrate.upgrade(target)
    assert migrate.current(target) == migrate.head_revision()
    # The seed's data step ran on every existing token.
    migrated = conn.execute(
        "SELECT DISTINCT is_active, encryption_key_version, metadata, row_version FROM oauth_tokens"
    ).fetchall()
    assert migrated == [(True, 1, {}, 1)]
    # A token written after the upgrade, using the new columns.
    conn.execute(
        "INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id) "
        "VALUES ('initech', 'STRIPE', 'enc:access-4', 'acct_1')"
    )
    before_rollback = conn.execute(SELECT_BASELINE).fetchall()
    assert len(before_rollback) == 4

    migrate.downgrade(target, "baseline")
    assert migrate.current(target) == "baseline"
    assert conn.execute(SELECT_BASELINE).fetchall() == before_rollback
    assert oauth_columns(conn) == set(BASELINE_COLUMNS)
    assert tables(conn) == {"alembic_version", "oauth_tokens"}
    # Audit log and apply history are archived (their enum columns as text), not dropped.
    assert enum_types(conn) == {"platform"}
    archived = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (ARCHIVE,))
    assert {row[0] for row in archived} == {
        "configuration_audit_logs",
        "apply_runs",
        "oauth_tokens_columns",
    }
    assert conn.execute(
        "SELECT relrowsecurity FROM pg_class WHERE relname = 'oauth_tokens'"
    ).fetchone() == (False,)
    assert conn.execute("SELECT count(*) FROM pg_policy").fetchone() == (0,)
    grants = conn.execute(
        "SELECT count(*) FROM information_schema.role_table_grants WHERE grantee = 'reconciler_app'"
    ).fetchone()
    assert grants == (0,)
    assert conn.execute(
        "SELECT count(*) FROM pg_proc WHERE proname LIKE 'configuration_audit%'"
    ).fetchone() == (0,)

    migrate.upgrade(target)
    assert [row[:10] for row in conn.execute(SELECT_BASELINE).fetchall()] == before_rollback
    assert set(before) <= set(before_rollback)
    migrate.check(target)

    # `base` forgets the revisions but never drops the application's tokens.
    migrate.downgrade(target, "base")
    assert migrate.current(target) is None
    assert tables(conn) == {"alembic_version", "oauth_tokens"}
    assert enum_types(conn) == {"platform"}
    assert conn.execute(SELECT_BASELINE).fetchall() == before_rollback

    migrate.upgrade(target)
    migrate.check(target)
    assert tables(conn) == {"alembic_version", *metadata.tables}
    assert [row[:10] for row in conn.execute(SELECT_BASELINE).fetchall()] == before_rollback


def test_baseline_adopts_an_existing_oauth_tokens_table(
    target: DatabaseTarget, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    # A database from before the reconciler: the application's table, with rows, no Alembic.
    migrate.upgrade(target, "baseline")
    insert_baseline_tokens(conn)
    conn.execute("DROP TABLE alembic_version")
    before = conn.execute(SELECT_BASELINE).fetchall()

    migrate.upgrade(target)

    assert conn.execute(SELECT_BASELINE).fetchall() == before
    migrate.check(target)


def test_head_matches_tables(database_url: str) -> None:
    migrate.check(resolve_database_url(database_url))


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE integration_configs ALTER COLUMN features SET DEFAULT '[]'::jsonb",
        "ALTER TABLE integration_configs ALTER COLUMN health_status SET DEFAULT 'HEALTHY'",
        "ALTER TABLE webhook_configurations ALTER COLUMN endpoint_url DROP NOT NULL",
        "ALTER TABLE integration_configs ALTER COLUMN id SET GENERATED ALWAYS",
        "DROP INDEX idx_pending_reviews; CREATE INDEX idx_pending_reviews "
        "ON configuration_audit_logs (tenant_id, risk_level) WHERE requires_review",
        "DROP INDEX idx_features_gin; "
        "CREATE INDEX idx_features_gin ON integration_configs (features)",
        "DROP INDEX idx_configuration_audit_logs_tenant_created",
        "ALTER TYPE risk_level ADD VALUE 'EXTREME'",
        "ALTER TABLE integration_configs DROP CONSTRAINT ck_integration_configs_sync_interval",
        "ALTER TABLE webhook_configurations DROP CONSTRAINT uq_webhook_configurations_identity",
        "ALTER TABLE apply_runs ADD COLUMN extra TEXT",
    ],
    ids=[
        "jsonb-default",
        "enum-default",
        "nullability",
        "identity",
        "partial-predicate",
        "gin-method",
        "missing-index",
        "enum-label",
        "check-constraint",
        "unique-constraint",
        "extra-column",
    ],
)
def test_check_detects_drift(database_url: str, statement: str) -> None:
    with psycopg.connect(libpq(database_url), autocommit=True) as conn:
        conn.execute(statement)
    with pytest.raises(StateError):
        migrate.check(resolve_database_url(database_url))


def test_unknown_revision_is_a_one_line_config_error(target: DatabaseTarget) -> None:
    with pytest.raises(ConfigError, match="nosuchrev") as info:
        migrate.upgrade(target, "nosuchrev")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("rollback", [False, True], ids=["upgrade", "rollback"])
def test_committed_offline_sql_is_current(rollback: bool) -> None:
    path = REPO / "migrations" / "sql" / ("rollback.sql" if rollback else "upgrade.sql")
    assert path.read_text(encoding="utf-8") == migrate.offline_sql(rollback=rollback), (
        f"{path.relative_to(REPO)} is out of date: run "
        f"`reconciler db sql{' --rollback' if rollback else ''} --out {path.relative_to(REPO)}`"
    )


def test_offline_sql_upgrades_and_rolls_back(
    target: DatabaseTarget, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    # What a DBA does with `psql -f`: the scripts hold their own BEGIN/COMMIT.
    conn.execute(migrate.offline_sql().encode())
    assert migrate.current(target) == migrate.head_revision()
    migrate.check(target)

    # The rollback ends at baseline: the application's table stays.
    conn.execute(migrate.offline_sql(rollback=True).encode())
    assert migrate.current(target) == "baseline"
    assert tables(conn) == {"alembic_version", "oauth_tokens"}
    assert enum_types(conn) == {"platform"}

    conn.execute(migrate.offline_sql(start="baseline").encode())
    assert migrate.current(target) == migrate.head_revision()
    migrate.check(target)
