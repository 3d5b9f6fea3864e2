"""One stage of the fleet benchmark, in a process of its own, as a ``reconciler`` command runs.

``python -m benchmarks.stage SPEC`` where SPEC is a JSON object: ``verb`` (``plan`` or
``apply``), ``database_url``, optionally ``tenants`` (the selected tenants) and ``progress``
(show progress on standard error). It runs in the manifests' parent directory with the
environment it is given (keys, ``RECONCILER_CACHE``), and prints one JSON line on standard
output: the command's wall and CPU seconds (this process and its finished worker
processes), the number of changes, and the seconds of each progress stage by title.

The interpreter's start and the imports are not timed: the same modules are imported by
every ``reconciler`` command before it starts working, and the in-process stages of earlier
versions of the benchmark did not time them either. A verb imports some of its modules
only when it runs (the loader, sops, the schema check; other commands start without them),
so they are imported here too; ``imported_while_timed`` in the output lists any module that
was still imported while the clock ran (none, when the list above is complete).
"""

from __future__ import annotations

# Besides what it uses, this module imports what a verb imports only once it runs (the
# loader, sops, the schema check, cryptography's OpenSSL backend, and what multiprocessing
# needs to start a worker), so that no clock counts an import (see the module's text).
import json
import multiprocessing.popen_fork
import multiprocessing.synchronize  # noqa: F401
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.backends import default_backend

import reconciler.load.stage
import reconciler.sops
import reconciler.store.migrate  # noqa: F401
from reconciler import commands
from reconciler.commands import apply, plan
from reconciler.model.plan import Selectors
from reconciler.settings import Settings

default_backend()  # imported by cryptography when it loads the first key


class StageClock(commands.Progress):
    """Progress lines as usual (or none), and the seconds of each stage, by title."""

    def __init__(self, enabled: bool) -> None:
        super().__init__(enabled=enabled)
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, title: str, total: int | None = None, *, unit: str = "") -> Iterator[Any]:
        started = time.perf_counter()
        with super().stage(title, total, unit=unit) as stage:
            yield stage
        self.seconds[title] = time.perf_counter() - started


def cpu_seconds() -> float:
    """User and system CPU seconds of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the stage ``spec`` describes; return what :func:`main` prints."""
    clock = StageClock(bool(spec.get("progress", False)))
    selectors = Selectors(tenants=tuple(spec.get("tenants", ())))
    options: dict[str, Any] = {
        "manifests_dir": Path("manifests"),
        "settings": Settings(),
        "selectors": selectors,
        "database_url": spec["database_url"],
        "progress": clock,
    }
    loaded = set(sys.modules)
    cpu, started = cpu_seconds(), time.perf_counter()
    if spec["verb"] == "plan":
        changes = len(plan(**options).plan.changes)
    elif spec["verb"] == "apply":
        changes = len(apply(**options).plan.changes)
    else:
        raise SystemExit(f"unknown verb {spec['verb']!r}")
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds() - cpu,
        "changes": changes,
        "stages": clock.seconds,
        "imported_while_timed": sorted(set(sys.modules) - loaded),
    }


def main() -> None:
    print(json.dumps(run(json.loads(sys.argv[1]))), flush=True)


if __name__ == "__main__":
    main()
