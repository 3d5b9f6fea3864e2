"""Who and what is running: the actor, the user agent, the git commit, the CI run.

These go into every audit row. Each function takes the environment as an argument (a plain
mapping) so that tests can pass a dict, and none of them fails: a value that cannot be found is
``None`` (or, for the actor, the numeric user id).

The actor is the first of: ``--actor``, ``$RECONCILER_ACTOR``, the CI system's actor
(``GITHUB_ACTOR``, ``GITLAB_USER_LOGIN``, ...), the OS user. It must be one line of printable
text: whatever is stored in an audit row is later printed by ``history`` and ``audit`` into
terminals and CI logs, where a newline or an escape sequence could forge a line or a workflow
command. Text taken from the environment only to describe the run (the user agent) has its
control characters dropped instead.
"""

from __future__ import annotations

import os
import pwd
import re
import subprocess
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from reconciler import __version__
from reconciler.errors import ConfigError

ACTOR_ENV = "RECONCILER_ACTOR"

Env = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class CIProvider:
    """How to recognise one CI system and read who started it, which run and which commit.

    Attributes:
        name: the name shown in the user agent, e.g. ``github-actions``.
        detect: a variable that is set (non-empty) only on this CI.
        actor_vars: variables naming the user who triggered the run, first non-empty wins.
        commit_vars: variables holding the commit being built.
        run: formats the run description from the environment (the part after ``name``).
    """

    name: str
    detect: str
    actor_vars: tuple[str, ...]
    commit_vars: tuple[str, ...]
    run: Callable[[Env], str]


def _join(env: Env, *parts: tuple[str, str]) -> str:
    """``label value`` pairs for the variables that are set, space separated."""
    return " ".join(f"{label}{env[var]}" for label, var in parts if env.get(var))


def _github_run(env: Env) -> str:
    run = env.get("GITHUB_RUN_ID", "?")
    attempt = env.get("GITHUB_RUN_ATTEMPT")
    return f"run {run}{'/' + attempt if attempt else ''} {env.get('GITHUB_REPOSITORY', '')}".strip()


CI_PROVIDERS: tuple[CIProvider, ...] = (
    CIProvider(
        "github-actions",
        "GITHUB_ACTIONS",
        ("GITHUB_TRIGGERING_ACTOR", "GITHUB_ACTOR"),
        ("GITHUB_SHA",),
        _github_run,
    ),
    CIProvider(
        "gitlab-ci",
        "GITLAB_CI",
        ("GITLAB_USER_LOGIN",),
        ("CI_COMMIT_SHA",),
        lambda e: _join(
            e, ("pipeline ", "CI_PIPELINE_ID"), ("job ", "CI_JOB_ID"), ("", "CI_PROJECT_PATH")
        ),
    ),
    CIProvider(
        "buildkite",
        "BUILDKITE",
        ("BUILDKITE_BUILD_CREATOR", "BUILDKITE_BUILD_CREATOR_EMAIL"),
        ("BUILDKITE_COMMIT",),
        lambda e: _join(e, ("build ", "BUILDKITE_BUILD_NUMBER"), ("", "BUILDKITE_PIPELINE_SLUG")),
    ),
    CIProvider(
        "circleci",
        "CIRCLECI",
        ("CIRCLE_USERNAME",),
        ("CIRCLE_SHA1",),
        lambda e: _join(e, ("build ", "CIRCLE_BUILD_NUM"), ("", "CIRCLE_PROJECT_REPONAME")),
    ),
    CIProvider(
        "azure-pipelines",
        "TF_BUILD",
        ("BUILD_REQUESTEDFOREMAIL", "BUILD_REQUESTEDFOR"),
        ("BUILD_SOURCEVERSION",),
        lambda e: _join(e, ("build ", "BUILD_BUILDID"), ("", "BUILD_REPOSITORY_NAME")),
    ),
    CIProvider(
        "bitbucket-pipelines",
        "BITBUCKET_BUILD_NUMBER",
        ("BITBUCKET_STEP_TRIGGERER_UUID",),
        ("BITBUCKET_COMMIT",),
        lambda e: _join(e, ("build ", "BITBUCKET_BUILD_NUMBER"), ("", "BITBUCKET_REPO_FULL_NAME")),
    ),
    CIProvider(
        "jenkins",
        "JENKINS_URL",
        ("BUILD_USER_ID",),
        ("GIT_COMMIT",),
        lambda e: _join(e, ("", "JOB_NAME"), ("#", "BUILD_NUMBER")),
    ),
)
"""Known CI systems, checked in this order."""

_COMMIT_RE = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


def detect_ci(environ: Env) -> CIProvider | None:
    """The CI system this process runs on, or None."""
    return next((p for p in CI_PROVIDERS if environ.get(p.detect)), None)


