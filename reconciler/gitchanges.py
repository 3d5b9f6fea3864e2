"""Which tenants a git change touches, so a pull request plans only what it changes.

``reconciler plan --changed-from origin/main`` narrows the run to the tenants whose manifest
files differ between that ref and the working tree (committed, staged, unstaged or new).
A change under ``templates/`` can reach any tenant, so it narrows nothing. This is the
Atlantis-style "plan the projects a pull request modifies", and what keeps a pull-request
plan fast at fleet scale; the deploy job's full ``apply`` still reconciles everything.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ChangedTenants:
    """The result of comparing the manifests with a git ref.

    Attributes:
        tenants: tenants with an added, changed or deleted manifest file.
        everything: a template (or a file outside ``tenants/``) changed: no narrowing.
        files: the changed paths under the manifests directory, for the user.
    """

    tenants: frozenset[str]
    everything: bool
    files: tuple[str, ...]


def _git(args: list[str], cwd: Path) -> str:
    try:
        result = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
        )
    except FileNotFoundError:
        raise ConfigError("--changed-from needs git, which is not installed") from None
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["git failed"])[-1]
        raise ConfigError(f"--changed-from: git {args[0]} failed: {detail}")
    return result.stdout


def changed_tenants(manifests_dir: Path, ref: str) -> ChangedTenants:
    """Tenants whose manifests differ between ``ref`` and the working tree.

    Raises:
        ConfigError: not a git repository, an unknown ref, or git missing.
    """
    root = manifests_dir.resolve()
    top = Path(_git(["rev-parse", "--show-toplevel"], root).strip())
    _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], top)
    scope = root.relative_to(top).as_posix()
    diffed = _git(["diff", "--name-only", "--no-renames", ref, "--", scope], top).splitlines()
    untracked = _git(["ls-files", "--others", "--exclude-standard", "--", scope], top).splitlines()
    files = tuple(sorted({*diffed, *untracked}))
    tenants: set[str] = set()
    everything = False
    for path in files:
        parts = Path(path).relative_to(scope).parts if scope != "." else Path(path).parts
        if len(parts) >= 3 and parts[0] == "tenants":
            tenants.add(parts[1])
        else:
            everything = True
    return ChangedTenants(frozenset(tenants), everything, files)
