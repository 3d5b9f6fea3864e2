"""``db upgrade`` as a table owner without CREATEROLE: the role ``reconciler_app`` must exist.

The role is cluster-wide; the tests hide it by renaming it (and put it back), and create a
LOGIN owner role and a database of its own, dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from reconciler.cli.main import cli
from reconciler.store import migrate
from reconciler.store.tables import APP_ROLE

OWNER_PASSWORD = "0wner-Passw0rd"


@pytest.fixture(autouse=True)
def no_env_database(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RECONCILER_DATABASE_URL", "DATABASE_URL", "RECONCILER_DEBUG"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def owner(pg_server_url: str) -> Iterator[tuple[str, str]]:
    """(role name, URL) of a LOGIN role without CREATEROLE owning an empty database."""
    role = f"owner_{uuid.uuid4().hex[:8]}"
    database = f"t_{role}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(
            f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEROLE PASSWORD '{OWNER_PASSWORD}'"  # type: ignore[arg-type]
        )
        admin.execute(f"CREATE DATABASE {database} OWNER {role}")  # type: ignore[arg-type]
    url = (
        sa.make_url(pg_server_url)
        .set(username=role, password=OWNER_PASSWORD, database=database)
        .render_as_string(hide_password=False)
    )
    try:
        yield role, url
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")  # type: ignore[arg-type]
            admin.execute(f"DROP ROLE IF EXISTS {role}")  # type: ignore[arg-type]


@pytest.fixture
def app_role_hidden(pg_server_url: str) -> Iterator[None]:
    """``reconciler_app`` does not exist while the test runs (renamed if another test made it)."""
    hidden = f"{APP_ROLE}_hidden_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        existed = admin.execute(
            "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = %s)", (APP_ROLE,)
        ).fetchone() == (True,)
        if existed:
            admin.execute(f"ALTER ROLE {APP_ROLE} RENAME TO {hidden}")  # type: ignore[arg-type]
    try:
        yield
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            if existed:
                admin.execute(f"ALTER ROLE {hidden} RENAME TO {APP_ROLE}")  # type: ignore[arg-type]
            else:
                admin.execute(f"DROP ROLE IF EXISTS {APP_ROLE}")  # type: ignore[arg-type]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def public_tables(url: str) -> list[str]:
    libpq = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
    return [str(row[0]) for row in rows]


def test_upgrade_without_createrole_says_how_to_fix_it(
    owner: tuple[str, str], app_role_hidden: None, pg_server_url: str
) -> None:
    role, url = owner
    expected = (
        f"Error: the role {APP_ROLE} does not exist and {role} may not create roles: run "
        f"`CREATE ROLE {APP_ROLE} NOLOGIN` as a superuser, or grant CREATEROLE to {role}; "
        "nothing was changed"
    )
    failed = run("db", "upgrade", "--database-url", url)
    assert failed.exit_code == 1
    assert failed.stderr.splitlines()[-1] == expected
    assert "Traceback" not in failed.stderr and OWNER_PASSWORD not in failed.output
    assert public_tables(url) == []  # nothing written, not even alembic_version

    # The baseline does not need the role; the next step does, and says so again.
    assert run("db", "upgrade", "baseline", "--database-url", url).exit_code == 0
    failed = run("db", "upgrade", "--database-url", url)
    assert (failed.exit_code, failed.stderr.splitlines()[-1]) == (1, expected)
    assert run("db", "current", "--database-url", url).stdout == "baseline\n"

    # The documented fix: a superuser creates the role; the owner can then upgrade.
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {APP_ROLE} NOLOGIN")  # type: ignore[arg-type]
    try:
        upgraded = run("db", "upgrade", "--database-url", url)
        assert upgraded.exit_code == 0, upgraded.stderr
        assert run("db", "current", "--database-url", url).stdout == f"{migrate.head_revision()}\n"
    finally:
        # Leave the cluster as app_role_hidden expects: no reconciler_app of this test's own.
        # Its grants live in the owner's database: drop that first.
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            database = sa.make_url(url).database
            admin.execute(f"DROP DATABASE {database} WITH (FORCE)")  # type: ignore[arg-type]
            admin.execute(f"DROP ROLE {APP_ROLE}")  # type: ignore[arg-type]
