"""Diagnostics: user-input problems as data, collected for a whole run.

A :class:`Diagnostic` names the file, line, column and field path of one problem, a stable
rule id (``RCN-...``) and a message. Stages append to a :class:`Diagnostics` collection and
never stop at the first problem; the CLI renders them as text, JSON or GitHub annotations.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.escape import printable
from reconciler.jsonform import json_form


class Severity(enum.StrEnum):
    """How bad a diagnostic is. Only ``ERROR`` fails a run (``WARNING`` too under ``--strict``)."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem in the user's input.

    Attributes:
        code: stable rule id such as ``RCN-V001``; users search for it, CI annotates by it.
        message: what is wrong and, where possible, how to fix it. Never contains secrets.
        file: path of the manifest as given to the command (relative where possible).
        line: 1-based line, or ``None`` when the problem has no single place.
        column: 1-based column, or ``None``.
        path: field path inside the document, e.g.
            ``environments.production.webhooks.billing.events[2]``.
        severity: error, warning or info.
    """

    code: str
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    path: str = ""
    severity: Severity = Severity.ERROR

    def __post_init__(self) -> None:
        # One diagnostic is one line in every format, whatever a parser or a file put into
        # it: messages (PyYAML's span several lines) are folded, and the file name and field
        # path, which come from the input, have control characters escaped.
        if "\n" in self.message or "\r" in self.message:
            object.__setattr__(self, "message", " ".join(self.message.split()))
        object.__setattr__(self, "path", printable(self.path))
        if self.file is not None:
            object.__setattr__(self, "file", printable(self.file))

    def location(self) -> str:
        """``file:line:col`` with the parts that are known."""
        parts = [self.file or "<input>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def format(self) -> str:
        """The one-line text form: ``path:line:col: field.path: message [RULE-ID]``."""
        prefix = "" if self.severity is Severity.ERROR else f"{self.severity.value}: "
        where = f"{self.path}: " if self.path else ""
        return f"{self.location()}: {prefix}{where}{self.message} [{self.code}]"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, used by ``--format json``."""
        return json_form(self, ("code", "severity", "message", "file", "line", "column", "path"))

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.file or "", self.line or 0, self.column or 0, self.path, self.code)


def _count(diagnostics: Iterable[Diagnostic], severity: Severity) -> int:
    return sum(1 for d in diagnostics if d.severity is severity)


@dataclass(slots=True)
class Diagnostics:
    """An ordered, append-only collection of diagnostics for one run."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, diagnostic: Diagnostic) -> None:
        self.items.append(diagnostic)

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.items.extend(diagnostics)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def error_count(self) -> int:
        return _count(self.items, Severity.ERROR)

    def has_errors(self, *, strict: bool = False) -> bool:
        """True when the run must fail: any error, or any warning under ``strict``."""
        failing = (Severity.ERROR, Severity.WARNING) if strict else (Severity.ERROR,)
        return any(d.severity in failing for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        """Diagnostics in file, line, column order (stable for golden tests)."""
        return sorted(self.items, key=Diagnostic.sort_key)


@dataclass(frozen=True, slots=True)
class DiagnosticsReport:
    """What a validation run found, ready to render.

    Attributes:
        diagnostics: every diagnostic, in file/line/column order.
        files: number of manifest files checked.
        skipped_decryption: files whose secrets were not decrypted (no key).
        valid: whether the run passed (``--strict`` already applied).
    """

    diagnostics: Sequence[Diagnostic]
    files: int
    skipped_decryption: Sequence[str]
    valid: bool

    @property
    def errors(self) -> int:
        """Number of error diagnostics."""
        return _count(self.diagnostics, Severity.ERROR)

    @property
    def warnings(self) -> int:
        """Number of warning diagnostics."""
        return _count(self.diagnostics, Severity.WARNING)
