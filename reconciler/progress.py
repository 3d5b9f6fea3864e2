"""Stage-by-stage progress lines on stderr, for the long-running verbs."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Progress:
    """One line per stage on stderr: ``Loading manifests... 30000 files (2.1s)``."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled

    def note(self, message: str) -> None:
        if self.enabled:
            print(message, file=self.stream, flush=True)

    @contextmanager
    def stage(self, title: str) -> Iterator[dict[str, str]]:
        """Time a stage; the body may set ``result["detail"]`` for the closing line."""
        result: dict[str, str] = {}
        if self.enabled:
            print(f"{title}...", end="", file=self.stream, flush=True)
        started = time.perf_counter()
        try:
            yield result
        except BaseException:
            if self.enabled:
                print(" failed", file=self.stream, flush=True)
            raise
        if self.enabled:
            detail = result.get("detail", "done")
            print(f" {detail} ({time.perf_counter() - started:.1f}s)", file=self.stream, flush=True)


QUIET = Progress(enabled=False)
"""Progress that prints nothing (the default of the Python API)."""
