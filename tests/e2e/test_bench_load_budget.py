"""The load budget splits a cold load of the fleet benchmark's manifests into the floor's
parts, the compiled calls beyond them and the loader's interpreted code, and sets beside it
the least a loader in Python does."""

from __future__ import annotations

from pathlib import Path

import pyrage
import pytest

from benchmarks.fleet import generate
from benchmarks.load_budget import measure, report


def test_a_cold_load_is_split_into_the_floor_the_compiled_calls_and_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = pyrage.x25519.Identity.generate()
    key_file = tmp_path / "age-key.txt"
    key_file.write_text(f"{identity}\n")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key_file))
    generate(tmp_path, 2, str(identity.to_public()))
    root = tmp_path / "manifests"

    budget = measure(root, identity, repeat=1)

    assert budget.files == 6
    assert budget.whole > budget.floor > 0
    assert budget.compiled > 0
    assert budget.interpreted == budget.whole - budget.floor - budget.compiled
    assert budget.calls > 100
    assert budget.floor < budget.minimal < budget.whole
    assert budget.domain_rules > 0
    assert 0 < budget.required < budget.whole - budget.minimal
    table = report(budget)
    assert "| the rest: the loader's interpreted code |" in table
    assert "| a minimal loader in Python (see the module's text) |" in table
    assert "| the other parts a product cannot drop (see the module's text) |" in table
