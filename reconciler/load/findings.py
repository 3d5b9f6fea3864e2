"""What a rule reports: a :class:`Finding` at a field path, before it has a file position,
and :func:`show`, the one way a user value enters a message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.diagnostics import Severity
from reconciler.redaction import REDACTED, is_secret_shaped

PathElement = str | int
FieldPath = tuple[PathElement, ...]
"""A path into a document: mapping keys and list indexes (not a file path)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in a document, before it is given a file position.

    Attributes:
        code: rule id from :data:`RULES`.
        message: what is wrong and how to fix it; never contains a secret.
        path: field path in the (merged) document.
        severity: error or warning.
        at_key: point at the mapping key rather than the value (unknown fields, names).
        line: a known 1-based line (comments have no path); ``None`` to locate by path.
    """

    code: str
    message: str
    path: FieldPath = ()
    severity: Severity = Severity.ERROR
    at_key: bool = False
    line: int | None = None


def show(value: Any) -> str:
    """A short, safe rendering of a user value for a message.

    A string that holds anything secret-shaped (:func:`reconciler.redaction.is_secret_shaped`)
    is left out entirely, so no part of it (not even a prefix cut at 57 characters) reaches a
    message.
    """
    if isinstance(value, str):
        if is_secret_shaped(value):
            return REDACTED
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)
