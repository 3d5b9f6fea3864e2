"""The fleet benchmark's best-of-N: each stage from its fastest run, each floor part at its
fastest."""

from __future__ import annotations

from benchmarks.fleet import Run, Stage, best_of
from benchmarks.floors import DatabaseFloors, FileFloors


def _run(plan: float, apply: float, read: float, age: float, parallel: float, copy: float) -> Run:
    stages = {
        "plan": Stage("plan", plan, peak_bytes=int(plan * 100), cpu_seconds=plan * 2),
        "apply": Stage("apply", apply, peak_bytes=int(apply * 100), cpu_seconds=apply),
    }
    files = FileFloors(
        files=3,
        values=5,
        read=read,
        pyyaml=1.0,
        fastest_parser="yaml-rs",
        fastest_parse=0.5,
        age=age,
        aes=0.1,
        cores=2,
        parallel=parallel,
    )
    return stages, files, DatabaseFloors(select_rows=9, select=copy / 2, copy_rows=18, copy=copy)


def test_each_stage_comes_whole_from_its_fastest_run() -> None:
    stages, _, _ = best_of([_run(10, 30, 1, 1, 1, 4), _run(12, 25, 1, 1, 1, 4)])
    # Time, CPU and peak memory of one run each, never mixed across runs.
    assert stages["plan"] == Stage("plan", 10, 1000, 20)
    assert stages["apply"] == Stage("apply", 25, 2500, 25)


def test_each_floor_part_is_at_its_fastest() -> None:
    _, files, db = best_of([_run(1, 1, 0.4, 3.0, 4.5, 7.5), _run(1, 1, 0.5, 2.8, 3.0, 4.4)])
    assert (files.read, files.age, files.parallel) == (0.4, 2.8, 3.0)
    assert (db.copy, db.select) == (4.4, 2.2)
    assert files.one_core == 0.4 + 0.5 + 2.8 + 0.1