def ci_run(environ: Env) -> str | None:
    """A description of the CI run, e.g. ``github-actions run 123/1 owner/repo``; None off CI."""
    provider = detect_ci(environ)
    if provider is None:
        return "ci" if environ.get("CI", "").lower() in {"1", "true", "yes"} else None
    return f"{provider.name} {provider.run(environ)}".strip()


MAX_NAME_LENGTH = 200
"""The longest actor or reviewer name accepted (GitHub logins are at most 39 characters)."""


def _unprintable(text: str) -> list[str]:
    """The characters of ``text`` that must not reach a log line: controls, format, separators."""
    return [ch for ch in text if unicodedata.category(ch)[0] == "C" or ch in "\u2028\u2029"]


MAX_NOTE_LENGTH = 2000
"""The longest review note accepted."""


def checked_name(
    value: str, what: str, *, kind: str = "a name", limit: int = MAX_NAME_LENGTH
) -> str:
    """``value`` stripped, if it is one line of printable text of sane length; else ConfigError.

    Args:
        value: a person's or a bot's name (or other free text bound for the audit log).
        what: where it came from, for the message (e.g. ``--actor``, ``$GITHUB_ACTOR``).
        kind: what it is, for the message.
        limit: the most characters accepted.
    """
    name = value.strip()
    bad = _unprintable(name)
    if bad:
        raise ConfigError(
            f"{what}: {kind} must be one line of printable text; it contains "
            f"{len(bad)} control character(s) (first: U+{ord(bad[0]):04X})"
        )
    if len(name) > limit:
        raise ConfigError(f"{what}: {kind} may have at most {limit} characters")
    return name


def resolve_actor(explicit: str | None, environ: Env) -> str:
    """Who performs the change: ``--actor``, ``$RECONCILER_ACTOR``, the CI actor, the OS user.

    Raises:
        ConfigError: the chosen name is not one line of printable text.
    """
    for candidate, what in ((explicit, "--actor"), (environ.get(ACTOR_ENV), f"${ACTOR_ENV}")):
        if candidate and candidate.strip():
            return checked_name(candidate, what)
    provider = detect_ci(environ)
    if provider is not None:
        for var in provider.actor_vars:
            if environ.get(var, "").strip():
                return checked_name(environ[var], f"${var}")
    return checked_name(os_user(environ), "the OS user name")


def os_user(environ: Env) -> str:
    """The login name (as :func:`getpass.getuser` finds it), else ``uid-<n>``."""
    for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if environ.get(var):
            return environ[var]
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        # Containers often run as a uid that has no passwd entry.
        return f"uid-{os.getuid()}"


def user_agent(environ: Env) -> str:
    """``reconciler/<version>``, followed by the CI run when there is one."""
    run = ci_run(environ)
    if run:
        run = "".join(ch for ch in run if ch not in _unprintable(run))[:MAX_NAME_LENGTH]
    return f"reconciler/{__version__}" + (f" ({run})" if run else "")


def git_commit(environ: Env, directory: Path | None = None) -> str | None:
    """The commit being applied: from the CI's variable, else ``git rev-parse HEAD``.

    Args:
        environ: the process environment.
        directory: where to ask git (the manifests' checkout); None skips asking git.

    Returns:
        A lowercase hex commit id, or None when not on CI and not in a git work tree.
    """
    provider = detect_ci(environ)
    names = (provider.commit_vars if provider else ()) + ("RECONCILER_GIT_COMMIT",)
    for var in names:
        value = environ.get(var, "").strip().lower()
        if _COMMIT_RE.match(value):
            return value
    if directory is None:
        return None
    try:
        result = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "--verify", "--quiet", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None  # no git installed, or it hung: the commit is informative, not required
    value = result.stdout.strip().lower()
    return value if result.returncode == 0 and _COMMIT_RE.match(value) else None


DIRTY_SUFFIX = "-dirty"
"""Appended to a commit in audit rows when the manifests had uncommitted changes, as
``git describe --dirty`` does."""


def git_dirty(directory: Path, *, untracked: str = "all") -> bool | None:
    """Whether ``directory`` (the manifests) has uncommitted changes: modified, staged,
    deleted or untracked files under it. None when git is missing or it is not a work tree.

    ``untracked`` is git's ``--untracked-files`` mode (``normal`` lists a new directory once).
    """
    try:
        result = subprocess.run(
            [
                "git",
                "-C",
                str(directory),
                "status",
                "--porcelain",
                f"--untracked-files={untracked}",
                "--",
                ".",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return bool(result.stdout.strip())


def recorded_commit(commit: str | None, dirty: bool | None) -> str | None:
    """The commit as an audit row records it: ``<commit>-dirty`` for uncommitted changes.

    A 64-character (SHA-256) commit has no room for the suffix in the column; the run's
    ``git_dirty`` flag still says it.
    """
    if commit is None or not dirty or len(commit) + len(DIRTY_SUFFIX) > 64:
        return commit
    return commit + DIRTY_SUFFIX
