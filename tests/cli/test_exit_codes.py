"""Exit codes a CI script cannot misread, and checks made before anything is started.

Usage errors exit 64 (never 2, the "changes present" code of ``--detailed-exitcode``); a
selector or manifests directory that matches nothing is an error; a run in the wrong
directory fails before an embedded database is started or ``.reconciler/`` is created.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.cli.exit_codes import ExitCode

REPO = Path(__file__).resolve().parents[2]


def _run(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILER_", "SOPS_"))}
    base["PYTHONPATH"] = str(REPO)
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=cwd,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the example manifests (validate needs no key; plan is refused earlier)."""
    subprocess.run(["cp", "-r", str(REPO / "manifests"), str(tmp_path / "manifests")], check=True)
    return tmp_path


def test_usage_error_is_not_changes_present(repo: Path) -> None:
    result = _run(repo, "plan", "--detailed-exitcode", "--tenat", "acme")
    assert result.returncode == 64 and int(ExitCode.USAGE) == 64, result.stderr
    assert "No such option '--tenat'" in result.stderr
    assert not (repo / ".reconciler").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["nosuch"],
        ["plan", "--format", "yaml"],
        ["validate", "--format", "markdown"],
        ["--format", "markdown", "validate"],
        ["history", "--limit", "0"],
    ],
)
def test_usage_errors_exit_64(repo: Path, args: list[str]) -> None:
    result = _run(repo, *args)
    assert result.returncode == 64, result.stderr
    assert not (repo / ".reconciler").exists()


def test_unknown_command_suggests(repo: Path) -> None:
    result = _run(repo, "plna")
    assert result.returncode == 64
    assert "did you mean 'plan'" in result.stderr


@pytest.mark.parametrize("command", ["plan", "validate", "apply"])
def test_tenant_that_matches_nothing_is_an_error_with_did_you_mean(
    repo: Path, command: str
) -> None:
    result = _run(
        repo,
        command,
        "--detailed-exitcode" if command in ("plan", "drift") else "-q",
        "--tenant",
        "acme-robotic",
    )
    assert result.returncode == 64, result.stdout + result.stderr
    assert "--tenant 'acme-robotic' matches no tenant" in result.stderr
    assert "did you mean 'acme-robotics'" in result.stderr
    assert not (repo / ".reconciler").exists()


def test_prefix_suggestion(repo: Path) -> None:
    result = _run(repo, "validate", "--tenant", "globex")
    assert result.returncode == 64
    assert "did you mean 'globex-logistics'" in result.stderr


def test_exclude_tenant_typo_is_an_error(repo: Path) -> None:
    result = _run(repo, "plan", "--exclude-tenant", "initech-healt")
    assert result.returncode == 64
    assert "did you mean 'initech-health'" in result.stderr


def test_platform_that_matches_nothing_is_an_error(repo: Path) -> None:
    (repo / "manifests" / "tenants" / "acme-robotics" / "quickbooks.yaml").unlink(missing_ok=True)
    result = _run(repo, "validate", "--tenant", "acme-robotics", "--platform", "quickbooks")
    assert result.returncode == 64, result.stdout + result.stderr
    assert "--platform quickbooks matches no manifest" in result.stderr


def test_validate_of_empty_manifests_directory_fails(tmp_path: Path) -> None:
    (tmp_path / "manifests" / "tenants").mkdir(parents=True)
    result = _run(tmp_path, "validate")
    assert result.returncode == ExitCode.ERROR, result.stdout
    assert "0 files valid" not in result.stdout
    assert "no tenant manifests under" in result.stderr


def test_validate_of_path_without_manifests_fails(repo: Path) -> None:
    (repo / "manifests" / "tenants" / "empty").mkdir()
    result = _run(repo, "validate", "manifests/tenants/empty")
    assert result.returncode == 64, result.stdout
    assert "no manifest file matched" in result.stderr


@pytest.mark.parametrize("command", ["plan", "apply", "drift"])
def test_wrong_directory_fails_before_anything_is_started(tmp_path: Path, command: str) -> None:
    result = _run(tmp_path, command, "--auto-approve" if command == "apply" else "--quiet")
    assert result.returncode == ExitCode.ERROR
    assert "manifests directory manifests does not exist" in result.stderr
    assert not (tmp_path / ".reconciler").exists(), "created state before checking its input"
    assert "embedded" not in result.stderr.lower()


def test_changed_from_error_carries_gits_reason(repo: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=repo,
            check=True,
            capture_output=True,
        )

    git("init", "-q", "-b", "main")
    git("add", "manifests")
    git("commit", "-qm", "manifests")
    result = _run(repo, "plan", "--changed-from", "mian", "--quiet")
    assert result.returncode == ExitCode.ERROR
    assert "git says 'fatal:" in result.stderr
    assert "did you mean 'main'" in result.stderr
    assert not (repo / ".reconciler").exists()
