"""Stage-by-stage progress on stderr, for the long-running verbs.

Two renderings of the same stages:

* **Lines** (not a terminal, ``CI`` set, or ``TERM=dumb``): one line per stage, unchanged for
  scripts and CI logs: ``Loading manifests... 30000 files (2.1s)``.
* **Live** (stderr is a terminal): while a stage runs, a bar with the count done, the total
  when known, the rate and the time left (drawn by ``tqdm``, only once the stage has run for
  :data:`LIVE_AFTER` seconds, so quick stages do not flicker); when the stage ends the bar is
  cleared and the same one line as above is printed.

Nothing is ever written to stdout. ``--quiet`` gives :data:`QUIET`, which prints nothing.

Stages report work with :meth:`Stage.advance` (thread-safe), and may set the closing detail
with ``stage["detail"] = "..."``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

LIVE_AFTER = 0.5
"""Seconds a stage runs before its live bar is drawn."""


def _is_terminal(stream: TextIO) -> bool:
    if os.environ.get("CI") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _Writer:
    """A stream as tqdm needs it: write and flush, nothing else."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()


class Stage:
    """One running stage: counts work done and carries the detail of its closing line.

    Attributes:
        title: what the stage does (``Loading manifests``).
        total: how much work there is, when known (the bar then shows a percentage and ETA).
        done: how much is done so far.
    """

    def __init__(self, title: str, total: int | None, unit: str, bar: Any | None) -> None:
        self.title = title
        self.total = total
        self.unit = unit
        self.done = 0
        self._detail: str | None = None
        self._bar = bar
        self._lock = threading.Lock()

    def advance(self, count: int = 1) -> None:
        """Record ``count`` more units of work done (callable from any thread)."""
        with self._lock:
            self.done += count
            if self._bar is not None:
                self._bar.update(count)

    def set_total(self, total: int) -> None:
        """Set (or correct) the amount of work once it is known."""
        with self._lock:
            self.total = total
            if self._bar is not None:
                self._bar.total = total
                self._bar.refresh()

    # The stage is also the mapping the body sets "detail" in (the original interface).
    def __setitem__(self, key: str, value: str) -> None:
        if key != "detail":
            raise KeyError(key)
        self._detail = value

    def __getitem__(self, key: str) -> str:
        if key != "detail" or self._detail is None:
            raise KeyError(key)
        return self._detail

    def get(self, key: str, default: str) -> str:
        """The closing detail, or ``default`` when the body did not set one."""
        return self._detail if key == "detail" and self._detail is not None else default

    def closing_detail(self) -> str:
        """What the closing line says: the detail set, else ``done`` (as it always has)."""
        return self._detail if self._detail is not None else "done"


class Progress:
    """Progress of a command's stages on stderr (see the module docstring).

    Args:
        stream: where to write (stderr by default; never stdout).
        enabled: False prints nothing (``--quiet``).
        live: force the live bar on or off; by default on when ``stream`` is a terminal.
    """

    def __init__(
        self, stream: TextIO | None = None, *, enabled: bool = True, live: bool | None = None
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.live = enabled and (_is_terminal(self.stream) if live is None else live)

    def note(self, message: str) -> None:
        """Print one line (not part of a stage)."""
        if self.enabled:
            print(message, file=self.stream, flush=True)

    @contextmanager
    def stage(self, title: str, total: int | None = None, *, unit: str = "") -> Iterator[Stage]:
        """Time a stage; the body calls ``advance(n)`` and may set ``stage["detail"]``."""
        bar = self._bar(title, total, unit) if self.live else None
        stage = Stage(title, total, unit, bar)
        if self.enabled and not self.live:
            print(f"{title}...", end="", file=self.stream, flush=True)
        started = time.perf_counter()
        try:
            yield stage
        except BaseException:
            if bar is not None:
                bar.close()
            if self.enabled:
                lead = f"{title}..." if self.live else ""
                print(f"{lead} failed", file=self.stream, flush=True)
            raise
        if bar is not None:
            bar.close()
        if self.enabled:
            lead = f"{title}..." if self.live else ""
            elapsed = time.perf_counter() - started
            print(f"{lead} {stage.closing_detail()} ({elapsed:.1f}s)", file=self.stream, flush=True)

    def _bar(self, title: str, total: int | None, unit: str) -> Any:
        from tqdm import tqdm  # imported only when a terminal shows the bar

        # No monitor thread: a thread in the parent would be inherited badly by forked workers.
        tqdm.monitor_interval = 0
        return tqdm(
            total=total,
            desc=title,
            unit=f" {unit}" if unit else "it",
            # tqdm draws nothing on a pseudo-terminal when handed sys.stderr itself (seen with
            # 4.70 under pty); through a plain writer it draws as on any terminal.
            file=_Writer(self.stream),
            leave=False,
            delay=LIVE_AFTER,
            ncols=self._width(),
            mininterval=0.2,
        )

    def _width(self) -> int:
        """The terminal's width; 100 when it reports none (a fresh pty says 0 columns)."""
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            columns = 0
        if not columns:
            columns = int(os.environ.get("COLUMNS", "0") or 0)
        return columns if columns > 20 else 100


QUIET = Progress(enabled=False)
"""Progress that prints nothing (the default of the Python API)."""
