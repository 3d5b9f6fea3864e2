"""``reconciler validate``: check manifests without a database (:func:`validate_manifests`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from reconciler import sops
from reconciler.diagnostics import Diagnostic, Diagnostics, DiagnosticsReport
from reconciler.errors import ConfigError
from reconciler.load import manifests as mf
from reconciler.load.stage import load_desired_state
from reconciler.model.plan import Selectors
from reconciler.progress import Stage


def validate_manifests(
    paths: Sequence[Path] = (),
    *,
    manifests_dir: Path | None = None,
    selectors: Selectors | None = None,
    strict: bool = False,
    identities: sops.Identities | None = None,
    progress: Stage | None = None,
) -> DiagnosticsReport:
    """``reconciler validate``: check manifests without a database.

    Args:
        paths: files or directories to check; default: all of ``manifests_dir``. Without
            ``manifests_dir``, each path's manifests root is the directory holding its
            ``tenants/`` (so ``validate some/other/manifests`` works from anywhere).
        manifests_dir: the manifests root (default ``./manifests``).
        selectors: tenant/platform selection.
        strict: warnings fail the run too.
        identities: age identities; ``None`` loads them from the environment.
        progress: advanced per file (see :func:`load_desired_state`).

    Raises:
        ConfigError: a manifests root does not exist.
    """
    groups: dict[Path, list[Path]] = defaultdict(list)
    default_root = (manifests_dir or Path("manifests")).resolve()
    for path in paths:
        root = default_root if manifests_dir else (mf.find_root(path.resolve()) or default_root)
        groups[root.resolve()].append(path)
    if not paths:
        groups[default_root] = []
    diagnostics: list[Diagnostic] = []
    skipped: list[str] = []
    files = 0
    for root, selected in groups.items():
        if not root.is_dir():
            raise ConfigError(
                f"manifests directory {root} does not exist; pass --manifests DIR or a PATH"
            )
        result = load_desired_state(
            root,
            selectors=selectors,
            paths=selected or None,
            identities=identities,
            progress=progress,
        )
        diagnostics.extend(result.diagnostics.sorted())
        skipped.extend(result.skipped_decryption)
        files += result.files
    collected = Diagnostics(diagnostics)
    return DiagnosticsReport(
        tuple(diagnostics), files, tuple(skipped), not collected.has_errors(strict=strict)
    )
