"""Golden-file comparison for renderer tests.

Set ``RECONCILER_UPDATE_GOLDEN=1`` to rewrite the golden files (and ``schemas/plan.v1.json``)
from the current output instead of comparing; review the diff before committing.
"""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE = os.environ.get("RECONCILER_UPDATE_GOLDEN") == "1"


def check_against_file(path: Path, actual: str) -> None:
    """Compare ``actual`` with the file at ``path``, or rewrite it when updating."""
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="")
        return
    assert path.exists(), f"{path} is missing; run with RECONCILER_UPDATE_GOLDEN=1"
    assert actual == path.read_bytes().decode("utf-8"), (
        f"output differs from {path.name}; if intended, rerun with RECONCILER_UPDATE_GOLDEN=1"
    )
