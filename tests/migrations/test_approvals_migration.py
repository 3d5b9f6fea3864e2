"""``approvals``: ``plan_approvals`` is append-only, scoped by role, and survives a
downgrade (archived) and an upgrade (restored)."""

from __future__ import annotations

import psycopg
import pytest

from reconciler.store import migrate
from reconciler.store.database import resolve_database_url
from tests.migrations.test_migrations import libpq

INSERT = (
    "INSERT INTO plan_approvals (plan_digest, approved_by, plan_author, max_risk, tenants, note)"
    " VALUES (%s, 'bob', 'alice', 'CRITICAL', ARRAY['acme'], 'ok') RETURNING id"
)
DIGEST = "a" * 64


def test_approvals_are_append_only_and_survive_a_round_trip(empty_database_url: str) -> None:
    target = resolve_database_url(empty_database_url)
    migrate.upgrade(target)
    with psycopg.connect(libpq(empty_database_url), autocommit=True) as conn:
        conn.execute(INSERT, (DIGEST,))
        for statement in (
            "UPDATE plan_approvals SET approved_by = 'alice'",
            "DELETE FROM plan_approvals",
            "TRUNCATE plan_approvals",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(INSERT, (DIGEST,))
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(INSERT, ("not-a-digest",))
        privileges = conn.execute(
            "SELECT grantee, string_agg(privilege_type, ',' ORDER BY privilege_type)"
            " FROM information_schema.role_table_grants WHERE table_name = 'plan_approvals'"
            " AND grantee LIKE 'reconciler_%%' GROUP BY grantee ORDER BY grantee"
        ).fetchall()
        assert privileges == [("reconciler_ci", "SELECT"), ("reconciler_deploy", "INSERT,SELECT")]
        before = conn.execute("SELECT * FROM plan_approvals").fetchall()

    migrate.downgrade(target, "run_provenance")
    with psycopg.connect(libpq(empty_database_url), autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('public.plan_approvals')").fetchone() == (None,)
        assert conn.execute("SELECT * FROM reconciler_archive.plan_approvals").fetchall() == before
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM reconciler_archive.plan_approvals")
    migrate.upgrade(target)
    migrate.check(target)
    with psycopg.connect(libpq(empty_database_url), autocommit=True) as conn:
        assert conn.execute("SELECT * FROM plan_approvals").fetchall() == before
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM plan_approvals")
        conn.execute(INSERT.replace("'bob'", "'carol'"), (DIGEST,))  # inserts work again


def test_an_empty_table_is_dropped_on_downgrade(empty_database_url: str) -> None:
    target = resolve_database_url(empty_database_url)
    migrate.upgrade(target)
    migrate.downgrade(target, "run_provenance")
    with psycopg.connect(libpq(empty_database_url), autocommit=True) as conn:
        assert conn.execute(
            "SELECT to_regclass('reconciler_archive.plan_approvals')"
        ).fetchone() == (None,)
    migrate.upgrade(target)
    migrate.check(target)
