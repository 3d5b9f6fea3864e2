"""Which tenants a git change touches, so a pull request plans only what it changes.

``reconciler plan --changed-from origin/main`` narrows the run to the tenants whose manifest
files differ between that ref and the working tree (committed, staged, unstaged or new).
A change under ``templates/`` can reach any tenant, so it narrows nothing, and so does a
change under a directory whose name is not a tenant id: the full run reports it (a name from
git never becomes a path to walk). This is the
Atlantis-style "plan the projects a pull request modifies", and what keeps a pull-request
plan fast at fleet scale; the deploy job's full ``apply`` still reconciles everything.
"""

from __future__ import annotations

import difflib
import subprocess
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import ConfigError
from reconciler.load.manifests import TENANTS_DIR, is_tenant_id


@dataclass(frozen=True, slots=True)
class ChangedTenants:
    """The result of comparing the manifests with a git ref.

    Attributes:
        tenants: tenants with an added, changed or deleted manifest file.
        everything: a template, a file outside ``tenants/`` or under a directory that is
            not a tenant id changed: no narrowing.
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


def _check_ref(ref: str, top: Path) -> None:
    """Refuse an unknown ref with git's own reason and the closest refs that exist."""
    result = subprocess.run(
        ["git", "rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}"],
        cwd=top,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode == 0:
        return
    reason = (result.stderr.strip().splitlines() or ["unknown revision"])[-1]
    refs = _git(["for-each-ref", "--format=%(refname:short)"], top).split()
    close = difflib.get_close_matches(ref, refs, n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    fetch = "" if refs else "; with a shallow checkout, fetch the base branch first"
    raise ConfigError(f"--changed-from: {ref!r} is not a commit: git says {reason!r}{hint}{fetch}")


def changed_tenants(manifests_dir: Path, ref: str) -> ChangedTenants:
    """Tenants whose manifests differ between ``ref`` and the working tree.

    Raises:
        ConfigError: not a git repository, an unknown ref, or git missing.
    """
    root = manifests_dir.resolve()
    top = Path(_git(["rev-parse", "--show-toplevel"], root).strip())
    _check_ref(ref, top)
    try:
        scope = root.relative_to(top.resolve()).as_posix()
    except ValueError:
        raise ConfigError(f"--changed-from: {root} is not inside the git work tree") from None
    # -z: names verbatim, NUL-separated (no quoting of unusual characters to undo).
    diffed = _git(["diff", "-z", "--name-only", "--no-renames", ref, "--", scope], top)
    untracked = _git(["ls-files", "-z", "--others", "--exclude-standard", "--", scope], top)
    files = tuple(sorted({*diffed.split("\0"), *untracked.split("\0")} - {""}))
    tenants: set[str] = set()
    everything = False
    prefix = "" if scope == "." else scope + "/"
    for path in files:
        parts = path.removeprefix(prefix).split("/") if path.startswith(prefix) else []
        if len(parts) >= 3 and parts[0] == TENANTS_DIR and is_tenant_id(parts[1]):
            tenants.add(parts[1])
        else:
            everything = True
    return ChangedTenants(frozenset(tenants), everything, files)
