"""The Citus subset: the same tests against a Citus cluster (coordinator and workers).

Runs only when ``RECONCILER_TEST_CITUS_URL`` points at a Citus coordinator's admin URL (a
superuser, e.g. ``postgresql://postgres@127.0.0.1:57001/postgres`` from
``../shared/citus/cluster start``) whose worker nodes are registered in that database. Each
test gets a new database created on the coordinator and on every worker (Citus does not
propagate ``CREATE DATABASE``), with the extension, the nodes registered, and the schema
migrated to head (which distributes it). Without the variable these tests are skipped; CI
sets it (``.ci/run``), so there they always run.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.e2e.workspace import Workspace

CITUS_URL_VARIABLE = "RECONCILER_TEST_CITUS_URL"


@pytest.fixture(scope="session")
def citus_admin_url() -> str:
    """The coordinator's admin URL (libpq form), or skip when none is given."""
    url = os.environ.get(CITUS_URL_VARIABLE)
    if not url:
        pytest.skip(f"{CITUS_URL_VARIABLE} is not set (see tests/citus/conftest.py)")
    return url


@pytest.fixture(scope="session")
def citus_workers(citus_admin_url: str) -> list[tuple[str, int]]:
    """(host, port) of every active worker registered on the coordinator."""
    with psycopg.connect(citus_admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT nodename, nodeport FROM pg_dist_node "
            "WHERE groupid > 0 AND isactive AND noderole = 'primary' ORDER BY nodeid"
        ).fetchall()
    if not rows:
        pytest.fail(f"{CITUS_URL_VARIABLE}: the coordinator has no active worker nodes")
    return [(str(h), int(p)) for h, p in rows]


def _node_url(admin_url: str, host: str, port: int, database: str) -> str:
    return (
        make_url(admin_url)
        .set(host=host, port=port, database=database)
        .render_as_string(hide_password=False)
    )


def _nodes(admin_url: str, workers: list[tuple[str, int]]) -> list[tuple[str, int]]:
    coordinator = make_url(admin_url)
    return [(coordinator.host or "127.0.0.1", coordinator.port or 5432), *workers]


def create_citus_database(
    admin_url: str, workers: list[tuple[str, int]], template: str | None = None
) -> str:
    """A new database with Citus on the coordinator and every worker (SQLAlchemy URL).

    With ``template``, each node's database is a copy of that node's ``template`` database:
    Citus keeps its metadata (shards, placements, nodes) in the database itself, so copying
    every node's database at once copies the distributed schema and its contents.
    """
    name = f"c_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    nodes = _nodes(admin_url, workers)
    for host, port in nodes:
        with psycopg.connect(_node_url(admin_url, host, port, "postgres"), autocommit=True) as c:
            if template is None:
                c.execute(f'CREATE DATABASE "{name}"')
                continue
            # Citus's maintenance daemon stays connected to every database with the
            # extension; a template must have no connections while it is copied.
            for _ in range(50):
                c.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (template,),
                )
                try:
                    c.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                    break
                except psycopg.errors.ObjectInUse:
                    time.sleep(0.1)
            else:
                pytest.fail(f"template database {template} stays in use on {host}:{port}")
    if template is None:
        for host, port in nodes:
            with psycopg.connect(_node_url(admin_url, host, port, name), autocommit=True) as c:
                c.execute("CREATE EXTENSION citus")
        with psycopg.connect(_node_url(admin_url, *nodes[0], name), autocommit=True) as c:
            c.execute("SELECT citus_set_coordinator_host(%s, %s)", nodes[0])
            for host, port in workers:
                c.execute("SELECT citus_add_node(%s, %s)", (host, port))
    url = make_url(_node_url(admin_url, *nodes[0], name)).set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def drop_citus_database(admin_url: str, workers: list[tuple[str, int]], url: str) -> None:
    """Drop the database of ``url`` on every node."""
    name = make_url(url).database
    for host, port in _nodes(admin_url, workers):
        with psycopg.connect(_node_url(admin_url, host, port, "postgres"), autocommit=True) as c:
            # Citus's maintenance daemon (a background worker, which FORCE does not stop) may
            # be connected for a moment: try again.
            for _ in range(100):
                try:
                    c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    break
                except psycopg.errors.ObjectInUse:
                    c.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()",
                        (name,),
                    )
                    time.sleep(0.1)


@pytest.fixture(scope="session")
def citus_schema_template(
    citus_admin_url: str, citus_workers: list[tuple[str, int]]
) -> Iterator[str]:
    """A Citus database migrated to head once per test run, copied by ``database_url``.

    Four shards per table instead of Citus's default 32: the same distribution, set up
    faster (the schema takes the count from ``citus.shard_count``).
    """
    from reconciler.store import migrate
    from reconciler.store.database import resolve_database_url

    url = create_citus_database(citus_admin_url, citus_workers)
    name = make_url(url).database
    with psycopg.connect(citus_admin_url, autocommit=True) as c:
        c.execute(f'ALTER DATABASE "{name}" SET citus.shard_count = 4')
    migrate.upgrade(resolve_database_url(url))
    assert name is not None
    yield name
    drop_citus_database(citus_admin_url, citus_workers, url)


@pytest.fixture
def citus_empty_database_url(
    citus_admin_url: str, citus_workers: list[tuple[str, int]]
) -> Iterator[str]:
    """A new Citus database without the reconciler's schema (SQLAlchemy URL)."""
    url = create_citus_database(citus_admin_url, citus_workers)
    yield url
    drop_citus_database(citus_admin_url, citus_workers, url)


@pytest.fixture
def database_url(
    citus_admin_url: str, citus_workers: list[tuple[str, int]], citus_schema_template: str
) -> Iterator[str]:
    """Overrides the plain-PostgreSQL fixture: a Citus database at head (distributed)."""
    # At most one database is being dropped at a time: each Citus database keeps a
    # maintenance worker (two-phase commit recovery) on every node, out of a few slots.
    while _DROPPING:
        _DROPPING.pop().join(timeout=120)
    url = create_citus_database(citus_admin_url, citus_workers, template=citus_schema_template)
    with psycopg.connect(citus_admin_url, autocommit=True) as c:
        # Some tests tamper with the audit log as its owner (ALTER TABLE ... DISABLE
        # TRIGGER), which Citus allows on a distributed table only with this setting.
        c.execute(
            f'ALTER DATABASE "{make_url(url).database}" SET citus.enable_unsafe_triggers = on'
        )
    yield url
    # DROP DATABASE waits for a checkpoint on each node: done while the next test runs.
    dropping = threading.Thread(
        target=drop_citus_database, args=(citus_admin_url, citus_workers, url), daemon=True
    )
    dropping.start()
    _DROPPING.append(dropping)


_DROPPING: list[threading.Thread] = []


def pytest_sessionfinish() -> None:
    for thread in _DROPPING:
        thread.join(timeout=120)


@pytest.fixture
def pg_server_url(citus_admin_url: str) -> str:
    """Overrides the embedded server: tests asking for the server get the coordinator."""
    return citus_admin_url


@pytest.fixture
def ws(tmp_path: Path, database_url: str) -> Workspace:
    """A repository with an age key, a .sops.yaml and an empty manifests/ tree (on Citus)."""
    return Workspace.create(tmp_path, database_url)
