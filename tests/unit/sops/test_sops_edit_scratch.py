"""``secrets edit``: where the plaintext lives, and that nothing of it survives a signal or,
after a kill -9, the next start."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pyrage
import pytest
from click.testing import CliRunner

from reconciler.cli.main import cli
from reconciler.sops.scratch import SHM, PlaintextFile, private_dir, start_time, sweep

PLAIN = "db:\n    password: hunter2-secret\n    port: 5432\n"

SLEEPING_EDITOR = """
import json, os, sys, time
with open(os.environ["EDIT_MARKER"] + ".tmp", "w") as out:
    json.dump({"path": sys.argv[1], "pid": os.getpid()}, out)
os.replace(os.environ["EDIT_MARKER"] + ".tmp", os.environ["EDIT_MARKER"])
time.sleep(120)
"""


@pytest.fixture
def encrypted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An encrypted file and SOPS_AGE_KEY_FILE holding its key."""
    identity = pyrage.x25519.Identity.generate()
    key_file = tmp_path / "keys.txt"
    key_file.write_text(f"{identity}\n")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key_file))
    path = tmp_path / "secrets.yaml"
    path.write_text(PLAIN)
    result = CliRunner().invoke(
        cli, ["secrets", "encrypt", "-i", "--age", str(identity.to_public()), str(path)]
    )
    assert result.exit_code == 0, result.output
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _start_edit(tmp_path: Path, file: Path) -> tuple[subprocess.Popen[str], dict[str, object]]:
    """``reconciler secrets edit`` in a child process, its editor asleep on the plaintext."""
    script = tmp_path / "sleeping_editor.py"
    script.write_text(SLEEPING_EDITOR)
    marker = tmp_path / "editor.json"
    marker.unlink(missing_ok=True)
    env = {**os.environ, "SOPS_EDITOR": f"{sys.executable} {script}", "EDIT_MARKER": str(marker)}
    with (tmp_path / "edit.stderr").open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "secrets", "edit", str(file)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            # A file, not a pipe: an editor left running would hold a pipe open.
            stderr=stderr,
            text=True,
            start_new_session=True,  # a SIGINT sent to it stays away from pytest
        )
    deadline = time.monotonic() + 60
    while not marker.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(
                "the editor did not start: " + (tmp_path / "edit.stderr").read_text()
            )
        time.sleep(0.05)
    return process, json.loads(marker.read_text())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=str)
def test_a_signal_during_the_edit_removes_the_plaintext(
    tmp_path: Path, encrypted: Path, sig: signal.Signals
) -> None:
    before = encrypted.read_bytes()
    process, editor = _start_edit(tmp_path, encrypted)
    plaintext = Path(str(editor["path"]))
    try:
        assert plaintext.read_text() == PLAIN
        modes = (
            stat.S_IMODE(plaintext.stat().st_mode),
            stat.S_IMODE(plaintext.parent.stat().st_mode),
        )
        process.send_signal(sig)
        process.wait(timeout=60)
        stderr = (tmp_path / "edit.stderr").read_text()
        if sig == signal.SIGINT:
            assert process.returncode == 130 and "Interrupted" in stderr
        else:
            assert process.returncode == -sig  # ended by the signal, as without a handler
        assert "Traceback" not in stderr and "hunter2" not in stderr
        assert not plaintext.exists() and not plaintext.parent.exists()
        assert not _alive(int(str(editor["pid"])))  # the editor was stopped too
        assert encrypted.read_bytes() == before
        assert modes == (0o600, 0o700)
        runtime = Path(os.environ["XDG_RUNTIME_DIR"])
        assert plaintext.parent.parent == runtime / f"reconciler-{os.getuid()}"
    finally:
        process.kill()
        if _alive(int(str(editor["pid"]))):
            os.kill(int(str(editor["pid"])), signal.SIGKILL)
        shutil.rmtree(plaintext.parent, ignore_errors=True)


def test_plaintext_left_by_kill_9_is_removed_at_the_next_start(
    tmp_path: Path, encrypted: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    process, editor = _start_edit(tmp_path, encrypted)
    plaintext = Path(str(editor["path"]))
    process.send_signal(signal.SIGKILL)  # nothing can run: the plaintext stays ...
    process.wait(timeout=60)
    os.kill(int(str(editor["pid"])), signal.SIGKILL)
    assert plaintext.exists()  # ... in the private runtime directory (tmpfs on a real system)
    monkeypatch.setenv("SOPS_EDITOR", "true")
    result = CliRunner().invoke(cli, ["secrets", "edit", str(encrypted)])
    assert result.exit_code == 0, result.output
    assert not plaintext.exists() and not plaintext.parent.exists()


def test_sweep_removes_only_edits_of_processes_that_are_gone(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    dead_pid = int(gone.stdout)
    me = os.getpid()
    made = {
        "dead": tmp_path / f"edit-{dead_pid}-123-abcd1234",
        "recycled": tmp_path / f"edit-{me}-1-abcd1234",  # our pid, another start time
        "running": tmp_path / f"edit-{me}-{start_time(me)}-abcd1234",
        "foreign": tmp_path / "notes",
    }
    for directory in made.values():
        directory.mkdir()
        (directory / "plain.yaml").write_text("secret")
    removed = sweep(tmp_path)
    assert sorted(removed) == sorted([made["dead"], made["recycled"]])
    assert made["running"].exists() and made["foreign"].exists()
    assert not made["dead"].exists() and not made["recycled"].exists()


def test_private_dir_prefers_memory_and_refuses_what_is_not_private(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    chosen = private_dir({"XDG_RUNTIME_DIR": str(runtime)})
    assert chosen == runtime / f"reconciler-{os.getuid()}"
    assert stat.S_IMODE(chosen.stat().st_mode) == 0o700
    chosen.chmod(0o755)  # opened up by hand: closed again before use
    assert stat.S_IMODE(private_dir({"XDG_RUNTIME_DIR": str(runtime)}).stat().st_mode) == 0o700

    elsewhere = tmp_path / "run2"
    elsewhere.mkdir()
    (elsewhere / f"reconciler-{os.getuid()}").symlink_to(tmp_path)  # never followed
    fallback = private_dir({"XDG_RUNTIME_DIR": str(elsewhere)})
    assert fallback.parent != elsewhere
    if SHM.is_dir():  # without $XDG_RUNTIME_DIR: /dev/shm (memory), not the disk
        assert private_dir({}).parent == SHM
        assert fallback.parent == SHM


def test_the_plaintext_file_goes_away_on_errors(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    with (
        pytest.raises(RuntimeError),
        PlaintextFile.open("f.yaml", "x: 1\n", {"XDG_RUNTIME_DIR": str(runtime)}) as plain,
    ):
        assert plain.path.read_text() == "x: 1\n"
        raise RuntimeError
    assert not plain.path.exists() and not plain.directory.exists()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handlers restored
