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
  costs (``cProfile``, one more run);
- a minimal loader written in Python on the same files: parse with the fastest parser,
  validate the document, open the data key, one walk that decrypts every value and hashes
  it into the MAC, the MAC's check, a fingerprint per secret; with none of the loader's
  screens, domain rules, templates, diagnostics or objects;
- the domain rules that need no key (``rules.check_document``), on the parsed documents;
- the other parts of the loader a product cannot drop, each the loader's own function run on
  inputs made beforehand: the screen that keeps the fast parser exact, the checks of the
  sops metadata, the credential scan and the MAC coverage check, and the making of the
  objects the diff compares (``build_state``).

The split shows how much of a cold stage's distance from its floor is work a faster library
could take and how much is interpreted code; the minimal loader, what is left of the
distance when every part a product needs beyond the bare work is taken away. Not part of
the test run.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import hashlib
import hmac
import os
import pstats
import re
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
from reconciler.diagnostics import Diagnostics
from reconciler.load import rules
from reconciler.load.analyze import analyze_file, unauthenticated
from reconciler.load.decrypt import Decryption, SecretKey
from reconciler.load.desired_state import build_state
from reconciler.load.file_types import FileJob, FileResult, TemplateSet
from reconciler.load.manifest_model import config_model
from reconciler.load.stage import load_desired_state
from reconciler.model.enums import Platform
from reconciler.sops.age_x25519 import X25519Opener
from reconciler.sops.codec import ValueCipher
from reconciler.sops.mac import MAC_ONLY_ENCRYPTED_SEED
from reconciler.sops.metadata import Metadata
from reconciler.yaml_fast import _fast_screen, _string_keys

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
    minimal: float
    domain_rules: float
    required: float

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
    minimal = _best(_minimal_loader(files, identity, fingerprint), repeat)
    domain_rules = _best(_domain_rules(files), repeat)
    required = _best(_required_parts(root, files, fingerprint), repeat)
    profile = cProfile.Profile()
    profile.runcall(load)
    calls = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
    n = len(files)
    parts = (whole, floor, compiled, calls, minimal, domain_rules, required)
    return Budget(n, *(part / n for part in parts))


def _compiled_calls(files: Sequence[Path]) -> Callable[[], None]:
    """The calls into compiled code the loader makes beyond the floor's, over ``files``."""
    texts = [f.read_bytes() for f in files]
    documents = [_mapping(text.decode()) for text in texts]
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


def _minimal_loader(
    files: Sequence[Path], identity: pyrage.x25519.Identity, fingerprint: Fingerprinter
) -> Callable[[], None]:
    """The least a loader written in Python does per file (see the module's text).

    For the files the fleet benchmark writes: one document, one age recipient, an
    ``encrypted_regex`` rule with ``mac_only_encrypted``. The MAC is checked (a file that
    does not verify stops the measurement), so the walk is the real one, not a stand-in.
    """
    opener = X25519Opener.for_identity(str(identity), str(identity.to_public()))
    assert opener is not None, "the identity opens its own files"
    models = {platform.value: config_model(platform) for platform in Platform}

    def load_one(path: Path) -> None:
        raw = path.read_bytes()
        document = _mapping(raw.decode())
        sops = document.pop("sops")
        models[document["platform"]].model_validate(document)
        data_key = opener.open(sops["age"][0]["enc"])
        assert data_key is not None and sops["mac_only_encrypted"], f"{path}: not the form"
        cipher = ValueCipher(data_key)
        encrypted = re.compile(sops["encrypted_regex"]).search
        mac = hashlib.sha512(MAC_ONLY_ENCRYPTED_SEED)
        keys: list[str] = []

        def walk(node: Any, matched: bool) -> None:
            if type(node) is list:
                for item in node:
                    if type(item) is dict or type(item) is list:
                        walk(item, matched)
                return
            for key, value in node.items():
                below = matched or encrypted(key) is not None
                if type(value) is dict or type(value) is list:
                    keys.append(key)
                    walk(value, below)
                    keys.pop()
                elif below and type(value) is str:
                    keys.append(key)
                    plain, mac_bytes = cipher.decrypt(value, ":".join(keys) + ":")
                    keys.pop()
                    mac.update(mac_bytes)
                    node[key] = plain
                    fingerprint(plain)

        walk(document, False)
        stored, _ = cipher.decrypt(sops["mac"], sops["lastmodified"])
        if not hmac.compare_digest(mac.hexdigest().upper(), stored):
            raise SystemExit(f"{path}: the minimal loader's MAC does not match")
        hashlib.sha256(raw).digest()

    def run() -> None:
        for path in files:
            load_one(path)

    return run


def _mapping(text: str) -> dict[str, Any]:
    document = yaml_rs.loads(text, parse_datetime=False)
    assert isinstance(document, dict), "a manifest is one mapping"
    return document


def _domain_rules(files: Sequence[Path]) -> Callable[[], None]:
    """The domain rules that need no key, over the parsed documents of ``files``."""
    documents = [_mapping(f.read_text()) for f in files]
    platforms = [Platform(d["platform"]) for d in documents]

    def run() -> None:
        for document, platform in zip(documents, platforms, strict=True):
            rules.check_document(document, platform)

    return run


def _required_parts(
    root: Path, files: Sequence[Path], fingerprint: Fingerprinter
) -> Callable[[], None]:
    """The parts of the loader beyond the minimal one and the domain rules that a product
    cannot drop, each run on inputs made beforehand (see the module's text)."""
    texts = [f.read_bytes() for f in files]
    decoded = [t.decode() for t in texts]
    documents = [_mapping(t) for t in decoded]
    templates = TemplateSet({})
    decryption = Decryption(templates, None, True, Diagnostics())
    built: list[tuple[FileResult, dict[SecretKey, str]]] = []
    for path, text in zip(files, texts, strict=True):
        rel = path.relative_to(root).as_posix()
        platform = Platform(path.stem.upper())
        result = analyze_file(FileJob(rel, rel, text, path.parent.name, platform), templates)
        built.append((result, decryption.file(result, text)))
    if decryption.diagnostics.has_errors():
        raise SystemExit(f"the manifests under {root} do not load: {decryption.diagnostics}")

    def run() -> None:
        for raw, text, document in zip(texts, decoded, documents, strict=True):
            _fast_screen(raw, text)
            _string_keys(document)
            Metadata.parse(document["sops"], source="")
            rules.scan_credentials(document, text)
            unauthenticated(document)
        for result, secrets in built:
            build_state([result], secrets, fingerprint, "")

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
        ("a minimal loader in Python (see the module's text)", budget.minimal),
        ("the domain rules that need no key", budget.domain_rules),
        ("the other parts a product cannot drop (see the module's text)", budget.required),
    ]
    lines = [f"{budget.files} files; about {budget.calls:,.0f} function calls a file", ""]
    lines += ["| part | per file | floor units |", "|---|---|---|"]
    lines += [
        f"| {name} | {seconds * 1e6:,.0f} µs | {seconds / budget.floor:.2f} |"
        for name, seconds in rows
    ]
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
