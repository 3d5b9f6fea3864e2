from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reconciler import __version__
from reconciler.context import ci_run, git_commit, resolve_actor, user_agent

GITHUB = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_ACTOR": "octocat",
    "GITHUB_RUN_ID": "123",
    "GITHUB_RUN_ATTEMPT": "1",
    "GITHUB_REPOSITORY": "owner/repo",
    "GITHUB_SHA": "A" * 40,
    "USER": "runner",
}


@pytest.mark.parametrize(
    ("explicit", "env", "expected"),
    [
        ("alice", {**GITHUB, "RECONCILER_ACTOR": "bob"}, "alice"),
        (None, {**GITHUB, "RECONCILER_ACTOR": "bob"}, "bob"),
        ("  ", {**GITHUB, "RECONCILER_ACTOR": ""}, "octocat"),
        (None, {**GITHUB, "GITHUB_TRIGGERING_ACTOR": "hubot"}, "hubot"),
        (None, {"GITLAB_CI": "true", "GITLAB_USER_LOGIN": "gl-user", "USER": "x"}, "gl-user"),
        (None, {"BUILDKITE": "true", "BUILDKITE_BUILD_CREATOR": "Bea", "USER": "x"}, "Bea"),
        (None, {"CIRCLECI": "true", "CIRCLE_USERNAME": "circ", "USER": "x"}, "circ"),
        (None, {"USER": "carol"}, "carol"),
        (None, {"GITHUB_ACTOR": "not-on-ci", "LOGNAME": "dave"}, "dave"),
    ],
)
def test_actor_resolution_order(explicit: str | None, env: dict[str, str], expected: str) -> None:
    assert resolve_actor(explicit, env) == expected


def test_actor_falls_back_to_passwd_or_uid() -> None:
    assert resolve_actor(None, {})


def test_user_agent_names_the_ci_run() -> None:
    assert user_agent({}) == f"reconciler/{__version__}"
    assert user_agent(GITHUB) == f"reconciler/{__version__} (github-actions run 123/1 owner/repo)"
    assert ci_run({"GITLAB_CI": "true", "CI_PIPELINE_ID": "9", "CI_PROJECT_PATH": "g/p"}) == (
        "gitlab-ci pipeline 9 g/p"
    )
    assert ci_run({"CI": "true"}) == "ci"
    assert ci_run({}) is None


def test_git_commit_from_ci_variable(tmp_path: Path) -> None:
    assert git_commit(GITHUB, tmp_path) == "a" * 40
    assert git_commit({"GITHUB_ACTIONS": "true", "GITHUB_SHA": "nonsense"}) is None


def test_git_commit_from_repository(tmp_path: Path) -> None:
    assert git_commit({}, tmp_path) is None  # not a repository: no error
    assert git_commit({}, None) is None
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
    }
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, env=env)
    subprocess.run(
        ["git", "-C", str(tmp_path), "commit", "-q", "--allow-empty", "-m", "x"],
        check=True,
        env=env,
    )
    head = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert git_commit({}, tmp_path) == head
