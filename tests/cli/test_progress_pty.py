"""On a terminal, a multi-second load shows a live progress bar with counts (on stderr);
elsewhere the one-line-per-stage output is unchanged."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pyrage
import pytest

from benchmarks.fleet import generate
from reconciler.progress import QUIET, Progress

REPO = Path(__file__).resolve().parents[2]
BAR = re.compile(r"Loading manifests:\s+\d+%\|[^|]*\|\s*(\d+)/(\d+) \[")


def _read_pty(fd: int, process: subprocess.Popen[bytes], limit: float) -> str:
    chunks: list[bytes] = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    return b"".join(chunks).decode("utf-8", errors="replace")


@pytest.mark.slow
def test_a_long_load_shows_a_live_bar_with_counts_on_a_terminal(tmp_path: Path) -> None:
    identity = pyrage.x25519.Identity.generate()
    key_file = tmp_path / "keys.txt"
    key_file.write_text(f"{identity}\n")
    files = generate(tmp_path, 700, str(identity.to_public()))  # 2,100 encrypted manifests
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TERM", "RECONCILER_WORKERS")}
    env.update(
        TERM="xterm",
        COLUMNS="120",
        PYTHONPATH=str(REPO),
        SOPS_AGE_KEY_FILE=str(key_file),
        RECONCILER_WORKERS="1",  # one process: the bar moves with every file
    )
    primary, secondary = pty.openpty()
    with open(tmp_path / "stdout.txt", "wb") as stdout:
        process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "validate", "--manifests", "manifests"],
            cwd=tmp_path,
            env=env,
            stdin=secondary,
            stdout=stdout,  # not the terminal: the bar must go to stderr only
            stderr=secondary,
        )
        os.close(secondary)
        try:
            started = time.monotonic()
            terminal = _read_pty(primary, process, limit=300)
            process.wait(timeout=60)
            elapsed = time.monotonic() - started
        finally:
            os.close(primary)
    assert process.returncode == 0, terminal
    assert elapsed > 1.0, "the load must take more than a second for the bar to show"
    counts = [(int(done), int(total)) for done, total in BAR.findall(terminal)]
    assert counts, terminal[-2000:]
    assert all(total == files for _, total in counts)
    assert any(0 < done < files for done, _ in counts)  # seen while it was running
    assert "files/s" in terminal or "file/s" in terminal  # the rate
    assert re.search(r"Loading manifests\.\.\. \d+ files \(\d+\.\d+s\)", terminal)
    stdout_text = (tmp_path / "stdout.txt").read_text()
    assert "Loading manifests" not in stdout_text and "%|" not in stdout_text


def test_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress(stream)
    assert not progress.live
    with progress.stage("Loading manifests", unit="file") as stage:
        stage.set_total(3)
        stage.advance(3)
        stage["detail"] = "3 files"
    with progress.stage("Reading database") as stage:
        stage.advance(2)
    assert re.fullmatch(
        r"Loading manifests\.\.\. 3 files \(\d\.\ds\)\nReading database\.\.\. done \(\d\.\ds\)\n",
        stream.getvalue(),
    )


def test_quiet_prints_nothing_and_a_failed_stage_says_so() -> None:
    with QUIET.stage("Loading manifests") as stage:
        stage.advance(5)
    stream = io.StringIO()
    with pytest.raises(RuntimeError), Progress(stream).stage("Applying"):
        raise RuntimeError("boom")
    assert stream.getvalue() == "Applying... failed\n"


def test_ci_turns_the_live_bar_off(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert Progress(Terminal()).live
    monkeypatch.setenv("CI", "true")
    assert not Progress(Terminal()).live
    assert not Progress(Terminal(), enabled=False).live
