"""The manifests as they were at a git revision, read from git's objects.

``plan``/``apply --revision REV`` reads ``tenants/`` and ``templates/`` of the manifests
directory at ``REV`` with ``git archive`` into a private temporary directory (mode 0700),
never touching the working tree or the index. Files stay as committed: encrypted values
stay encrypted, and are decrypted in memory by the normal loader, which names them as the
same files in the working tree (in diagnostics, in the plan's sources and in the audit rows).
The directory is removed when the run ends.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from reconciler.errors import ConfigError

_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/@{}~^-]{0,199}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


@dataclass(frozen=True, slots=True)
class RevisionTree:
    """Manifests exported from a revision.

    Attributes:
        revision: the revision as given.
        commit: the commit it resolved to.
        manifests_dir: where the exported manifests directory is (temporary).
    """

    revision: str
    commit: str
    manifests_dir: Path


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    try:
        result = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, timeout=120, check=False
        )
    except FileNotFoundError:
        raise ConfigError("--revision needs git, which is not installed") from None
    except subprocess.TimeoutExpired:
        raise ConfigError(f"--revision: git {args[0]} did not finish in 120 seconds") from None
    if result.returncode != 0:
        lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ConfigError(f"--revision: git {args[0]} failed: {(lines or ['git failed'])[-1]}")
    return result


@contextmanager
def manifests_at(manifests_dir: Path, revision: str) -> Iterator[RevisionTree]:
    """Export ``manifests_dir`` as it was at ``revision``; yield where; remove it afterwards.

    Raises:
        ConfigError: not a git work tree, an unknown revision, or a malformed one.
    """
    if not _REVISION.match(revision) or ".." in revision:
        raise ConfigError(f"--revision {revision!r}: not a git revision name")
    root = manifests_dir.resolve()
    if not root.is_dir():
        raise ConfigError(f"--revision: {manifests_dir} is not a directory")
    top = Path(_git(["rev-parse", "--show-toplevel"], root).stdout.decode().strip())
    commit = (
        _git(
            ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}"], top
        )
        .stdout.decode()
        .strip()
    )
    if not _COMMIT.match(commit):
        raise ConfigError(f"--revision {revision!r}: not a commit")
    try:
        scope = root.relative_to(top.resolve()).as_posix()
    except ValueError:
        raise ConfigError(f"--revision: {root} is not inside the git work tree") from None
    paths = [f"{scope}/{d}" if scope != "." else d for d in ("tenants", "templates")]
    listed = _git(["ls-tree", "-r", "--name-only", "-z", commit, "--", *paths], top).stdout
    present = {p for p in paths if any(n.startswith(p + "/") for n in listed.decode().split("\0"))}
    scratch = Path(tempfile.mkdtemp(prefix="reconciler-revision-"))
    try:
        target = scratch / "manifests"
        target.mkdir()
        if present:
            archive = _git(["archive", "--format=tar", commit, "--", *sorted(present)], top).stdout
            _extract(archive, scope, target)
        if not (target / "tenants").exists():
            raise ConfigError(
                f"--revision {revision}: {scope}/tenants does not exist at commit {commit[:12]}"
            )
        from reconciler.load.stage import named_as  # the loader, imported when it is needed

        with named_as(target, root):  # its files are named as in the working tree
            yield RevisionTree(revision, commit, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _extract(archive: bytes, scope: str, target: Path) -> None:
    """Regular files and directories only, each strictly under ``scope``: git objects are
    content, and a link or a ``..`` in a name must not write outside ``target``."""
    prefix = PurePosixPath(scope) if scope != "." else PurePosixPath()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        for member in tar.getmembers():
            name = PurePosixPath(member.name)
            if ".." in name.parts or name.is_absolute():
                continue
            try:
                relative = name.relative_to(prefix)
            except ValueError:
                continue
            destination = target.joinpath(*relative.parts)
            if member.isdir():
                destination.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                source = tar.extractfile(member)
                if source is None:
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(source.read())
