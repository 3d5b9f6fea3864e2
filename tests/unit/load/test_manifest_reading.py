"""Discovery and reading: regular files inside the root only, bounded reads, ids not paths."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import ConfigError
from reconciler.gitchanges import changed_tenants
from reconciler.load import manifests as mf
from reconciler.load.stage import load_desired_state
from reconciler.model.plan import Selectors
from reconciler.yaml_source import MAX_FILE_BYTES


def _tree(root: Path) -> Path:
    (root / "tenants" / "acme").mkdir(parents=True)
    (root / "tenants" / "acme" / "stripe.yaml").write_text("tenant: acme\n")
    (root / "templates").mkdir()
    return root


def test_read_file_stops_after_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"x" * (MAX_FILE_BYTES * 4))
    requested: list[int] = []
    real_read = os.read

    def counting_read(fd: int, n: int) -> bytes:
        requested.append(n)
        return real_read(fd, n)

    monkeypatch.setattr(os, "read", counting_read)
    data = mf.read_file(big)
    assert len(data) == MAX_FILE_BYTES + 1
    assert sum(requested) <= MAX_FILE_BYTES + 1


def test_read_file_reads_a_small_file_whole(tmp_path: Path) -> None:
    small = tmp_path / "small.yaml"
    small.write_bytes(b"a: 1\n")
    assert mf.read_file(small) == b"a: 1\n"
    empty = tmp_path / "empty.yaml"
    empty.write_bytes(b"")
    assert mf.read_file(empty) == b""


def _in_thread(func: object, *args: object) -> BaseException | None:
    """Run ``func(*args)`` in a daemon thread; fail if it does not return within 10 s."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            func(*args)  # type: ignore[operator]
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(10)
    assert outcome, "the call hung"
    return outcome[0]


@pytest.mark.parametrize("kind", ["fifo", "link", "dangling", "device", "directory"])
def test_read_file_refuses_what_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "stripe.yaml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "link":
        (tmp_path / "real.yaml").write_text("a: 1\n")
        path.symlink_to(tmp_path / "real.yaml")
    elif kind == "dangling":
        path.symlink_to(tmp_path / "missing.yaml")
    elif kind == "device":
        path = Path("/dev/zero")
    else:
        path.mkdir()
    error = _in_thread(mf.read_file, path)
    assert isinstance(error, mf.UnsafeFile), error
    message = str(error)
    assert "\n" not in message and message.endswith("[RCN-F005]") and str(path) in message


def test_discover_reports_links_and_special_files_without_opening_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tree(tmp_path / "manifests")
    (tmp_path / "secret.txt").write_text("AGE-SECRET-KEY-1XYZ\n")
    (root / "tenants" / "acme" / "hubspot.yaml").symlink_to(tmp_path / "secret.txt")
    os.mkfifo(root / "tenants" / "acme" / "quickbooks.yaml")
    (root / "tenants" / "beta").symlink_to(tmp_path, target_is_directory=True)
    (root / "templates" / "base.yaml").symlink_to("/dev/zero")
    (root / "tenants" / "acme" / "notes.txt").symlink_to(tmp_path / "secret.txt")  # not read
    opened: list[str] = []
    real_open = os.open

    def spy(path: str, *args: Any, **kwargs: Any) -> int:
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    found = mf.discover(root)
    assert opened == []
    assert [m.rel for m in found.manifests] == ["tenants/acme/stripe.yaml"]
    assert sorted((p.rel, p.code) for p in found.problems) == [
        ("templates/base.yaml", "RCN-F005"),
        ("tenants/acme/hubspot.yaml", "RCN-F005"),
        ("tenants/acme/quickbooks.yaml", "RCN-F005"),
        ("tenants/beta", "RCN-F005"),
    ]
    assert mf.list_templates(root) == []


def test_load_reports_problems_as_diagnostics_and_reads_only_regular_files(
    tmp_path: Path,
) -> None:
    root = _tree(tmp_path / "manifests")
    loop_a, loop_b = root / "tenants" / "loop" / "stripe.yaml", root / "tenants" / "loop" / "x.yaml"
    loop_a.parent.mkdir()
    loop_a.symlink_to(loop_b)
    loop_b.symlink_to(loop_a)
    result = load_desired_state(root, decrypt=False, workers=1)
    f005 = sorted(d.file or "" for d in result.diagnostics if d.code == "RCN-F005")
    assert [f.rsplit("/", 3)[-3:] for f in f005] == [
        ["tenants", "loop", "stripe.yaml"],
        ["tenants", "loop", "x.yaml"],
    ]
    assert result.state is None


