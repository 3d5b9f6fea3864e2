"""One command line: output options in either position, colour rules, fast --version and
--help, examples in every help of the plan workflow's commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from reconciler.cli.main import COMMANDS, cli, load_command
from reconciler.cli.options import use_color

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("sqlalchemy", "psycopg", "cryptography", "pyrage", "pydantic", "alembic")


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(REPO)
    for name in ("SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "RECONCILER_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


@pytest.mark.parametrize(
    ("environ", "no_color", "tty", "expected"),
    [
        ({}, False, True, True),
        ({}, False, False, False),
        ({"NO_COLOR": ""}, False, True, True),  # empty: no effect (no-color.org)
        ({"NO_COLOR": "1"}, False, True, False),
        ({"NO_COLOR": "0"}, False, True, False),  # any non-empty value
        ({"FORCE_COLOR": "1"}, False, False, True),
        ({"FORCE_COLOR": ""}, False, False, False),
        ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False, False, False),
        ({"FORCE_COLOR": "1"}, True, True, False),  # --no-color wins
    ],
)
def test_colour_rules(environ: dict[str, str], no_color: bool, tty: bool, expected: bool) -> None:
    assert use_color(no_color, environ, isatty=tty) is expected


@pytest.mark.parametrize(
    "args",
    [
        ["--quiet", "validate"],
        ["validate", "--quiet"],
        ["validate", "-q", "--no-color"],
        ["--no-color", "--quiet", "validate"],
    ],
)
def test_output_options_in_either_position(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "files valid" not in result.stdout


def test_format_before_the_command(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--format", "json", "validate"])
    assert result.exit_code == 0, result.output
    assert result.stdout.lstrip().startswith("{")


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_in_either_position(runner: CliRunner, where: str) -> None:
    args = ["plan", "--manifests", "nowhere"]
    args = ["--debug", *args] if where == "before" else [*args, "--debug"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert "manifests directory nowhere does not exist" in result.stderr


@pytest.mark.parametrize("args", [["--version"], ["--help"]])
def test_version_and_help_import_no_command_module(args: list[str]) -> None:
    code = (
        "import sys\n"
        "from reconciler.cli.main import cli\n"
        "try:\n"
        f"    cli.main({args!r}, prog_name='reconciler')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
        "print([m for m in sys.modules if m.startswith('reconciler.cli.cmd_')])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout.splitlines()
    heavy, loaded = out[-2], out[-1]
    assert heavy == "[]"
    if args == ["--version"]:
        assert loaded == "[]"


def _leaf_commands() -> list[list[str]]:
    """Every command that runs (not a group), as the words that invoke it."""

    def walk(command: click.Command, path: list[str]) -> list[list[str]]:
        if isinstance(command, click.Group):
            return [
                leaf
                for name, sub in sorted(command.commands.items())
                for leaf in walk(sub, [*path, name])
            ]
        return [path]

    return [leaf for name in COMMANDS for leaf in walk(load_command(name), [name])]


def test_every_command_is_walked() -> None:
    leaves = {" ".join(words) for words in _leaf_commands()}
    assert {"db stop", "secrets rotate", "keys adopt-tokens", "audit checkpoint"} <= leaves
    assert {"report circuits", "health check", "schema export", "approve", "fmt"} <= leaves


@pytest.mark.parametrize("words", _leaf_commands(), ids=" ".join)
def test_help_has_examples(runner: CliRunner, words: list[str]) -> None:
    result = runner.invoke(cli, [*words, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output
    assert "\\b" not in result.output  # a literal \b: an escaped marker click did not see
    for option in ("--quiet", "--no-color", "--debug"):
        assert option in result.output


@pytest.mark.parametrize("name", [n for n, (_, short) in COMMANDS.items() if short])
def test_listed_short_help_is_the_commands_own(name: str) -> None:
    own = " ".join((load_command(name).help or "").split("\n\n")[0].split())
    assert own.startswith(COMMANDS[name][1])


def test_quiet_db_upgrade_says_nothing(runner: CliRunner, database_url: str) -> None:
    loud = runner.invoke(cli, ["db", "upgrade", "--database-url", database_url])
    assert loud.exit_code == 0, loud.output
    assert "nothing to do" in loud.stderr
    quiet = runner.invoke(cli, ["--quiet", "db", "upgrade", "--database-url", database_url])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.output == ""


def test_secrets_commands_do_not_import_the_database_driver(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from reconciler.cli.main import cli\n"
        "try:\n"
        f"    cli.main(['secrets', 'keygen', '-o', {str(tmp_path / 'k.txt')!r}])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "print([m for m in ('sqlalchemy', 'psycopg', 'alembic') if m in sys.modules])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout.splitlines()
    assert out[-1] == "[]"


@pytest.mark.parametrize("command", [["validate"], ["fmt", "--check"]], ids=" ".join)
def test_offline_commands_do_not_import_the_database_driver(command: list[str]) -> None:
    """``validate`` and ``fmt`` run in pre-commit hooks: they read files only, and start
    without the database driver and the command modules that need it."""
    code = (
        "import sys\n"
        "from reconciler.cli.main import cli\n"
        "try:\n"
        f"    cli.main({[*command, '--quiet']!r}, prog_name='reconciler')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "print([m for m in ('sqlalchemy', 'psycopg', 'alembic') if m in sys.modules])\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RECONCILER_", "SOPS_"))},
        "PYTHONPATH": str(REPO),
        "SOPS_AGE_KEY_FILE": str(REPO / "examples" / "demo-keys" / "age-key.txt"),
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "[]"


def test_a_plan_does_not_import_alembic(tmp_path: Path, database_url: str) -> None:
    """Alembic (and its template engine) is for migrating; the schema check of a plan reads
    the newest revision from the scripts' headers."""
    (tmp_path / "manifests" / "tenants" / "acme").mkdir(parents=True)
    code = (
        "import sys\n"
        "from reconciler.cli.main import cli\n"
        "try:\n"
        f"    cli.main(['plan', '--database-url', {database_url!r}, '--quiet'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "print([m for m in ('sqlalchemy', 'alembic', 'mako') if m in sys.modules])\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")},
        "PYTHONPATH": str(REPO),
        "RECONCILER_FINGERPRINT_KEY": "Zm" * 22,
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "['sqlalchemy']"
