"""open_database: the engine is disposed when the ``with`` block ends, however it ends."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy as sa

from reconciler.errors import ConfigError
from reconciler.store.session import open_database


def test_leaving_the_block_closes_pooled_connections(database_url: str) -> None:
    with open_database(database_url) as db:
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
        assert db.engine.pool.checkedin() == 1  # type: ignore[attr-defined]
    assert db.engine.pool.checkedin() == 0  # type: ignore[attr-defined]


def test_an_error_in_the_block_still_closes_them(database_url: str) -> None:
    with pytest.raises(RuntimeError), open_database(database_url) as db:
        with db.engine.connect():
            pass
        raise RuntimeError("boom")
    assert db.engine.pool.checkedin() == 0  # type: ignore[attr-defined]


def test_a_failed_open_leaves_no_connection_open(
    empty_database_url: str, pg_server_url: str
) -> None:
    # The connection check passes, then the schema check refuses: the engine is disposed.
    with pytest.raises(ConfigError, match="run `reconciler db upgrade`"):
        open_database(empty_database_url)
    name = sa.make_url(empty_database_url).database
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
        ).fetchone()
    assert rows == (0,)
