"""Everything about one manifest that needs neither keys nor other tenants' files:
parse, template merge, schema, domain rules, the credential scan (:func:`analyze_file`)."""

from __future__ import annotations

from typing import Any

from reconciler import sops
from reconciler.diagnostics import Severity
from reconciler.load import manifests as mf
from reconciler.load import rules
from reconciler.load.file_types import (
    FileJob,
    FileResult,
    Template,
    TemplateSet,
)
from reconciler.load.findings import Finding, show
from reconciler.load.manifest_model import config_model
from reconciler.load.platforms import rules_for
from reconciler.load.positions import locate_finding, yaml_diagnostic
from reconciler.load.pydantic_errors import describe, model_findings
from reconciler.model.enums import Platform
from reconciler.sops.codec import ENC_MARK
from reconciler.yaml_source import YamlError, parse_document


def analyze_file(job: FileJob, templates: TemplateSet) -> FileResult:
    """Everything about one manifest that needs neither keys nor other tenants' files.

    Pure: reads nothing, writes nothing; inputs and outputs are picklable.
    """
    try:
        doc = parse_document(job.data)
    except YamlError as exc:
        return FileResult(job.rel, job.display, (yaml_diagnostic(exc, job.display),))
    own = (job.display, job.data, doc)
    if not isinstance(doc, dict):
        finding = Finding(
            "RCN-S001",
            "a manifest is a mapping starting with apiVersion: reconciler/v1 "
            f"(found {describe(doc)})",
        )
        return FileResult(job.rel, job.display, (locate_finding(finding, own, ()),))

    findings, platform = _envelope(doc, job)
    chain: list[Template] = []
    usable = True
    name = doc.get("template")
    if isinstance(name, str):
        names, code, problem = templates.chain(name)
        chain = [templates.templates[n] for n in names]
        if code is not None and problem is not None:
            findings.append(Finding(code, problem, ("template",)))
            usable = False
        for template in chain:
            if template.doc is None:
                usable = False  # its own diagnostics say why
            elif template.platform not in (None, platform.value):
                findings.append(
                    Finding(
                        "RCN-TPL-3",
                        f"template {template.name!r} is for {template.platform}, this file is "
                        f"{platform.value}",
                        ("template",),
                    )
                )
                usable = False
    merged = mf.merge_environments(doc, [t.doc for t in chain if usable])
    config = None
    if usable:
        config, problems = model_findings(config_model(platform), merged, [("platform",)])
        findings += problems
        findings += rules.check_document(merged, platform)
    secrets: list[tuple[tuple[str | int, ...], str | None]] = []
    for path in rules.secret_paths(merged):
        provider = (
            None
            if mf.has_path(doc, path)
            else next((t.name for t in chain if mf.has_path(t.doc, path)), None)
        )
        secrets.append((path, provider))
    findings += rules.scan_credentials(doc, job.data.decode("utf-8", "replace"))
    placed: list[tuple[Finding, str | None]] = [(f, None) for f in findings]
    for holder, name in [*((t.doc, t.name) for t in chain), (doc, None)]:
        unsigned = unauthenticated(holder)
        if unsigned is not None:
            placed.append((unsigned, name))
    diagnostics = tuple(locate_finding(f, own, chain, provider) for f, provider in placed)
    return FileResult(
        job.rel,
        job.display,
        diagnostics,
        config if not any(d.severity is Severity.ERROR for d in diagnostics) else None,
        doc,
        tuple(t.name for t in chain),
        tuple(secrets),
        tuple(rules_for(platform).app_endpoints(list(rules.environments(merged)))),
    )


def first_encrypted(doc: Any) -> tuple[str | int, ...] | None:
    """The path of the first ``ENC[`` string of a document (its ``sops`` block left out)."""
    try:
        found = _first_encrypted(doc, True)
    except RecursionError:  # deeper than the recursive walk goes: the same walk, iterative
        return _first_encrypted_iterative(doc)
    return None if found is None else tuple(reversed(found))


