"""Diagnostics of ``reconciler validate`` as text, JSON or GitHub workflow commands.

All three formats render the same :class:`DiagnosticsReport`, so none can say more than
another. Messages never contain secrets: the rules that produce them make sure of it, and
every renderer (and the CLI's error output) passes each diagnostic through
:func:`safe_diagnostic` as a last line of defence.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

from reconciler.diagnostics import Diagnostic, Severity
from reconciler.diagnostics import DiagnosticsReport as DiagnosticsReport  # rendered here
from reconciler.redaction import redact

FORMAT_VERSION = 1
KEY_HINT = "set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY (or ~/.config/sops/age/keys.txt)"

_DATA_ESCAPES = (("%", "%25"), ("\r", "%0D"), ("\n", "%0A"))
_PROPERTY_ESCAPES = (*_DATA_ESCAPES, (":", "%3A"), (",", "%2C"))


def safe_diagnostic(diagnostic: Diagnostic) -> Diagnostic:
    """``diagnostic`` with secret-shaped text cut out of the parts that quote user input: the
    message and the field path (made of the file's keys); see :mod:`reconciler.redaction`.

    The file name is left whole: it is where the problem is (annotations need it), discovery
    found it on disk rather than in a file's text, and tenant ids may well look like UUIDs.
    """
    return dataclasses.replace(
        diagnostic, message=redact(diagnostic.message), path=redact(diagnostic.path)
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary_line(report: DiagnosticsReport) -> str:
    """``3 errors, 1 warning in 2 of 18 files`` or ``18 files valid``."""
    problems = [d for d in report.diagnostics if d.severity in (Severity.ERROR, Severity.WARNING)]
    if not problems:
        return f"{_plural(report.files, 'file')} valid"
    parts = []
    if report.errors:
        parts.append(_plural(report.errors, "error"))
    if report.warnings:
        parts.append(_plural(report.warnings, "warning"))
    affected = len({d.file for d in problems})
    where = f"in {affected} of {_plural(report.files, 'file')}"
    if report.valid:
        return f"{_plural(report.files, 'file')} valid; {', '.join(parts)} {where}"
    return f"{', '.join(parts)} {where}"


def skipped_note(report: DiagnosticsReport) -> str | None:
    """One line saying what was not checked for want of a key, or ``None``."""
    if not report.skipped_decryption:
        return None
    return (
        f"note: secrets of {_plural(len(report.skipped_decryption), 'file')} were not decrypted "
        "(no age key); key-dependent rules (Stripe key mode, signing-secret shape) did not "
        f"run: {KEY_HINT}"
    )


def render_text(report: DiagnosticsReport) -> str:
    """One ``Diagnostic.format()`` line per diagnostic, the key note, then the summary."""
    lines = [safe_diagnostic(d).format() for d in report.diagnostics]
    note = skipped_note(report)
    if note:
        lines.append(note)
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"


def render_json(report: DiagnosticsReport) -> str:
    """The JSON document of ``--format json`` (``format_version`` 1)."""
    record = {
        "format_version": FORMAT_VERSION,
        "valid": report.valid,
        "files": report.files,
        "errors": report.errors,
        "warnings": report.warnings,
        "skipped_decryption": list(report.skipped_decryption),
        "diagnostics": [safe_diagnostic(d).to_dict() for d in report.diagnostics],
    }
    return json.dumps(record, indent=2, ensure_ascii=False) + "\n"


def _escape(text: str, table: Sequence[tuple[str, str]]) -> str:
    for raw, escaped in table:
        text = text.replace(raw, escaped)
    return text


def github_annotation(diagnostic: Diagnostic) -> str:
    """``::error file=...,line=...,col=...,title=RULE::message`` for one diagnostic."""
    diagnostic = safe_diagnostic(diagnostic)
    level = {Severity.ERROR: "error", Severity.WARNING: "warning"}.get(
        diagnostic.severity, "notice"
    )
    props = []
    if diagnostic.file:
        props.append(f"file={_escape(diagnostic.file, _PROPERTY_ESCAPES)}")
    if diagnostic.line is not None:
        props.append(f"line={diagnostic.line}")
        if diagnostic.column is not None:
            props.append(f"col={diagnostic.column}")
    props.append(f"title={_escape(diagnostic.code, _PROPERTY_ESCAPES)}")
    where = f"{diagnostic.path}: " if diagnostic.path else ""
    return f"::{level} {','.join(props)}::{_escape(where + diagnostic.message, _DATA_ESCAPES)}"


def render_github(report: DiagnosticsReport) -> str:
    """GitHub Actions workflow commands: one annotation per diagnostic, then the summary."""
    lines = [github_annotation(d) for d in report.diagnostics]
    note = skipped_note(report)
    if note:
        lines.append(f"::notice title=reconciler validate::{_escape(note, _DATA_ESCAPES)}")
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"


RENDERERS = {"text": render_text, "json": render_json, "github": render_github}
"""Renderer by ``--format`` name."""
