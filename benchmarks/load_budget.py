"""A cold load's cost per file, split into what no reader can avoid and what is the loader's.

``python -m benchmarks.load_budget --workdir DIR [--tenants N] [--repeat R]`` copies the
first N tenants (default 1,000: 3,000 files) of the fleet the fleet benchmark generated in
``DIR`` (its ``--workdir``; the age key is ``DIR/age-key.txt``) into a fleet of their own,
and prints, per file, at the best of R runs (default 3), in this one process:

- the whole load, as a cold ``plan`` does it (parse, decrypt, validate, build the desired
  state; no cache, one process);
- the floor's parts on the same files (``benchmarks/floors.py``: read, the fastest YAML
  parser, age, AES-GCM);
- the compiled calls the loader makes beyond them: pydantic's validation of each document,
  SHA-256 of each file, an HMAC-SHA256 per encrypted value (the secrets' fingerprints);
- the rest, the interpreter running the loader's own code, and the function calls a file
  costs (``cProfile``, one more run).

The split shows how much of a cold stage's distance from its floor is work a faster library
could take and how much is interpreted code. Not part of the test run.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import hashlib
import hmac
import os
import pstats
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyrage
import yaml_rs

from benchmarks.floors import measure_files_on_one_core
from reconciler.crypto.fingerprint import Fingerprinter
from reconciler.load.manifest_model import config_model
from reconciler.load.stage import load_desired_state
from reconciler.model.enums import Platform

FINGERPRINT_KEY = base64.b64encode(b"f" * 32).decode()
"""The fleet benchmark's fingerprint key (a fixed test key)."""


@dataclass(frozen=True, slots=True)
class Budget:
    """Seconds per file of each part, at their best, and the function calls of one file."""

    files: int
    whole: float
    floor: float
    compiled: float
    calls: float

    @property
    def interpreted(self) -> float:
        """What is left of the whole once the floor and the compiled calls are taken out."""
        return self.whole - self.floor - self.compiled


def measure(root: Path, identity: pyrage.x25519.Identity, repeat: int) -> Budget:
    """The budget of loading every manifest under ``root``, as a fleet-wide run does."""
    files = sorted((root / "tenants").rglob("*.yaml"))
    fingerprint = Fingerprinter(base64.b64decode(FINGERPRINT_KEY))

    def load() -> None:
        result = load_desired_state(root, fingerprint=fingerprint, cache=None, workers=1)
        if result.state is None or result.diagnostics.has_errors():
            raise SystemExit(f"the manifests under {root} do not load: {result.diagnostics}")

    load()  # imports, the page cache and the loader's memoized answers, as a fleet run has
    whole = _best(load, repeat)
    floor = min(measure_files_on_one_core(files, identity).one_core for _ in range(repeat))
    compiled = _best(_compiled_calls(files), repeat)
    profile = cProfile.Profile()
    profile.runcall(load)
    calls = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
    n = len(files)
    return Budget(n, whole / n, floor / n, compiled / n, calls / n)


def _compiled_calls(files: Sequence[Path]) -> Callable[[], None]:
    """The calls into compiled code the loader makes beyond the floor's, over ``files``."""
    texts = [f.read_bytes() for f in files]
    documents: list[dict[str, Any]] = []
    for text in texts:
        document = yaml_rs.loads(text.decode())
        assert isinstance(document, dict), "a manifest is one mapping"
        documents.append(document)
    models = [config_model(Platform(d["platform"])) for d in documents]
    values = [t.count(b"ENC[AES256_GCM,") - 1 for t in texts]  # every value but the MAC
    for d in documents:
        d.pop("sops")
    key = base64.b64decode(FINGERPRINT_KEY)

    def run() -> None:
        for text, document, model, count in zip(texts, documents, models, values, strict=True):
            hashlib.sha256(text).digest()
            model.model_validate(document)
            for _ in range(count):
                hmac.digest(key, text[:32], "sha256")

    return run


def _best(run: Callable[[], None], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def report(budget: Budget) -> str:
    """The budget as a markdown table, in microseconds a file."""
    rows = [
        ("the whole load (one process)", budget.whole),
        ("the floor's parts (read, fastest parser, age, AES-GCM)", budget.floor),
        ("compiled calls beyond them (validation, SHA-256, fingerprints)", budget.compiled),
        ("the rest: the loader's interpreted code", budget.interpreted),
    ]
    lines = [f"{budget.files} files; about {budget.calls:,.0f} function calls a file", ""]
    lines += ["| part | per file |", "|---|---|"]
    lines += [f"| {name} | {seconds * 1e6:,.0f} µs |" for name, seconds in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, required=True, help="The fleet benchmark's.")
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    key_file = args.workdir / "age-key.txt"
    os.environ["SOPS_AGE_KEY_FILE"] = str(key_file)
    identity = pyrage.x25519.Identity.from_str(key_file.read_text().strip())
    fleet = args.workdir / "manifests"
    with tempfile.TemporaryDirectory(prefix="reconciler-budget-") as tmp:
        # The first tenants as a fleet of their own: loaded whole, as a fleet-wide run is.
        root = Path(tmp) / "manifests"
        for tenant in sorted((fleet / "tenants").iterdir())[: args.tenants]:
            shutil.copytree(tenant, root / "tenants" / tenant.name)
        if (fleet / "templates").is_dir():
            shutil.copytree(fleet / "templates", root / "templates")
        print(report(measure(root, identity, max(1, args.repeat))))


if __name__ == "__main__":
    main()
