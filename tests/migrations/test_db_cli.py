"""``reconciler db ...``: upgrade, current, downgrade, sql, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reconciler.cli.cmd_db import db
from reconciler.store import migrate

HEAD = migrate.head_revision()


@pytest.fixture(autouse=True)
def no_env_database(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RECONCILER_DATABASE_URL", "DATABASE_URL", "RECONCILER_DEBUG"):
        monkeypatch.delenv(name, raising=False)


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(db, list(args), input=input, catch_exceptions=False)


def test_upgrade_current_downgrade(empty_database_url: str) -> None:
    url = ["--database-url", empty_database_url]

    result = run("current", *url)
    assert (result.exit_code, result.stdout) == (0, "(none)\n")
    assert "behind head" in result.stderr
    assert result.stderr.startswith("database: postgresql://postgres:***@")

    result = run("upgrade", "baseline", *url)
    assert result.exit_code == 0, result.stderr
    assert "upgraded schema: (none) -> baseline" in result.stderr

    result = run("upgrade", *url)
    assert result.exit_code == 0, result.stderr
    assert f"upgraded schema: baseline -> {HEAD}" in result.stderr
    assert run("current", *url).stdout == f"{HEAD}\n"

    result = run("upgrade", *url)
    assert f"schema already at {HEAD}; nothing to do" in result.stderr

    result = run("downgrade", "baseline", *url, input="n\n")
    assert result.exit_code == 1  # aborted at the prompt
    assert run("current", *url).stdout == f"{HEAD}\n"

    result = run("downgrade", "baseline", *url, input="y\n")
    assert result.exit_code == 0, result.stderr
    assert f"downgraded schema: {HEAD} -> baseline" in result.stderr

    result = run("downgrade", "base", "--yes", *url)
    assert result.exit_code == 0, result.stderr
    assert run("current", *url).stdout == "(none)\n"


def test_database_url_from_environment(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_DATABASE_URL", database_url)
    result = run("current")
    assert result.stdout == f"{HEAD}\n"
    assert "(from RECONCILER_DATABASE_URL)" in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["current", "--database-url", "postgresql://app:s3cr3t@127.0.0.1:1/x"], "unavailable"),
        (["upgrade", "--database-url", "postgresql://app:s3cr3t@127.0.0.1:1/x"], "unavailable"),
        (["current", "--database-url", "mysql://app:s3cr3t@db/x"], "unsupported database URL"),
    ],
    ids=["current-refused", "upgrade-refused", "not-postgres"],
)
def test_bad_database_is_one_line_and_exit_1(args: list[str], expected: str) -> None:
    result = run(*args)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and expected in errors[0]
    assert "Traceback" not in result.stderr and "s3cr3t" not in result.output


def test_unknown_revision_is_one_line(database_url: str) -> None:
    result = run("downgrade", "nosuchrev", "--yes", "--database-url", database_url)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("Error:")
    assert "nosuchrev" in result.stderr


def test_console_script_bad_url_prints_one_line(tmp_path: Path) -> None:
    # The real entry point, in a fresh process: no traceback reaches the user.
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "reconciler.cli.main",
            "db",
            "current",
            "--database-url",
            "postgresql://app:s3cr3t@127.0.0.1:1/config",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert completed.returncode == 1
    assert completed.stdout == ""
    lines = completed.stderr.splitlines()
    assert lines[0] == "database: postgresql://app:***@127.0.0.1:1/config (from --database-url)"
    assert len(lines) == 2 and lines[1].startswith("Error: database unavailable")
    assert "s3cr3t" not in completed.stderr


@pytest.mark.parametrize("rollback", [False, True], ids=["upgrade", "rollback"])
def test_sql_to_stdout_and_file(tmp_path: Path, rollback: bool) -> None:
    flags = ["--rollback"] if rollback else []
    printed = run("sql", *flags)
    assert printed.exit_code == 0
    assert printed.stdout == migrate.offline_sql(rollback=rollback)
    out = tmp_path / "out.sql"
    written = run("sql", *flags, "--out", str(out))
    assert written.exit_code == 0
    assert out.read_text(encoding="utf-8") == printed.stdout
    assert ("DROP TABLE integration_configs" in printed.stdout) is rollback
