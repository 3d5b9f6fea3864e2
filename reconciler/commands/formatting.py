"""``format_paths``: the canonical layout of manifests and templates (``reconciler fmt``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.errors import ConfigError
from reconciler.files import atomic_write
from reconciler.fmt import expand, format_file
from reconciler.progress import QUIET, Progress


@dataclass(slots=True)
class FormatReport:
    """What ``format_paths`` found.

    Attributes:
        checked: every file looked at.
        changed: files not in the canonical layout (rewritten unless checking).
        errors: one line per file that could not be formatted (invalid YAML, or a layout
            change that would alter a value); those files are left as they are.
    """

    checked: list[Path] = field(default_factory=list)
    changed: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def format_paths(
    paths: Sequence[Path], *, write: bool = True, progress: Progress = QUIET
) -> FormatReport:
    """Put YAML files (and those under directories) in the canonical layout.

    Args:
        paths: files or directories (searched for ``.yaml``/``.yml``; hidden directories and
            ``.sops.yaml`` are skipped).
        write: False only reports the files that would change (``fmt --check``).
        progress: a stage with a count of files.

    Raises:
        ConfigError: a path does not exist.
    """
    report = FormatReport()
    files = expand(paths)
    with progress.stage(f"Formatting {len(files)} file(s)", len(files), unit="file") as stage:
        for path in files:
            report.checked.append(path)
            try:
                result = format_file(path)
            except ConfigError as exc:
                report.errors.append(str(exc))
            else:
                if result.changed:
                    report.changed.append(path)
                    if write:
                        atomic_write(path, result.text)
            stage.advance()
        stage["detail"] = f"{len(report.changed)} to change, {len(report.errors)} error(s)"
    return report
