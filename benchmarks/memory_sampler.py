"""The memory sampler of the fleet benchmark, run as its own process by
:class:`benchmarks.floors.PeakMemory` (by path, so that it imports nothing but the standard
library): ``python memory_sampler.py PID KNOWN_PIDS [descendants]``. It reads the
proportional set size of PID (unless ``descendants`` is given) and of its descendants not in
KNOWN_PIDS every 250 ms until a line arrives on its standard input, then prints the peak in
bytes and its own CPU seconds.
"""

from __future__ import annotations

import os
import select
import sys


def pss(pid: int) -> int:
    """The proportional set size of ``pid`` in bytes (0 when it cannot be read).

    PSS, not RSS: a forked worker shares its parent's pages, which RSS would count twice.
    """
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (of all its threads)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return found


def main() -> None:
    target, me = int(sys.argv[1]), os.getpid()
    known = {int(p) for p in sys.argv[2].split(",") if p}
    own = sys.argv[3:] != ["descendants"]
    peak = 0
    while True:
        total = pss(target) if own else 0
        stack = [c for c in children(target) if c not in known and c != me]
        while stack:
            pid = stack.pop()
            total += pss(pid)
            stack.extend(children(pid))
        peak = max(peak, total)
        if select.select([sys.stdin], [], [], 0.25)[0]:
            break
    times = os.times()
    print(peak, times.user + times.system, flush=True)


if __name__ == "__main__":
    main()
