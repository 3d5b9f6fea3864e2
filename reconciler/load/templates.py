"""Template files: parsed and checked once per run, then merged under the manifests that
name them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.diagnostics import Diagnostic
from reconciler.load import rules
from reconciler.load.file_types import Template
from reconciler.load.findings import Finding
from reconciler.load.manifest_model import PlatformTemplate
from reconciler.load.positions import locate_finding, yaml_diagnostic
from reconciler.load.pydantic_errors import model_findings
from reconciler.yaml_source import YamlError, parse_document


def load_template(name: str, rel: str, display: str, data: bytes) -> Template:
    """Parse and check one template file (its envelope; environments are checked merged)."""
    try:
        doc = parse_document(data)
    except YamlError as exc:
        return Template(
            name, rel, display, data, None, None, None, (yaml_diagnostic(exc, display),)
        )
    findings: list[Finding] = []
    if not isinstance(doc, dict):
        findings.append(Finding("RCN-S001", "a template is a mapping (kind: PlatformTemplate)"))
        return Template(
            name, rel, display, data, None, None, None, place_findings(findings, display, data, doc)
        )
    _, findings = model_findings(PlatformTemplate, doc)
    findings += rules.scan_credentials(doc, data.decode("utf-8", "replace"))
    platform = doc.get("platform") if isinstance(doc.get("platform"), str) else None
    parent = doc.get("template") if isinstance(doc.get("template"), str) else None
    diagnostics = place_findings(findings, display, data, doc)
    return Template(name, rel, display, data, doc, platform, parent, diagnostics)


def place_findings(
    findings: Sequence[Finding], display: str, data: bytes, doc: Any
) -> tuple[Diagnostic, ...]:
    return tuple(locate_finding(f, (display, data, doc), ()) for f in findings)