@pytest.mark.parametrize(
    "selectors",
    [
        Selectors(tenants=("../../../../usr",)),
        Selectors(tenants=("acme/../../x",)),
        Selectors(exclude_tenants=("..",)),
        Selectors(tenants=("",)),
    ],
)
def test_selectors_are_tenant_ids_not_paths(tmp_path: Path, selectors: Selectors) -> None:
    root = _tree(tmp_path / "manifests")
    with pytest.raises(ConfigError, match="is not a tenant id"):
        mf.discover(root, selectors=selectors)


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def test_changed_from_never_turns_a_directory_name_into_a_selector(tmp_path: Path) -> None:
    root = _tree(tmp_path / "manifests")
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-q", "-m", "base")
    (root / "tenants" / "acme" / "stripe.yaml").write_text("tenant: acme\nplatform: STRIPE\n")
    assert changed_tenants(root, "main").tenants == {"acme"}
    assert not changed_tenants(root, "main").everything

    odd = root / "tenants" / "Bad Name é"
    odd.mkdir()
    (odd / "stripe.yaml").write_text("tenant: x\n")
    change = changed_tenants(root, "main")
    assert change.tenants == {"acme"}
    assert change.everything  # a full run reports the directory (RCN-F001)
    assert "manifests/tenants/Bad Name é/stripe.yaml" in change.files


@pytest.mark.parametrize("workers", [1, 2])
def test_file_swapped_after_discovery_is_refused_by_the_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """Discovery saw regular files; by the time a (worker) process reads, one is a FIFO."""
    root = _tree(tmp_path / "manifests")
    for tenant in ("beta", "gamma", "delta"):
        (root / "tenants" / tenant).mkdir()
        (root / "tenants" / tenant / "stripe.yaml").write_text(f"tenant: {tenant}\n")
    real_discover = mf.discover

    def discover_then_swap(*args: Any, **kwargs: Any) -> mf.Discovery:
        found = real_discover(*args, **kwargs)
        swapped = root / "tenants" / "gamma" / "stripe.yaml"
        swapped.unlink()
        os.mkfifo(swapped)
        return found

    monkeypatch.setattr(mf, "discover", discover_then_swap)

    def hung(signum: int, frame: object) -> None:
        raise TimeoutError("reading hung")

    # In this (main) thread, so that workers=2 really forks; an alarm stands in for a timeout.
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        with pytest.raises(mf.UnsafeFile) as caught:
            load_desired_state(root, decrypt=False, workers=workers)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    outcome = caught.value
    assert str(outcome).endswith(
        "is a FIFO (named pipe); only regular files and directories "
        "inside the manifests root are read [RCN-F005]"
    )


def test_a_copy_is_named_as_its_original_and_names_lead_back_to_its_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.load.stage import _namer, named_as, named_file

    work, copy = tmp_path / "work", tmp_path / "export" / "manifests"
    (work / "config").mkdir(parents=True)
    copy.mkdir(parents=True)
    monkeypatch.chdir(work)
    original = (work / "config").resolve()
    rel = "tenants/acme/stripe.yaml"

    assert _namer(original)(rel) == f"config/{rel}"
    assert named_file(original, f"config/{rel}") == original / rel
    # Outside the working directory, relative to the directory's parent.
    assert _namer(copy.resolve())(rel) == f"manifests/{rel}"
    assert named_file(copy, f"manifests/{rel}") == copy.resolve() / rel
    with named_as(copy, work / "config"):
        assert _namer(copy.resolve())("") == "config/"
        assert _namer(copy.resolve())(rel) == f"config/{rel}"
        assert named_file(copy, f"config/{rel}") == copy.resolve() / rel
        assert _namer(original)(rel) == f"config/{rel}"  # the original is unchanged
    assert _namer(copy.resolve())(rel) == f"manifests/{rel}"  # only inside
