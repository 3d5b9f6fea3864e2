"""The invalid-manifest corpus: one mistake per case, asserting rule id, file and line.

Each ``tests/cases/invalid/<name>/`` holds a tiny manifests tree and ``expected.json``:
``{"rule", "file" (relative to manifests/), "line" (or null), "severity"}``. A case passes
when the run reports exactly that rule (no other rule fires: one mistake, one finding) at
that file and line. Cases with ``"encrypt": true`` hold plaintext secrets that the test
encrypts with a generated age key through the real sops binary, because their rule needs
the decrypted value.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from reconciler.diagnostics import Severity
from reconciler.load.stage import load_desired_state

from .conftest import AgeKey

CASES = Path(__file__).resolve().parents[2] / "cases" / "invalid"


def _cases() -> list[Path]:
    return sorted(p for p in CASES.iterdir() if (p / "expected.json").is_file())


def test_corpus_is_large_enough() -> None:
    assert len(_cases()) >= 40


@pytest.mark.parametrize("case", _cases(), ids=lambda p: p.name)
def test_invalid_case(case: Path, tmp_path: Path) -> None:
    expected: dict[str, Any] = json.loads((case / "expected.json").read_text())
    root = case / "manifests"
    identities = None
    if expected.get("encrypt"):
        key = AgeKey()
        identities = key.identities()
        root = tmp_path / "manifests"
        shutil.copytree(case / "manifests", root)
        for file in sorted(root.rglob("*.yaml")):
            key.encrypt(tmp_path, file)

    result = load_desired_state(root, decrypt=bool(identities), identities=identities)

    problems = [d for d in result.diagnostics if d.severity is not Severity.INFO]
    codes = {d.code for d in problems}
    assert codes == {expected["rule"]}, [d.format() for d in problems]
    hits = [
        d
        for d in problems
        if d.file is not None
        and d.file.endswith(expected["file"])
        and d.line == expected["line"]
        and d.severity.value == expected["severity"]
    ]
    assert hits, [d.format() for d in problems]
    assert (result.state is None) == (expected["severity"] == "error")
    for d in problems:
        assert "sk_live_51H8" not in d.message and "whsec_abc" not in d.message