def _first_encrypted(node: Any, top: bool) -> list[str | int] | None:
    """Depth-first in document order; the path comes back reversed (appended on return),
    so nothing is allocated for the subtrees that hold no ``ENC[`` string."""
    if isinstance(node, dict):
        for key, value in node.items():
            if type(value) is str:
                if value.startswith(ENC_MARK) and not (top and key == "sops"):
                    return [key]
            elif not (top and key == "sops"):
                found = _first_encrypted(value, False)
                if found is not None:
                    found.append(key)
                    return found
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found = _first_encrypted(value, False)
            if found is not None:
                found.append(index)
                return found
    elif isinstance(node, str) and node.startswith(ENC_MARK):
        return []
    return None


def _first_encrypted_iterative(doc: Any) -> tuple[str | int, ...] | None:
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(doc, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            if node.startswith(ENC_MARK):
                return path
        elif isinstance(node, dict):
            items = [(v, (*path, k)) for k, v in node.items() if path or k != "sops"]
            stack.extend(reversed(items))
        elif isinstance(node, list):
            stack.extend(reversed([(v, (*path, i)) for i, v in enumerate(node)]))
    return None


def unauthenticated(doc: Any) -> Finding | None:
    """RCN-SOPS-1 when a document holds ``ENC[`` values that no sops MAC can authenticate.

    Without a ``sops`` block, or with one whose ``mac`` (or ``version``) is empty, there is
    nothing to decrypt the values with or to verify them against; sops refuses such a file
    ("sops metadata not found", "MAC mismatch. File has no MAC"), and so does this loader,
    before any key is needed.
    """
    first = first_encrypted(doc)
    if first is None or sops.is_encrypted(doc):
        return None
    block = doc.get("sops") if isinstance(doc, dict) else None
    if block is None:
        return Finding(
            "RCN-SOPS-1",
            "ENC[...] value in a file without sops metadata: the file was not written "
            "by sops (or its sops block was removed); re-encrypt it with sops",
            first,
        )
    where: tuple[str | int, ...] = (
        ("sops", "mac") if isinstance(block, dict) and "mac" in block else ("sops",)
    )
    return Finding(
        "RCN-SOPS-1",
        "ENC[...] values but the sops metadata has no MAC (sops.mac or sops.version is empty "
        "or missing), so nothing authenticates them; sops refuses the file too: encrypt it "
        "again with sops",
        where,
        at_key=where == ("sops",),
    )


def _envelope(doc: dict[str, Any], job: FileJob) -> tuple[list[Finding], Platform]:
    """Path agreement: ``tenant`` and ``platform`` must match where the file lives."""
    findings: list[Finding] = []
    platform = job.platform
    declared = doc.get("platform")
    if isinstance(declared, str) and declared in Platform.__members__:
        platform = Platform(declared)
        if platform is not job.platform:
            findings.append(
                Finding(
                    "RCN-F003",
                    f"platform is {declared} but the file is {job.platform.file_stem}.yaml; "
                    f"move it to {platform.file_stem}.yaml or fix platform",
                    ("platform",),
                )
            )
    elif "platform" in doc:
        guess = str(declared).upper() if str(declared).upper() in Platform.__members__ else None
        hint = f"; did you mean {guess!r}?" if guess else ""
        findings.append(
            Finding(
                "RCN-S004",
                f"platform {show(declared)} is not allowed; use STRIPE, HUBSPOT or "
                f"QUICKBOOKS{hint}",
                ("platform",),
            )
        )
    else:
        findings.append(Finding("RCN-S003", "required field 'platform' is missing", ("platform",)))
    tenant = doc.get("tenant")
    if isinstance(tenant, str) and tenant != job.tenant:
        findings.append(
            Finding(
                "RCN-F002",
                f"tenant is {tenant!r} but the file is in tenants/{job.tenant}/; the directory "
                "name and the tenant field must agree",
                ("tenant",),
            )
        )
    return findings, platform
