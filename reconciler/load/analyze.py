"""Everything about one manifest that needs neither keys nor other tenants' files:
parse, template merge, schema, domain rules, the credential scan (:func:`analyze_file`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from reconciler import sops
from reconciler.diagnostics import Severity
from reconciler.load import manifests as mf
from reconciler.load import rules
from reconciler.load.file_types import (
    AppEndpoint,
    FileJob,
    FileResult,
    Template,
    TemplateSet,
)
from reconciler.load.manifest_model import config_model
from reconciler.load.positions import locate_finding, yaml_diagnostic
from reconciler.load.pydantic_errors import describe, model_findings
from reconciler.load.rules import Finding, show
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
        tuple(_app_endpoints(merged, platform)),
    )


def first_encrypted(doc: Any) -> tuple[str | int, ...] | None:
    """The path of the first ``ENC[`` string of a document (its ``sops`` block left out)."""
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


def _app_endpoints(merged: dict[str, Any], platform: Platform) -> Iterable[AppEndpoint]:
    """Inbound endpoints that belong to an app rather than a tenant (RCN-WH-10).

    See ``docs/domain-rules.md``: HubSpot and Intuit deliver to one URL per app.
    """
    if platform is Platform.STRIPE:
        return
    # Runs on documents that may have failed the schema: every section is shape-checked
    # (a list or scalar where a mapping belongs is the schema's diagnostic, not a crash).
    for env_name, env in rules.environments(merged):
        apps: set[str] = set()
        accounts = env.get("oauth_accounts")
        if platform is Platform.HUBSPOT and isinstance(accounts, list):
            for acct in accounts:
                if isinstance(acct, dict) and type(acct.get("app_id")) is int:
                    apps.add(str(acct["app_id"]))
        hooks = env.get("webhooks")
        for name, hook in hooks.items() if isinstance(hooks, dict) else ():
            if not isinstance(hook, dict) or hook.get("type") != "INBOUND":
                continue
            url = hook.get("endpoint_url")
            # A list, not a set: app_id may be any YAML value here, hashable or not.
            hook_apps = apps if platform is Platform.HUBSPOT else [hook.get("app_id")]
            for app in hook_apps:
                if isinstance(app, str) and isinstance(url, str):
                    path = ("environments", env_name, "webhooks", name, "endpoint_url")
                    yield AppEndpoint(platform, app, env_name, url, path)
