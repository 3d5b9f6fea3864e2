"""Whether the manifests were committed: the dirty flag and how an audit row records it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from reconciler.context import git_dirty, recorded_commit


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def test_dirty_flag(tmp_path: Path) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    assert git_dirty(manifests) is None  # not a work tree
    _git(tmp_path, "init", "-q")
    (manifests / "a.yaml").write_text("a: 1\n")
    assert git_dirty(manifests) is True  # untracked
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "a")
    assert git_dirty(manifests) is False
    (tmp_path / "elsewhere.txt").write_text("x")
    assert git_dirty(manifests) is False  # only the manifests count
    (manifests / "a.yaml").write_text("a: 2\n")
    assert git_dirty(manifests) is True


def test_recorded_commit() -> None:
    sha1 = "a" * 40
    assert recorded_commit(sha1, True) == sha1 + "-dirty"
    assert recorded_commit(sha1, False) == sha1
    assert recorded_commit(sha1, None) == sha1
    assert recorded_commit(None, True) is None
    assert recorded_commit("b" * 64, True) == "b" * 64  # no room in the column
