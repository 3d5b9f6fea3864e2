"""``reconciler db roles | grant | revoke``: idempotent, one-line errors, help with examples."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from reconciler.cli.main import cli


@pytest.fixture(autouse=True)
def no_env_database(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RECONCILER_DATABASE_URL", "DATABASE_URL", "RECONCILER_DEBUG"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def login(pg_server_url: str, database_url: str) -> Iterator[str]:
    """A LOGIN role of this test's own (dropped afterwards)."""
    name = f"login_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'x-Passw0rd'")
        admin.execute(f"CREATE ROLE {name}_group NOLOGIN")
    try:
        yield name
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(f"DROP ROLE {name}")
            admin.execute(f"DROP ROLE {name}_group")


def run(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--database-url", database_url], catch_exceptions=False)


def last_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.stderr
    return result.stderr.splitlines()[-1]


def grants(database_url: str) -> list[tuple[str, str]]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT role_name::text, tenant_id FROM reconciler_tenant_grants ORDER BY 1, 2"
                )
            )
            return [(r[0], r[1]) for r in rows]
    finally:
        engine.dispose()


def test_grant_and_revoke_are_idempotent_and_listed(database_url: str, login: str) -> None:
    first = run(database_url, "db", "grant", "--role", "ci", login)
    assert first.exit_code == 0, first.stderr
    assert f"{login}: granted reconciler_ci" in first.stderr
    again = run(database_url, "db", "grant", "--role", "ci", login)
    assert f"{login}: already a member of reconciler_ci" in again.stderr

    service = run(
        database_url, "db", "grant", "--role", "service", login, "--tenant", "b", "--tenant", "a"
    )
    assert service.exit_code == 0, service.stderr
    assert f"{login}: tenants granted: a, b" in service.stderr
    more = run(database_url, "db", "grant", "--role", "service", login, "--tenant", "a")
    assert f"{login}: tenants already granted: a" in more.stderr
    assert grants(database_url) == [(login, "a"), (login, "b")]

    listed = run(database_url, "db", "roles")
    assert listed.exit_code == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].startswith("owner: ")
    assert f"  members: {login}" in lines  # under reconciler_ci
    assert f"  {login}: a, b" in lines  # under reconciler_app

    only_b = run(database_url, "db", "revoke", "--role", "service", login, "--tenant", "b")
    assert only_b.exit_code == 0 and f"{login}: tenants revoked: b" in only_b.stderr
    assert grants(database_url) == [(login, "a")]
    whole = run(database_url, "db", "revoke", "--role", "service", login)
    assert f"{login}: revoked reconciler_app" in whole.stderr
    assert grants(database_url) == []
    twice = run(database_url, "db", "revoke", "--role", "service", login)
    assert twice.exit_code == 0 and f"{login}: not a member of reconciler_app" in twice.stderr
    assert (
        f"{login}: revoked reconciler_ci"
        in run(database_url, "db", "revoke", "--role", "ci", login).stderr
    )
    assert f"  {login}" not in run(database_url, "db", "roles").stdout


def test_errors_are_one_line(database_url: str, login: str) -> None:
    assert last_error(run(database_url, "db", "grant", "--role", "ci", "no_such_login")) == (
        "Error: role no_such_login does not exist: create it first, e.g. "
        "CREATE ROLE \"no_such_login\" LOGIN PASSWORD '...'"
    )
    assert last_error(run(database_url, "db", "grant", "--role", "deploy", f"{login}_group")) == (
        f"Error: role {login}_group cannot log in: grant reconciler_deploy to the LOGIN role "
        "that connects"
    )
    assert last_error(run(database_url, "db", "grant", "--role", "ci", login, "--tenant", "a")) == (
        "Error: --tenant is for --role service only: reconciler_ci sees every tenant"
    )
    assert last_error(run(database_url, "db", "grant", "--role", "service", login)) == (
        "Error: --role service needs at least one --tenant T"
    )
    superuser = sa.make_url(database_url).username
    assert last_error(
        run(database_url, "db", "grant", "--role", "service", str(superuser), "--tenant", "a")
    ) == (
        f"Error: role {superuser} is a superuser or has BYPASSRLS: row-level security does not "
        "apply to it, so tenant grants cannot limit it; use a login without them"
    )
    assert grants(database_url) == []


def test_help_teaches_with_examples() -> None:
    for command in ("grant", "revoke", "roles"):
        shown = CliRunner().invoke(cli, ["db", command, "--help"])
        assert shown.exit_code == 0
        assert "Examples:" in shown.stdout
    grant_help = CliRunner().invoke(cli, ["db", "grant", "--help"]).stdout
    assert "reconciler db grant --role service billing_service --tenant acme" in grant_help
    assert "deploy|ci|service" in grant_help
