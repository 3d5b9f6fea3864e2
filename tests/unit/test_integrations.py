"""The ready-made integrations: the composite action, the example workflow, CI's workflow and
the pre-commit hook. zizmor (offline audits) and check-jsonschema (GitHub's own schemas,
bundled) must pass on every workflow file; both come with the ``dev`` extra."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = [REPO / "examples" / "ci" / "github-actions.yml", REPO / ".github/workflows/ci.yml"]
ACTION = REPO / "action.yml"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def _tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is part of the dev extra: pip install -e '.[dev]'"
    return found


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_zizmor_finds_nothing_offline() -> None:
    result = subprocess.run(
        [_tool("zizmor"), "--offline", "--no-progress", str(ACTION), *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("schema", "paths"),
    [("vendor.github-workflows", WORKFLOWS), ("vendor.github-actions", [ACTION])],
)
def test_files_match_githubs_schemas(schema: str, paths: list[Path]) -> None:
    result = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", schema, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _steps(doc: Any) -> list[dict[str, Any]]:
    if "runs" in doc:
        return list(doc["runs"]["steps"])
    return [s for job in doc["jobs"].values() for s in job.get("steps", [])]


@pytest.mark.parametrize("path", [ACTION, *WORKFLOWS], ids=lambda p: p.name)
def test_actions_are_pinned_by_commit_and_no_expression_is_in_a_script(path: Path) -> None:
    for step in _steps(_load(path)):
        if "uses" in step:
            assert PINNED.match(step["uses"]), step["uses"]
        assert "${{" not in step.get("run", ""), step.get("name", step.get("run"))


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_checkouts_drop_credentials(path: Path) -> None:
    for step in _steps(_load(path)):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


def test_example_never_installs_from_a_package_index_name() -> None:
    text = (REPO / "examples" / "ci" / "github-actions.yml").read_text()
    assert "pip install reconciler" not in text
    assert 'pip install --quiet --disable-pip-version-check "$GITHUB_ACTION_PATH"' in (
        ACTION.read_text()
    )


def test_action_offers_the_four_steps() -> None:
    action = _load(ACTION)
    assert action["runs"]["using"] == "composite"
    script = _steps(action)[-1]["run"]
    for command in ("validate)", "plan)", "comment)", "apply)"):
        assert command in script
    assert "<!-- reconciler-plan -->" in script


def test_pre_commit_hook_validates() -> None:
    hooks = _load(REPO / ".pre-commit-hooks.yaml")
    hook = next(h for h in hooks if h["id"] == "reconciler-validate")
    assert hook["entry"] == "reconciler validate"
    assert hook["language"] == "python"
