"""``managed_tokens``: ``oauth_tokens.managed_since`` survives a downgrade and an upgrade."""

from __future__ import annotations

import psycopg

from reconciler.store import migrate
from reconciler.store.database import resolve_database_url
from tests.migrations.test_migrations import libpq


def test_downgrade_keeps_managed_since_and_upgrade_restores_it(empty_database_url: str) -> None:
    target = resolve_database_url(empty_database_url)
    migrate.upgrade(target)
    with psycopg.connect(libpq(empty_database_url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id,"
            " managed_since) VALUES ('acme', 'STRIPE', 't1', 'acct_1', '2026-03-04T05:06:07Z'),"
            " ('acme', 'STRIPE', 't2', 'acct_2', NULL)"
        )
        before = conn.execute(
            "SELECT id, managed_since, metadata FROM oauth_tokens ORDER BY id"
        ).fetchall()
    migrate.downgrade(target, "keyed_audit_chain")
    with psycopg.connect(libpq(empty_database_url), autocommit=True) as conn:
        kept = conn.execute("SELECT id, metadata FROM oauth_tokens ORDER BY id").fetchall()
        assert [m.get("reconciler_managed_since") is not None for _, m in kept] == [True, False]
    migrate.upgrade(target)
    with psycopg.connect(libpq(empty_database_url), autocommit=True) as conn:
        after = conn.execute(
            "SELECT id, managed_since, metadata FROM oauth_tokens ORDER BY id"
        ).fetchall()
    assert after == before
