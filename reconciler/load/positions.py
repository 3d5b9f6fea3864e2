"""Where a finding is: the file, line and column of the source (the manifest or one of
its templates) that holds the path the finding concerns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.diagnostics import Diagnostic
from reconciler.load import manifests as mf
from reconciler.load.file_types import Template
from reconciler.load.findings import Finding
from reconciler.yaml_source import YamlError, format_path, locate


def yaml_diagnostic(exc: YamlError, display: str) -> Diagnostic:
    text = exc.message
    if "duplicate key" in text:
        code = "RCN-Y002"
    elif "alias" in text or "expands" in text:
        code = "RCN-Y003"
    elif "limit is" in text:
        code = "RCN-Y004"
    else:
        code = "RCN-Y001"
    return Diagnostic(code, text, display, exc.line or 1, exc.column or 1)


def _depth(doc: Any, path: Sequence[str | int]) -> int:
    node, depth = doc, 0
    for element in path:
        if mf.has_child(node, element):
            node = node[element]
        else:
            break
        depth += 1
    return depth


def locate_finding(
    finding: Finding,
    own: tuple[str, bytes, Any],
    chain: Sequence[Template],
    provider: str | None = None,
) -> Diagnostic:
    """Give a finding its file, line and column: the source that holds the deepest part of
    its path (the file wins ties), or the named ``provider``."""
    display, data, doc = own
    if finding.line is None and provider is None:
        best = _depth(doc, finding.path)
        for template in chain:
            depth = _depth(template.doc, finding.path)
            if depth > best:
                best, provider = depth, template.name
    if provider is not None:
        source = next(t for t in chain if t.name == provider)
        display, data = source.display, source.data
    if finding.line is not None:
        line, column = finding.line, 1
    else:
        path, at_key = finding.path, finding.at_key
        source_doc = doc if provider is None else next(t.doc for t in chain if t.name == provider)
        depth = _depth(source_doc, path)
        if depth < len(path):  # a missing field: point at the key of the object it belongs in
            path, at_key = path[:depth], True
        position = locate(data, path, key=at_key) if path else (1, 1)
        line, column = position or (1, 1)
    return Diagnostic(
        finding.code,
        finding.message,
        display,
        line,
        column,
        format_path(finding.path),
        finding.severity,
    )
