"""Fixtures for renderer tests (golden files: see ``golden_files.py``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.unit.render.golden_files import GOLDEN_DIR, check_against_file


@pytest.fixture
def golden() -> Callable[[str, str], None]:
    """``golden(name, actual)`` checks ``actual`` against ``golden/<name>``."""
    return lambda name, actual: check_against_file(GOLDEN_DIR / name, actual)
