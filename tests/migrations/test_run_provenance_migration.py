"""``run_provenance``: ``apply_runs.git_dirty`` survives a downgrade and an upgrade."""

from __future__ import annotations

import psycopg

from reconciler.store import migrate
from reconciler.store.database import resolve_database_url
from tests.migrations.test_migrations import libpq

_RUN = (
    "INSERT INTO apply_runs (id, actor, git_commit, manifests_digest, outcome, "
    "reconciler_version, user_agent, git_dirty) VALUES "
    "(gen_random_uuid(), 'a', 'c1', 'd', 'APPLIED', '0', %s, %s)"
)


def test_downgrade_keeps_git_dirty_and_upgrade_restores_it(empty_database_url: str) -> None:
    target = resolve_database_url(empty_database_url)
    migrate.upgrade(target)
    with psycopg.connect(libpq(empty_database_url), autocommit=True) as conn:
        for agent, dirty in (("reconciler/1", True), (None, True), ("x", False), ("y", None)):
            conn.execute(_RUN, (agent, dirty))
        before = conn.execute(
            "SELECT id, user_agent, git_dirty FROM apply_runs ORDER BY id"
        ).fetchall()
    migrate.downgrade(target, "runtime_functions")
    with psycopg.connect(libpq(empty_database_url), autocommit=True) as conn:
        agents = {a for (a,) in conn.execute("SELECT user_agent FROM apply_runs").fetchall()}
        assert agents == {"reconciler/1 [git-dirty]", " [git-dirty]", "x [git-clean]", "y"}
    migrate.upgrade(target)
    with psycopg.connect(libpq(empty_database_url), autocommit=True) as conn:
        after = conn.execute(
            "SELECT id, user_agent, git_dirty FROM apply_runs ORDER BY id"
        ).fetchall()
    assert after == before
