from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path, database_url: str) -> Workspace:
    """A repository with an age key, a .sops.yaml and an empty manifests/ tree."""
    return Workspace.create(tmp_path, database_url)
