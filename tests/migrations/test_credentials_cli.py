"""The CLI never prints database credentials, whether the command fails or succeeds.

Each command runs in a fresh process (``python -m reconciler``), with ``--debug`` output too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from reconciler.store.migrate import head_revision
from tests.migrations.test_credentials import (  # the same secrets and leak check
    KEYWORD_PASSWORD,
    QUERY_PASSWORD,
    SSL_PASSWORD,
    USER_PASSWORD,
    assert_no_secret,
    no_env_database,  # noqa: F401 - an autouse fixture: importing it applies it here too
)


def with_credentials(url: str, *, host: str | None = None, port: int | None = None) -> str:
    """``url`` with a userinfo password and ``password``/``sslpassword`` query parameters."""
    parsed = sa.make_url(url).set(drivername="postgresql", password=USER_PASSWORD)
    query = dict(parsed.query) | {"password": QUERY_PASSWORD, "sslpassword": SSL_PASSWORD}
    if host is not None:
        query.pop("host", None)
        parsed = parsed.set(host=host, port=port)
    return parsed.set(query=query).render_as_string(hide_password=False)


def keyword_dsn(url: str) -> str:
    """The same database as a libpq keyword string with quoted passwords."""
    parsed = sa.make_url(url)
    socket_dir = parsed.query["host"]
    return (
        f"host={socket_dir} dbname={parsed.database} user={parsed.username} "
        f"password='{KEYWORD_PASSWORD}' sslpassword='{SSL_PASSWORD}'"
    )


def reconciler(tmp_path: Path, *args: str, debug: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.pop("DATABASE_URL", None)
    if debug:
        env["RECONCILER_DEBUG"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_failing_commands_never_print_credentials(
    tmp_path: Path, empty_database_url: str, debug: bool
) -> None:
    refused = with_credentials(empty_database_url, host="127.0.0.1", port=1)
    no_such_db = with_credentials(
        sa.make_url(empty_database_url).set(database="no_such_db").render_as_string(False)
    )
    for url in (refused, no_such_db):
        for command in (["db", "current"], ["db", "upgrade"]):
            result = reconciler(tmp_path, *command, "--database-url", url, debug=debug)
            assert result.returncode == 1, result.stderr
            assert "Error: database unavailable" in result.stderr
            assert "password=***" in result.stderr and "sslpassword=***" in result.stderr
            assert_no_secret(result.stdout + result.stderr)
            if debug:
                assert "Traceback" in result.stderr


@pytest.mark.parametrize("form", ["url", "keywords"])
def test_succeeding_commands_never_print_credentials(
    tmp_path: Path, empty_database_url: str, form: str
) -> None:
    url = with_credentials(empty_database_url) if form == "url" else keyword_dsn(empty_database_url)
    upgraded = reconciler(tmp_path, "db", "upgrade", "--database-url", url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"upgraded schema: (none) -> {head_revision()}" in upgraded.stderr
    current = reconciler(tmp_path, "db", "current", "--database-url", url, debug=True)
    assert (current.returncode, current.stdout) == (0, f"{head_revision()}\n")
    assert current.stderr.startswith("database: postgresql://postgres:***@/")
    for result in (upgraded, current):
        assert_no_secret(result.stdout + result.stderr)
