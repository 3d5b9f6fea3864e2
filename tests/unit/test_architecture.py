"""The pure core and the model import no I/O libraries."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "reconciler"
FORBIDDEN = ("sqlalchemy", "cryptography", "click", "subprocess", "psycopg", "pyrage", "yaml")


@pytest.mark.parametrize("stage", ["core", "model"])
def test_pure_stages_import_no_io(stage: str) -> None:
    offenders = []
    for path in (PACKAGE / stage).rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


@pytest.mark.parametrize("package", ["health", "export", "store", "core", "render"])
def test_lower_layers_do_not_import_the_python_api(package: str) -> None:
    """``reconciler.commands`` sits on top: the packages it uses never import it back."""
    offenders = []
    for path in (PACKAGE / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            if "reconciler.commands" in names:
                offenders.append(path.name)
    assert offenders == []
