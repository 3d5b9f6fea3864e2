"""The package's layering, checked on the import statements of every module.

A *unit* is a top-level module (``reconciler/files.py`` is ``files``) or a subpackage
(``reconciler/load/`` is ``load``); ``reconciler`` itself (its ``__init__``, which holds
``__version__``) is the unit ``reconciler``. Units are stacked in layers, lowest first::

    reconciler, escape, redaction, gcpause, clock, progress,   leaf helpers, no imports
    jsonform, yaml_fast                                         (yaml_fast: the YAML reader's
                                                                fast path)
    diagnostics                                                 Diagnostic, DiagnosticsReport
    errors                                                      the exception tree
    context, model                                              run context; records
    core, yaml_source                                           pure planning; the YAML reader
    files, crypto                                               safe file I/O; keys and ciphers
    sops, settings                                              SOPS files; configuration
    load, store, fmt                                            manifests -> state; PostgreSQL;
                                                                the canonical YAML layout
    health, importer                                            probes; database -> manifests
    gitchanges, gitrevision, notify, render, runtime            git; notifications; output formats;
                                                                the services' client
    commands, schemas_export, migrations                        the operations
    cli                                                         the command line
    __main__

A module may import its own unit and units of lower layers, never a unit of its own layer
or above: every dependency points down, so there are no import cycles between units. Type-
only imports (``if TYPE_CHECKING:``) count too. A new top-level module or subpackage must be
given a place here.

The pure stages (``core``, ``model``) also import no I/O library, only ``store`` and the
migration scripts import the database libraries, and nothing in the package probes for an
optional module: a missing or renamed module fails at import, it never turns
a feature off silently.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "reconciler"
FORBIDDEN = ("sqlalchemy", "cryptography", "click", "subprocess", "psycopg", "pyrage", "yaml")

LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "reconciler",
        "escape",
        "redaction",
        "gcpause",
        "clock",
        "progress",
        "jsonform",
        "yaml_fast",
    ),
    ("diagnostics",),
    ("errors",),
    ("context", "model"),
    ("core", "yaml_source"),
    ("files", "crypto"),
    ("sops", "settings"),
    ("load", "store", "fmt"),
    ("health", "importer"),
    ("gitchanges", "gitrevision", "notify", "render", "runtime"),
    ("commands", "schemas_export", "migrations"),
    ("cli",),
    ("__main__",),
)
DATABASE_LIBRARIES = ("sqlalchemy", "psycopg", "alembic")
DATABASE_UNITS = ("store", "migrations")
DATABASE_EXCEPTIONS: tuple[str, ...] = ()
"""Modules outside store/ allowed to import a database library: none."""
LAYER_OF = {unit: index for index, layer in enumerate(LAYERS) for unit in layer}


def _modules() -> Iterator[tuple[Path, tuple[str, ...]]]:
    """Every module of the package with its dotted name as a tuple."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ("reconciler", *path.relative_to(PACKAGE).with_suffix("").parts)
        yield path, parts


def _unit(dotted: tuple[str, ...]) -> str:
    """The unit a module name (or a name imported from a module) belongs to."""
    return dotted[1] if len(dotted) > 1 and dotted[1] != "__init__" else "reconciler"


def _imported(path: Path, parts: tuple[str, ...]) -> Iterator[tuple[int, tuple[str, ...]]]:
    """(line, dotted name) of every ``reconciler`` name the module imports."""
    package = parts[:-1]  # the package a relative import starts from
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, tuple(alias.name.split("."))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = (*base, *(node.module.split(".") if node.module else ()))
            else:
                module = tuple((node.module or "").split("."))
            for alias in node.names:
                # ``from reconciler import sops`` imports the unit ``sops``.
                yield node.lineno, module if len(module) > 1 else (*module, alias.name)


def test_every_unit_has_a_layer() -> None:
    units = {_unit(parts) for _, parts in _modules()}
    assert sorted(units - set(LAYER_OF)) == []


def test_imports_point_down_the_layers() -> None:
    offenders = []
    for path, parts in _modules():
        unit = _unit(parts)
        for line, name in _imported(path, parts):
            if name[0] != "reconciler":
                continue
            target = _unit(name)
            if target != unit and LAYER_OF.get(target, -1) >= LAYER_OF.get(unit, -1):
                rel = path.relative_to(PACKAGE.parent)
                offenders.append(f"{rel}:{line}: {unit} imports {'.'.join(name)} ({target})")
    assert offenders == []


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


def _libraries(path: Path) -> Iterator[tuple[int, str]]:
    """(line, top-level name) of every absolute import of the module, type-only ones too."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module.split(".")[0]


def test_only_store_and_migrations_import_database_libraries() -> None:
    offenders = []
    for path, parts in _modules():
        rel = path.relative_to(PACKAGE.parent).as_posix()
        if _unit(parts) in DATABASE_UNITS or rel in DATABASE_EXCEPTIONS:
            continue
        offenders += [
            f"{rel}:{line}: imports {name}"
            for line, name in _libraries(path)
            if name in DATABASE_LIBRARIES
        ]
    assert offenders == []


def test_no_module_is_optional() -> None:
    offenders = []
    for path, _ in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            where = f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                caught = ast.unparse(node.type)
                if "ImportError" in caught or "ModuleNotFoundError" in caught:
                    offenders.append(f"{where}: except {caught}")
            elif isinstance(node, ast.Call):
                called = ast.unparse(node.func)
                if called in ("importlib.import_module", "import_module", "__import__"):
                    offenders.append(f"{where}: {called}()")
    assert offenders == []


@pytest.mark.parametrize("package", ["health", "importer", "store", "core", "render"])
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


CLI_ALLOWED_STORE_NAMES = {
    "reconciler.store.database.mask_credentials",
    "reconciler.store.database.DRIVER_ERRORS",
    "reconciler.store.database.unanticipated_error",
}
"""What the CLI may take from ``store``: the one error handler's masking of credentials and
its one-line message for a driver error no layer anticipated."""
CLI_FORBIDDEN_MODULES = ("reconciler.crypto.aead", "reconciler.crypto.local_keys")
CLI_FORBIDDEN_NAMES = {
    "reconciler.crypto.audit_key.load_audit_key",
    "reconciler.crypto.keyring.Keyring",
    "reconciler.crypto.legacy_tokens.decoder",
    "reconciler.crypto.legacy_tokens.load_legacy_key",
}


def _imported_names(path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of every absolute import, down to the name imported."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def test_cli_builds_no_engines_keyrings_or_ciphers() -> None:
    """A CLI module parses options, calls one ``reconciler.commands`` function and renders.

    Opening databases, loading keys and building ciphers happen behind the Python API, so
    scripts and the command line share one path: the CLI imports nothing of ``store`` but
    the credential masking of its error handler, and no key loader or cipher.
    """
    offenders = []
    for path in sorted((PACKAGE / "cli").rglob("*.py")):
        for line, name in _imported_names(path):
            store = name.startswith("reconciler.store") and name not in CLI_ALLOWED_STORE_NAMES
            keys = name.startswith(CLI_FORBIDDEN_MODULES) or name in CLI_FORBIDDEN_NAMES
            if store or keys:
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line}: imports {name}")
    assert offenders == []
