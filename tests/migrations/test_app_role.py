"""``db upgrade`` as a table owner without CREATEROLE: the roles ``reconciler_app``,
``reconciler_deploy`` and ``reconciler_ci`` must exist.

The roles are cluster-wide; the tests hide them by renaming them (and put them back), and
create a LOGIN owner role and a database of its own, dropped afterwards.
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
from reconciler.store.tables import APP_ROLE, CI_ROLE, DEPLOY_ROLE
from reconciler.store.visibility import Access, check_visibility

ROLES = (APP_ROLE, DEPLOY_ROLE, CI_ROLE)

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
            f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEROLE PASSWORD '{OWNER_PASSWORD}'"
        )
        admin.execute(f"CREATE DATABASE {database} OWNER {role}")
    url = (
        sa.make_url(pg_server_url)
        .set(username=role, password=OWNER_PASSWORD, database=database)
        .render_as_string(hide_password=False)
    )
    try:
        yield role, url
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            admin.execute(f"DROP ROLE IF EXISTS {role}")


@pytest.fixture
def app_role_hidden(pg_server_url: str) -> Iterator[None]:
    """The reconciler's roles do not exist while the test runs (renamed if another test made
    them; dropped afterwards if not)."""
    suffix = f"_hidden_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        existed = [
            role
            for role in ROLES
            if admin.execute(
                "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = %s)", (role,)
            ).fetchone()
            == (True,)
        ]
        for role in existed:
            admin.execute(f"ALTER ROLE {role} RENAME TO {role}{suffix}")
    try:
        yield
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            for role in ROLES:
                if role in existed:
                    admin.execute(f"ALTER ROLE {role}{suffix} RENAME TO {role}")
                else:
                    admin.execute(f"DROP ROLE IF EXISTS {role}")


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def public_tables(url: str) -> list[str]:
    libpq = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
    return [str(row[0]) for row in rows]


def missing_roles_message(role: str, *missing: str) -> str:
    subject = (
        f"the role {missing[0]} does not exist"
        if len(missing) == 1
        else f"the roles {', '.join(missing)} do not exist"
    )
    create = "; ".join(f"CREATE ROLE {name} NOLOGIN" for name in missing)
    return (
        f"Error: {subject} and {role} may not create roles: run `{create}` as a superuser, "
        f"or grant CREATEROLE to {role}; nothing was changed"
    )


def test_upgrade_without_createrole_says_how_to_fix_it(
    owner: tuple[str, str], app_role_hidden: None, pg_server_url: str
) -> None:
    role, url = owner
    expected = missing_roles_message(role, *ROLES)
    failed = run("db", "upgrade", "--database-url", url)
    assert failed.exit_code == 1
    assert failed.stderr.splitlines()[-1] == expected
    assert "Traceback" not in failed.stderr and OWNER_PASSWORD not in failed.output
    assert public_tables(url) == []  # nothing written, not even alembic_version

    # The baseline does not need the roles; the next steps do, and say so again.
    assert run("db", "upgrade", "baseline", "--database-url", url).exit_code == 0
    failed = run("db", "upgrade", "--database-url", url)
    assert (failed.exit_code, failed.stderr.splitlines()[-1]) == (1, expected)
    assert run("db", "current", "--database-url", url).stdout == "baseline\n"

    # Only the roles still missing are named.
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {APP_ROLE} NOLOGIN")
    try:
        failed = run("db", "upgrade", "--database-url", url)
        assert (failed.exit_code, failed.stderr.splitlines()[-1]) == (
            1,
            missing_roles_message(role, DEPLOY_ROLE, CI_ROLE),
        )
        # Up to the revision before them, the app role is enough.
        assert run("db", "upgrade", "keyed_audit_chain", "--database-url", url).exit_code == 0

        # The documented fix: a superuser creates the roles; the owner can then upgrade.
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(f"CREATE ROLE {DEPLOY_ROLE} NOLOGIN")
            admin.execute(f"CREATE ROLE {CI_ROLE} NOLOGIN")
        upgraded = run("db", "upgrade", "--database-url", url)
        assert upgraded.exit_code == 0, upgraded.stderr
        assert run("db", "current", "--database-url", url).stdout == f"{migrate.head_revision()}\n"

        # FORCEd row-level security: the owner (no superuser, no BYPASSRLS) still sees and
        # writes every row through its own policy, and passes the visibility check.
        engine = sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg"))
        try:
            with engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "INSERT INTO integration_configs (tenant_id, platform, config_type, "
                        "environment) VALUES ('a', 'STRIPE', 'API_KEY', 'PRODUCTION'), "
                        "('b', 'STRIPE', 'API_KEY', 'PRODUCTION')"
                    )
                )
                check_visibility(conn, Access.APPLY)
                seen = conn.execute(sa.text("SELECT count(*) FROM integration_configs"))
                assert seen.scalar() == 2
        finally:
            engine.dispose()

        # Granting the group roles needs ADMIN OPTION on them, which the owner lacks here.
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(f"CREATE ROLE {role}_ci LOGIN")
        failed = run("db", "grant", "--role", "ci", f"{role}_ci", "--database-url", url)
        assert (failed.exit_code, failed.stderr.splitlines()[-1]) == (
            1,
            f'Error: permission denied: `GRANT {CI_ROLE} TO "{role}_ci"` must be run by a '
            "superuser, or by a role with ADMIN OPTION on the group role; nothing was changed",
        )
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(f"GRANT {CI_ROLE} TO {role} WITH ADMIN OPTION")
        granted = run("db", "grant", "--role", "ci", f"{role}_ci", "--database-url", url)
        assert granted.exit_code == 0, granted.stderr
        revoked = run("db", "revoke", "--role", "ci", f"{role}_ci", "--database-url", url)
        assert revoked.exit_code == 0, revoked.stderr
        assert f"  members: {role}" in run("db", "roles", "--database-url", url).stdout
    finally:
        # Leave the cluster as app_role_hidden expects: no roles of this test's own.
        # Their grants live in the owner's database: drop that first.
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            database = sa.make_url(url).database
            admin.execute(f"DROP DATABASE {database} WITH (FORCE)")
            admin.execute(f"DROP ROLE IF EXISTS {role}_ci")
            for name in ROLES:
                admin.execute(f"DROP ROLE IF EXISTS {name}")
