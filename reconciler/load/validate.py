"""The loading stage's entry point: manifest files in, :class:`LoadResult` out.

:func:`load_desired_state` runs, for the selected files:

1. discovery on paths only (selectors never open unselected tenants' files);
2. per file, :func:`analyze_file`, a pure function of picklable inputs and outputs (so it
   can be spread over a process pool): strict YAML parse without positions, template
   merge, one pydantic validation, the domain rules, the credential scan; positions are
   looked up (``yaml_source.locate``) only for files that have something to report;
3. per chunk of files: SOPS decryption (when a key is available) of every file and template
   with ``ENC[`` values, MAC verified; the check that each secret decrypted to text; the
   rules that need plaintext, and the chunk's part of the :class:`DesiredState`;
4. in the calling process: the cross-file rule for app-level webhooks, the digest, and the
   merged state.

Large runs (:data:`PARALLEL_MIN_FILES` and more) split the files into contiguous chunks, one
per worker process (``RECONCILER_WORKERS``, default: the CPU count), forked from the calling
process so that keys and templates are inherited rather than sent; only each chunk's
result travels back. Parsing and decryption dominate the cost, and both parallelise.

User mistakes become diagnostics, all of them, for every file; only bugs raise.
"""

from __future__ import annotations

import difflib
import hashlib
import multiprocessing
import os
import re
import threading
import types
import typing
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from reconciler import sops
from reconciler.diagnostics import Diagnostic, Diagnostics, DiagnosticsReport, Severity
from reconciler.errors import ConfigError, DecryptFailed, KeyUnavailable
from reconciler.gcpause import gc_paused
from reconciler.load import manifests as mf
from reconciler.load import rules
from reconciler.load.cache import (
    CachedFile,
    LoadCache,
    decode_state,
    encode_state,
    entry_key,
    templates_digest,
)
from reconciler.load.rules import Finding, show
from reconciler.load.schema import (
    RUNTIME_OWNED_FIELDS,
    SECRET_FIELDS,
    HubSpotConfig,
    PlatformConfig,
    PlatformTemplate,
    StripeConfig,
    config_model,
)
from reconciler.model.desired import (
    DesiredIntegration,
    DesiredOAuthAccount,
    DesiredState,
    DesiredWebhook,
    RetryPolicy,
    SecretValue,
    Source,
)
from reconciler.model.enums import ConfigType, Environment, Platform
from reconciler.model.plan import Selectors
from reconciler.model.sensitive import Sensitive
from reconciler.progress import Stage
from reconciler.sops.codec import ENC_MARK
from reconciler.yaml_source import YamlError, format_path, locate, parse_document

Fingerprint = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What loading the manifests produced.

    Attributes:
        state: the desired state, or ``None`` when any error was found (warnings allowed).
        diagnostics: every problem in every selected file (and the templates they use).
        files: number of files checked: the selected manifests and the templates they use.
        skipped_decryption: files whose secrets were not decrypted (no key available, or
            ``decrypt=False``): key-dependent rules did not run on them.
        manifests_digest: SHA-256 over the selected files and the templates they use
            (relative path + bytes, path-sorted; see ``manifests.digest``). Also set on
            ``state.manifests_digest``.
    """

    state: DesiredState | None
    diagnostics: Diagnostics
    files: int
    skipped_decryption: tuple[str, ...]
    manifests_digest: str

    def ok(self, *, strict: bool = False) -> bool:
        """True when the run passes (no errors; no warnings either under ``strict``)."""
        return not self.diagnostics.has_errors(strict=strict)


# --------------------------------------------------------------------------- per-file types


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template file. ``doc`` is ``None`` when the file itself is broken."""

    name: str
    rel: str
    display: str
    data: bytes
    doc: dict[str, Any] | None
    platform: str | None
    parent: str | None
    diagnostics: tuple[Diagnostic, ...]


@dataclass(frozen=True, slots=True)
class TemplateSet:
    """Every template under the root, by name (read once per run, shared by all files)."""

    templates: Mapping[str, Template]

    def chain(self, name: str) -> tuple[list[str], str | None, str | None]:
        """``(chain, rule id, message)`` for a template name; rule id ``None`` when fine."""
        parents = {n: t.parent for n, t in self.templates.items()}
        chain, problem = mf.resolve_chain(name, parents, self.templates)
        if problem is None:
            return chain, None, None
        return chain, ("RCN-TPL-2" if "cyclic" in problem else "RCN-TPL-1"), problem


@dataclass(frozen=True, slots=True)
class FileJob:
    """Input of :func:`analyze_file`: one tenant manifest, already read."""

    rel: str
    display: str
    data: bytes
    tenant: str
    platform: Platform


@dataclass(frozen=True, slots=True)
class AppEndpoint:
    """An inbound endpoint of an app-level webhook (HubSpot app / Intuit app)."""

    platform: Platform
    app_id: str
    environment: str
    endpoint_url: str
    path: tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class FileResult:
    """Output of :func:`analyze_file`.

    Attributes:
        config: the validated (still encrypted) manifest, ``None`` if it did not validate.
        document: the file's own parsed document (input to decryption), ``None`` if unreadable.
        chain: templates merged under the file, nearest first.
        secrets: ``(path, provider)`` of each secret field; provider is the template name
            that supplies it, ``None`` for the file itself.
        endpoints: app-level inbound endpoints for the cross-file rule.
    """

    rel: str
    display: str
    diagnostics: tuple[Diagnostic, ...]
    config: PlatformConfig | None = None
    document: Any = None
    chain: tuple[str, ...] = ()
    secrets: tuple[tuple[tuple[str | int, ...], str | None], ...] = ()
    endpoints: tuple[AppEndpoint, ...] = ()


# --------------------------------------------------------------------------- pydantic errors

_TYPE_WORDS = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "int_parsing": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
}
_BOUND_WORDS = {
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "above"),
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "below"),
}
_NAME_HINT = "use lower-case letters, digits and dashes, starting with a letter or digit (1-63)"
_FIELD_RULES: dict[str, tuple[str, str]] = {
    "interval_minutes": ("RCN-SYNC-1", "must be a whole number of minutes from 1 to 10080"),
    "max_attempts": ("RCN-WH-8", "must be a whole number from 1 to 25"),
    "initial_delay_seconds": ("RCN-WH-8", "must be a whole number of seconds from 1 to 300"),
    "multiplier": ("RCN-WH-8", "must be a number from 1.5 to 10"),
    "max_delay_seconds": ("RCN-WH-8", "must be a whole number of seconds from 1 to 21600 (6 h)"),
    "failure_threshold": ("RCN-WH-9", "must be a whole number from 1 to 100"),
    "reset_after_seconds": ("RCN-WH-9", "must be a whole number of seconds from 10 to 3600"),
    "stripe_account_id": (
        "RCN-ID-1",
        "must be a Stripe account id: acct_ and 8-32 letters or digits (acct_1Nv0FGQ9RKHgCVdK)",
    ),
    "portal_id": ("RCN-ID-2", "must be a HubSpot portal id: a positive number, unquoted"),
    "user_id": ("RCN-ID-2", "must be a HubSpot user id: a positive number, unquoted"),
    "realm_id": (
        "RCN-ID-3",
        'must be a QuickBooks realm id: 1-20 digits in quotes ("9130347596263942"), so it '
        "stays text",
    ),
    "tenant": ("RCN-S007", f"is not a valid tenant name: {_NAME_HINT}"),
    "template": ("RCN-S007", f"is not a valid template name: {_NAME_HINT}"),
}
_QUOTED = re.compile(r"'([^']*)'")


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _model_at(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at ``loc`` (for "did you mean")."""
    current: Any = model
    for element in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = {(f.alias or n): f for n, f in current.model_fields.items()}
            if element not in fields:
                return None
            current = fields[element].annotation
        elif typing.get_origin(current) in (dict, list):
            current = typing.get_args(current)[-1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _extra_field(model: type[BaseModel], loc: tuple[str | int, ...]) -> Finding:
    key = str(loc[-1])
    if key in RUNTIME_OWNED_FIELDS:
        return Finding(
            "RCN-S006",
            f"{key} is owned by the runtime (observed state: health, sync times, counters, "
            "tokens); manifests declare desired state only, remove it",
            loc,
            at_key=True,
        )
    parent = _model_at(model, loc[:-1])
    allowed = sorted((f.alias or n) for n, f in parent.model_fields.items()) if parent else []
    if loc[:-1] == ("environments",):
        what = f"unknown environment {key!r}; use production, sandbox, staging or development"
    elif len(loc) == 4 and loc[2] == "integrations":
        what = f"unknown config type {key!r}; use API_KEY, WEBHOOK, OAUTH or SETTINGS"
    elif key in SECRET_FIELDS:
        what = f"{key} is not a field of this object"
    else:
        what = f"unknown field {key!r}"
    guess = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if guess:
        what += f"; did you mean {guess[0]!r}?"
    elif allowed and "environment" not in what and "config type" not in what:
        what += f" (allowed: {', '.join(allowed)})"
    return Finding("RCN-S002", what, loc, at_key=True)


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if value is None:
        return "nothing (null)"
    if isinstance(value, datetime | date):
        return "a timestamp"
    if isinstance(value, str):
        return f"the text {show(value)}"
    if isinstance(value, int | float):
        return f"the number {value}"
    return show(value)


def translate_error(model: type[BaseModel], error: Mapping[str, Any]) -> Finding:
    """One pydantic error as a :class:`Finding` with a rule id and a human message."""
    loc: tuple[str | int, ...] = tuple(error["loc"])
    kind: str = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    if loc and loc[-1] == "[key]":
        return Finding(
            "RCN-S007", f"{show(loc[-2])} is not a valid name: {_NAME_HINT}", loc[:-1], at_key=True
        )
    field = next((str(e) for e in reversed(loc) if isinstance(e, str)), "")
    if kind == "extra_forbidden":
        return _extra_field(model, loc)
    if kind == "missing":
        return Finding("RCN-S003", f"required field {field!r} is missing", loc)
    if field in SECRET_FIELDS:
        # Never echo the value: it is (or may be) a plaintext secret.
        return Finding(
            "RCN-SEC-1",
            f"{field} is not SOPS-encrypted; secrets must be ENC[...] values: run "
            "`sops encrypt --in-place FILE` (the value is not shown)",
            loc,
        )
    if field in _FIELD_RULES and not (field == "app_id" and "oauth_accounts" not in loc):
        code, text = _FIELD_RULES[field]
        return Finding(code, f"{field} {text} (got {_describe(value)})", loc)
    if field == "app_id" and "oauth_accounts" in loc:
        return Finding(
            "RCN-ID-2",
            "app_id must be a HubSpot app id: a positive number, unquoted "
            f"(got {_describe(value)})",
            loc,
        )
    if kind in _TYPE_WORDS:
        return Finding("RCN-S001", f"expected {_TYPE_WORDS[kind]}, got {_describe(value)}", loc)
    if kind in ("enum", "literal_error"):
        options = _QUOTED.findall(str(ctx.get("expected", "")))
        text = f"{show(value)} is not allowed; use {' or '.join(repr(o) for o in options)}"
        guess = difflib.get_close_matches(str(value), options, n=1, cutoff=0.5)
        if isinstance(value, str) and value.upper() in options:
            guess = [value.upper()]
        if guess and len(options) > 2:
            text += f"; did you mean {guess[0]!r}?"
        return Finding("RCN-S004", text, loc)
    if kind in _BOUND_WORDS:
        key, words = _BOUND_WORDS[kind]
        return Finding("RCN-S005", f"must be {words} {ctx.get(key)} (got {_describe(value)})", loc)
    message = str(error.get("msg", kind))
    return Finding("RCN-S005", message[0].lower() + message[1:], loc)


def _schema_findings(
    model: type[BaseModel], doc: Any, skip: Iterable[tuple[Any, ...]] = ()
) -> tuple[Any, list[Finding]]:
    skipped = set(skip)
    try:
        return model.model_validate(doc), []
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=True, include_input=True)
        return None, [translate_error(model, e) for e in errors if tuple(e["loc"]) not in skipped]


# --------------------------------------------------------------------------- positions


def _yaml_diagnostic(exc: YamlError, display: str) -> Diagnostic:
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


def _position(
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


# --------------------------------------------------------------------------- templates


def load_template(name: str, rel: str, display: str, data: bytes) -> Template:
    """Parse and check one template file (its envelope; environments are checked merged)."""
    try:
        doc = parse_document(data)
    except YamlError as exc:
        return Template(
            name, rel, display, data, None, None, None, (_yaml_diagnostic(exc, display),)
        )
    findings: list[Finding] = []
    if not isinstance(doc, dict):
        findings.append(Finding("RCN-S001", "a template is a mapping (kind: PlatformTemplate)"))
        return Template(
            name, rel, display, data, None, None, None, _place(findings, display, data, doc)
        )
    _, findings = _schema_findings(PlatformTemplate, doc)
    findings += rules.scan_credentials(doc, data.decode("utf-8", "replace"))
    platform = doc.get("platform") if isinstance(doc.get("platform"), str) else None
    parent = doc.get("template") if isinstance(doc.get("template"), str) else None
    diagnostics = _place(findings, display, data, doc)
    return Template(name, rel, display, data, doc, platform, parent, diagnostics)


def _place(
    findings: Sequence[Finding], display: str, data: bytes, doc: Any
) -> tuple[Diagnostic, ...]:
    return tuple(_position(f, (display, data, doc), ()) for f in findings)


# --------------------------------------------------------------------------- one file


def analyze_file(job: FileJob, templates: TemplateSet) -> FileResult:
    """Everything about one manifest that needs neither keys nor other tenants' files.

    Pure: reads nothing, writes nothing; inputs and outputs are picklable.
    """
    try:
        doc = parse_document(job.data)
    except YamlError as exc:
        return FileResult(job.rel, job.display, (_yaml_diagnostic(exc, job.display),))
    own = (job.display, job.data, doc)
    if not isinstance(doc, dict):
        finding = Finding(
            "RCN-S001",
            "a manifest is a mapping starting with apiVersion: reconciler/v1 "
            f"(found {_describe(doc)})",
        )
        return FileResult(job.rel, job.display, (_position(finding, own, ()),))

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
        config, schema = _schema_findings(config_model(platform), merged, [("platform",)])
        findings += schema
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
    diagnostics = tuple(_position(f, own, chain, provider) for f, provider in placed)
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


# --------------------------------------------------------------------------- the stage


PARALLEL_MIN_FILES = 1000
"""Below this many files a run stays in one process (a fork costs more than it saves)."""

WORKERS_ENV = "RECONCILER_WORKERS"


def _reduce_sensitive(value: Sensitive[Any]) -> tuple[Any, tuple[Any]]:
    return Sensitive, (value.reveal(),)


# Results of worker processes carry decrypted secrets back to the parent through the pool's
# pipe (memory only). Plain pickle still refuses Sensitive: only this pickler, used by
# multiprocessing between our own processes, may carry one.
ForkingPickler.register(Sensitive, _reduce_sensitive)


@dataclass(frozen=True, slots=True)
class _ChunkContext:
    """What every chunk needs; inherited by forked workers, never pickled."""

    root: Path
    prefix: str
    templates: TemplateSet
    identities: sops.Identities | None
    fingerprint: Fingerprint | None
    decrypt: bool
    chunks: tuple[tuple[mf.ManifestFile, ...], ...]
    cache: LoadCache | None
    templates_digest: bytes
    progress: Stage | None = None
    pid: int = 0  # the parent: only it reports progress (a worker's copy must not draw)


@dataclass(frozen=True, slots=True)
class _Chunk:
    """One chunk's share of a :class:`LoadResult` (picklable)."""

    diagnostics: tuple[Diagnostic, ...]
    used: frozenset[str]
    skipped: tuple[str, ...]
    hashes: tuple[tuple[str, bytes], ...]
    endpoints: tuple[tuple[AppEndpoint, str, str], ...]
    pieces: tuple[tuple[str, DesiredState], ...]
    """Each file's share of the state, by relative path (empty when the chunk had errors)."""
    cached: tuple[tuple[str, bytes, CachedFile], ...] = ()
    """New cache entries (rel, key, value) made by this chunk."""


_CONTEXT: _ChunkContext | None = None


@gc_paused
def load_desired_state(
    root: Path,
    *,
    selectors: Selectors | None = None,
    paths: Sequence[Path] | None = None,
    identities: sops.Identities | None = None,
    fingerprint: Fingerprint | None = None,
    decrypt: bool = True,
    workers: int | None = None,
    cache: LoadCache | None = None,
    progress: Stage | None = None,
) -> LoadResult:
    """Load, decrypt and validate the manifests under ``root``.

    Args:
        root: the manifests directory (holds ``tenants/`` and ``templates/``).
        selectors: tenant/platform selection, applied to paths before anything is read.
        paths: files or directories under ``root`` to load instead of all of it.
        identities: age identities (``reconciler.sops.Identities``); ``None`` loads them from
            the environment (``SOPS_AGE_KEY_FILE``, ``SOPS_AGE_KEY``, the default key file).
        fingerprint: keyed HMAC of a plaintext secret (hex); ``None`` leaves fingerprints
            unset (``validate`` needs none).
        decrypt: ``False`` skips decryption entirely (structure-only validation).
        workers: processes for large runs; default ``RECONCILER_WORKERS``, else the CPU
            count. ``1`` keeps everything in this process.
        cache: validated results of unchanged files (see :mod:`reconciler.load.cache`);
            used only with ``fingerprint``. Hits carry fingerprints, not plaintext.
        progress: told the number of manifests, then advanced per file loaded here and
            per chunk a worker finishes (``reconciler.progress.Stage``).

    Returns:
        The result; ``state`` is ``None`` when any error was found.
    """
    global _CONTEXT
    root = root.resolve()
    base = _display_base(root)
    prefix = _display(root, base).rstrip("/") + "/" if root != base else ""
    diagnostics = Diagnostics()
    found = mf.discover(root, paths=paths, selectors=selectors)
    for problem in found.problems:
        diagnostics.add(
            Diagnostic(problem.code, problem.message, _display(root / problem.rel, base))
        )

    templates = _load_templates(root, base)
    full_run = selectors is None and not paths
    used: set[str] = set(templates.templates) if full_run else set()
    for file in found.template_files:
        used.add(file.stem)

    if decrypt and identities is None:
        identities = sops.load_identities()  # once, before any fork
    manifests = tuple(found.manifests)
    if (
        fingerprint is None
        or not decrypt
        or any(t.diagnostics for t in templates.templates.values())
    ):
        cache = None  # only fully decrypted, clean results are worth keeping
    digest_of_templates = templates_digest({t.rel: t.data for t in templates.templates.values()})
    hits, hit_hashes, misses = _cache_hits(manifests, prefix, cache, digest_of_templates)
    if progress is not None:
        progress.set_total(len(manifests))
        progress.advance(len(hits))
    count = _worker_count(len(misses), workers)
    size = -(-len(misses) // count) if misses else 1
    chunks = tuple(misses[i : i + size] for i in range(0, len(misses), size))
    _CONTEXT = _ChunkContext(
        root,
        prefix,
        templates,
        identities,
        fingerprint,
        decrypt,
        chunks,
        cache,
        digest_of_templates,
        progress,
        os.getpid(),
    )
    try:
        if count > 1 and len(chunks) > 1:
            # This process loads the first chunk itself while workers load the others, so
            # only their results travel through a pipe.
            fork = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(len(chunks) - 1, mp_context=fork) as pool:
                others = pool.map(_load_chunk, range(1, len(chunks)))
                parts = [_load_chunk(0)]
                for index, part in enumerate(others, start=1):
                    parts.append(part)
                    if progress is not None:
                        progress.advance(len(chunks[index]))
        else:
            parts = [_load_chunk(i) for i in range(len(chunks))]
    finally:
        _CONTEXT = None

    hashes: list[tuple[str, bytes]] = list(hit_hashes)
    endpoints = [e for hit in hits.values() for e in _hit_endpoints(hit)]
    used.update(name for hit in hits.values() for name in hit.chain)
    skipped: list[str] = []
    if cache is not None:
        cache.put_all(item for part in parts for item in part.cached)
        if full_run:
            cache.keep_only({m.rel for m in manifests})  # files deleted since: forget them
        cache.save()
    for part in parts:
        diagnostics.extend(part.diagnostics)
        used |= part.used
        skipped.extend(part.skipped)
        hashes.extend(part.hashes)
        endpoints.extend(part.endpoints)
    for name in sorted(used):
        if name in templates.templates:
            diagnostics.extend(templates.templates[name].diagnostics)
    hashes += [
        (templates.templates[n].rel, _sha256(templates.templates[n].data))
        for n in used
        if n in templates.templates
    ]
    digest = mf.digest_of_hashes(hashes)
    _check_app_endpoints(endpoints, templates, root, prefix, diagnostics)

    unique = Diagnostics()
    unique.extend(dict.fromkeys(diagnostics.sorted()))
    state = None
    if unique.error_count == 0:
        pieces = {rel: piece for part in parts for rel, piece in part.pieces}
        pieces.update((rel, decode_state(hit)) for rel, hit in hits.items())
        present = _tenants_with_files(root, selectors)
        state = _merge_states([pieces.get(m.rel) for m in manifests], digest, present)
    files = len(manifests) + len(used & set(templates.templates))
    return LoadResult(state, unique, files, tuple(sorted(set(skipped))), digest)


def _worker_count(files: int, requested: int | None) -> int:
    """Processes to use: 1 for small runs and when threads exist (a fork is unsafe then)."""
    if requested is None:
        configured = os.environ.get(WORKERS_ENV, "").strip()
        if configured and not configured.isdigit():
            raise ConfigError(f"{WORKERS_ENV} must be a whole number, got {configured!r}")
        requested = int(configured) if configured else (os.cpu_count() or 1)
        if files < PARALLEL_MIN_FILES:
            return 1
    if threading.active_count() > 1 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(requested, files))


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _cache_hits(
    manifests: Sequence[mf.ManifestFile],
    prefix: str,
    cache: LoadCache | None,
    digest_of_templates: bytes,
) -> tuple[dict[str, CachedFile], list[tuple[str, bytes]], tuple[mf.ManifestFile, ...]]:
    """Split files into cache hits (with their hashes for the digest) and misses."""
    if cache is None:
        return {}, [], tuple(manifests)
    hits: dict[str, CachedFile] = {}
    hashes: list[tuple[str, bytes]] = []
    misses: list[mf.ManifestFile] = []
    for manifest in manifests:
        data = mf.read_file(manifest.path)
        hit = cache.get(manifest.rel, entry_key(prefix + manifest.rel, data, digest_of_templates))
        if hit is None:
            misses.append(manifest)
        else:
            hits[manifest.rel] = hit
            hashes.append((manifest.rel, _sha256(data)))
    return hits, hashes, tuple(misses)


def _load_chunk(index: int) -> _Chunk:
    """Analyze, decrypt and build the state of one chunk of files (in a worker or here)."""
    ctx = _CONTEXT
    assert ctx is not None, "load context not set"
    diagnostics = Diagnostics()
    results: list[FileResult] = []
    datas: dict[str, bytes] = {}
    used: set[str] = set()
    for manifest in ctx.chunks[index]:
        data = mf.read_file(manifest.path)
        datas[manifest.rel] = data
        job = FileJob(
            manifest.rel, ctx.prefix + manifest.rel, data, manifest.tenant, manifest.platform
        )
        result = analyze_file(job, ctx.templates)
        results.append(result)
        used.update(result.chain)
        diagnostics.extend(result.diagnostics)
        if ctx.progress is not None and ctx.pid == os.getpid():
            ctx.progress.advance(1)
    secrets, skipped = _decrypt(
        results, ctx.templates, used, ctx.identities, ctx.decrypt, diagnostics, datas
    )
    pieces: list[tuple[str, DesiredState]] = []
    cached: list[tuple[str, bytes, CachedFile]] = []
    if diagnostics.error_count == 0:
        noisy = {d.file for d in diagnostics}  # files with warnings are not cached
        for result in results:
            piece = _build_state([result], secrets, ctx.fingerprint, "")
            pieces.append((result.rel, piece))
            if ctx.cache is not None and result.display not in noisy and not skipped:
                key = entry_key(result.display, datas[result.rel], ctx.templates_digest)
                cached.append((result.rel, key, _cacheable(piece, result)))
    return _Chunk(
        diagnostics=tuple(diagnostics),
        used=frozenset(used),
        skipped=skipped,
        hashes=tuple((rel, _sha256(data)) for rel, data in datas.items()),
        endpoints=tuple((e, r.rel, r.display) for r in results for e in r.endpoints),
        pieces=tuple(pieces),
        cached=tuple(cached),
    )


def _cacheable(piece: DesiredState, result: FileResult) -> CachedFile:
    """The file's share of the state with every secret reduced to its fingerprint."""
    integrations, webhooks, accounts = encode_state(piece)
    tenant = next(iter(piece.tenants)) if piece.tenants else ""
    endpoints = tuple(
        (
            e.platform.value,
            e.app_id,
            e.environment,
            e.endpoint_url,
            e.path,
            result.rel,
            result.display,
        )
        for e in result.endpoints
    )
    return CachedFile(tenant, integrations, webhooks, accounts, endpoints, result.chain)


def _hit_endpoints(hit: CachedFile) -> list[tuple[AppEndpoint, str, str]]:
    return [
        (AppEndpoint(Platform(p), app, env, url, tuple(path)), rel, display)
        for p, app, env, url, path, rel, display in hit.endpoints
    ]


def _merge_states(
    states: Iterable[DesiredState | None], digest: str, tenants_with_files: frozenset[str]
) -> DesiredState:
    present = [s for s in states if s is not None]
    return DesiredState(
        integrations=tuple(i for s in present for i in s.integrations),
        webhooks=tuple(w for s in present for w in s.webhooks),
        oauth_accounts=tuple(a for s in present for a in s.oauth_accounts),
        tenants=frozenset(t for s in present for t in s.tenants) | tenants_with_files,
        manifests_digest=digest,
    )


def _tenants_with_files(root: Path, selectors: Selectors | None) -> frozenset[str]:
    """Selected tenants with a manifest file of any platform (directory listing, no reads).

    The mass-deletion breaker asks "did this tenant disappear?"; a run selected to one
    platform must not take a tenant that keeps its other platforms' files for a vanished one.
    Tenant selectors still apply: the state speaks only of the tenants the run covers.
    """
    tenants_dir = root / "tenants"
    if not tenants_dir.is_dir():
        return frozenset()
    found: set[str] = set()
    if selectors is not None and selectors.tenants:
        candidates = [tenants_dir / t for t in selectors.tenants if (tenants_dir / t).is_dir()]
    else:
        with os.scandir(tenants_dir) as entries:
            candidates = [Path(e.path) for e in entries if e.is_dir()]
    for directory in candidates:
        with os.scandir(directory) as files:
            if any(f.name.endswith(".yaml") and f.is_file() for f in files):
                found.add(directory.name)
    if selectors is not None:
        found = {
            t
            for t in found
            if (not selectors.tenants or t in selectors.tenants)
            and t not in selectors.exclude_tenants
        }
    return frozenset(found)


def _display_base(root: Path) -> Path:
    cwd = Path.cwd().resolve()
    return cwd if root == cwd or cwd in root.parents else root.parent


def _display(path: Path, base: Path) -> str:
    try:
        # The path itself is not resolved: it may be a link (or a looping one) being reported.
        return (path.parent.resolve() / path.name).relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _load_templates(root: Path, base: Path) -> TemplateSet:
    loaded: dict[str, Template] = {}
    for name in mf.list_templates(root):
        path = mf.template_path(root, name)
        rel = path.relative_to(root).as_posix()
        loaded[name] = load_template(name, rel, _display(path, base), mf.read_file(path))
    return TemplateSet(loaded)


# --------------------------------------------------------------------------- decryption

SecretKey = tuple[str, tuple[str | int, ...]]


_VALUE_TYPES = {bytes: "bytes", bool: "bool", int: "int", float: "float", datetime: "time"}
"""SOPS ``type:`` of a decrypted value, by Python type (for messages)."""


def secret_problem(value: object) -> str | None:
    """Why a decrypted secret field cannot be used, or ``None`` when it is a plaintext string.

    The last check before a value becomes a :class:`Sensitive` secret, whatever the path it
    came by: a SOPS ``type:`` other than ``str`` (``bytes`` would be stored as ``"b'...'"``,
    ``int`` loses leading zeros) or a string that is still an ``ENC[...]`` value (left in
    clear by the file's rule, or never decrypted) is refused. Never includes the value.
    """
    if not isinstance(value, str):
        kind = next((n for t, n in _VALUE_TYPES.items() if type(value) is t), "unknown")
        return (
            f"decrypts to SOPS type:{kind}, not text (type:str); a secret must be an encrypted "
            "string: write it quoted and encrypt it again (the value is not shown)"
        )
    if value.startswith(ENC_MARK):
        return (
            "is still an ENC[...] value after decryption: the file's sops rule leaves this "
            "field in clear, or the value was copied from another file; put the plaintext "
            "here and encrypt the file again"
        )
    return None


def _decrypt(
    results: Sequence[FileResult],
    templates: TemplateSet,
    used: set[str],
    identities: sops.Identities | None,
    decrypt: bool,
    diagnostics: Diagnostics,
    datas: Mapping[str, bytes],
) -> tuple[dict[SecretKey, str], tuple[str, ...]]:
    """Decrypt and verify the files that hold encrypted values; run key-dependent rules.

    Every file (and template) with ``ENC[`` values is decrypted and its MAC verified, whether
    or not a secret is read from it. Returns plaintexts by ``(file rel, path)`` and the files
    skipped for want of a key (or because ``decrypt`` is off).
    """
    if decrypt and identities is None:
        identities = sops.load_identities()
    keyless = identities is None or not decrypt or not len(identities)
    plain_docs: dict[str | None, Any] = {}
    skipped: list[str] = []
    failed: set[str] = set()

    def decrypted(
        owner: str, display: str, doc: Any, data: bytes, chain: Sequence[Template]
    ) -> Any:
        if owner in plain_docs:
            return plain_docs[owner]
        if owner in failed:
            return None
        if first_encrypted(doc) is None:  # nothing encrypted: used as it is
            plain_docs[owner] = doc
            return doc
        if keyless or identities is None:
            skipped.append(display)
            failed.add(owner)
            return None
        path: tuple[str | int, ...] = ("sops",)
        try:
            plain_docs[owner] = sops.decrypt_documents([doc], identities, source=display)[0]
            return plain_docs[owner]
        except KeyUnavailable as exc:
            code, message = "RCN-SOPS-2", f"cannot decrypt: {exc}"
        except sops.ValueRejected as exc:
            code, message, path = "RCN-SOPS-3", f"decryption failed: {exc.problem}", exc.location
        except DecryptFailed as exc:
            code, message = "RCN-SOPS-3", f"decryption failed: {exc}"
        failed.add(owner)
        finding = Finding(code, message, path, at_key=path == ("sops",))
        diagnostics.add(_position(finding, (display, data, doc), chain))
        return None

    secrets: dict[SecretKey, str] = {}
    for result in results:
        if result.config is None:
            continue
        chain = [templates.templates[n] for n in result.chain]
        own = decrypted(result.rel, result.display, result.document, datas[result.rel], chain)
        for t in chain:
            if first_encrypted(t.doc) is not None:  # verified even when no secret is read
                decrypted("template:" + t.name, t.display, t.doc, t.data, [])
        env_check: list[tuple[Finding, str | None]] = []
        for path, provider in result.secrets:
            if provider is None:
                plain = own
            else:
                t = templates.templates[provider]
                plain = decrypted("template:" + provider, t.display, t.doc, t.data, [])
            if plain is None or not mf.has_path(plain, path):
                continue
            value = mf.get_path(plain, path)
            problem = secret_problem(value)
            if problem is not None:
                env_check.append((Finding("RCN-SOPS-3", f"{path[-1]} {problem}", path), provider))
                continue
            assert isinstance(value, str)
            secrets[(result.rel, path)] = value
            finding = rules.check_secret(
                Platform(result.config.platform), str(path[1]), str(path[-1]), value
            )
            if finding is not None:
                env_check.append(
                    (Finding(finding.code, f"{path[-1]} {finding.message}", path), provider)
                )
        own_source = (result.display, datas[result.rel], result.document)
        for finding, provider in env_check:
            diagnostics.add(_position(finding, own_source, chain, provider))
    return secrets, tuple(sorted(set(skipped)))


# --------------------------------------------------------------------------- cross-file


def _check_app_endpoints(
    endpoints: Sequence[tuple[AppEndpoint, str, str]],
    templates: TemplateSet,
    root: Path,
    prefix: str,
    diagnostics: Diagnostics,
) -> None:
    """RCN-WH-10: tenants sharing a HubSpot or Intuit app declare one inbound endpoint.

    ``endpoints`` are ``(endpoint, rel, display)``. Files are re-read only to place the
    diagnostics of the few that disagree.
    """
    groups: dict[tuple[Platform, str, str], list[tuple[AppEndpoint, str, str]]] = defaultdict(list)
    for item in endpoints:
        endpoint = item[0]
        groups[(endpoint.platform, endpoint.app_id, endpoint.environment)].append(item)
    for (platform, app, env_name), members in groups.items():
        counts = Counter(e.endpoint_url for e, _, _ in members)
        if len(counts) < 2:
            continue
        canonical = max(
            counts,
            key=lambda url: (
                counts[url],
                -min(i for i, (e, _, _) in enumerate(members) if e.endpoint_url == url),
            ),
        )
        witness = next(d for e, _, d in members if e.endpoint_url == canonical)
        kind = "HubSpot app" if platform is Platform.HUBSPOT else "Intuit app"
        for endpoint, rel, display in members:
            if endpoint.endpoint_url == canonical:
                continue
            finding = Finding(
                "RCN-WH-10",
                f"inbound {platform.value.title()} webhooks belong to the app, not the tenant: "
                f"{kind} {app} ({env_name}) delivers to {show(canonical)} as declared in "
                f"{witness}; every tenant of the app must declare the same endpoint_url",
                endpoint.path,
            )
            data = mf.read_file(root / rel)
            tenant = rel.removeprefix("tenants/").partition("/")[0]
            job = FileJob(rel, display, data, tenant, platform)
            result = analyze_file(job, templates)
            chain = [templates.templates[n] for n in result.chain]
            diagnostics.add(_position(finding, (display, data, result.document), chain))


# --------------------------------------------------------------------------- desired state


def _build_state(
    results: Sequence[FileResult],
    secrets: Mapping[SecretKey, str],
    fingerprint: Fingerprint | None,
    digest: str,
) -> DesiredState:
    integrations: list[DesiredIntegration] = []
    webhooks: list[DesiredWebhook] = []
    accounts: list[DesiredOAuthAccount] = []
    tenants: set[str] = set()

    for result in results:
        config = result.config
        if config is None:
            continue
        tenants.add(config.tenant)
        source = Source(result.display)
        platform = Platform(config.platform)

        def secret(
            path: tuple[str | int, ...], present: bool, rel: str = result.rel
        ) -> SecretValue | None:
            if not present:
                return None
            plain = secrets.get((rel, path))
            if plain is None:
                return SecretValue(None, None)
            return SecretValue(Sensitive(plain), fingerprint(plain) if fingerprint else None)

        for env_name in ("production", "sandbox", "staging", "development"):
            env = getattr(config.environments, env_name)
            if env is None:
                continue
            environment = Environment(env_name.upper())
            base = ("environments", env_name)
            for config_type in ConfigType:
                integ = getattr(env.integrations, config_type.value)
                if integ is None:
                    continue
                here = (*base, "integrations", config_type.value)
                integrations.append(
                    DesiredIntegration(
                        tenant_id=config.tenant,
                        platform=platform,
                        environment=environment,
                        config_type=config_type,
                        is_primary=integ.primary,
                        is_active=integ.active,
                        api_key=secret((*here, "api_key"), integ.api_key is not None),
                        api_secret=secret((*here, "api_secret"), integ.api_secret is not None),
                        sync_interval=integ.sync.interval_minutes if integ.sync else None,
                        sync_direction=integ.sync.direction if integ.sync else None,
                        features=integ.features,
                        mapping_rules=integ.mapping_rules,
                        filter_rules=integ.filter_rules,
                        transform_rules=integ.transform_rules,
                        source=source,
                    )
                )
            for name, hook in env.webhooks.items():
                here = (*base, "webhooks", name)
                webhooks.append(
                    DesiredWebhook(
                        tenant_id=config.tenant,
                        platform=platform,
                        environment=environment,
                        name=name,
                        webhook_type=hook.type,
                        endpoint_url=hook.endpoint_url,
                        auth_type=hook.auth_type,
                        signing_secret=secret(
                            (*here, "signing_secret"), hook.signing_secret is not None
                        ),
                        auth_token=secret((*here, "auth_token"), hook.auth_token is not None),
                        auth_password=secret(
                            (*here, "auth_password"), hook.auth_password is not None
                        ),
                        subscribed_events=tuple(hook.events),
                        retry=RetryPolicy(
                            hook.retry.max_attempts,
                            hook.retry.initial_delay_seconds,
                            hook.retry.multiplier,
                            hook.retry.max_delay_seconds,
                        ),
                        circuit_breaker_threshold=hook.circuit_breaker.failure_threshold,
                        circuit_breaker_reset_seconds=hook.circuit_breaker.reset_after_seconds,
                        is_active=hook.active,
                        source=source,
                    )
                )
            accounts.extend(_accounts(config, env.oauth_accounts, environment, source))
    return DesiredState(
        integrations=tuple(integrations),
        webhooks=tuple(webhooks),
        oauth_accounts=tuple(accounts),
        tenants=frozenset(tenants),
        manifests_digest=digest,
    )


def _accounts(
    config: PlatformConfig, declared: Sequence[Any], environment: Environment, source: Source
) -> Iterable[DesiredOAuthAccount]:
    for acct in declared:
        reason = acct.revoke.reason if acct.revoke else None
        platform, account_id, livemode, app_id, user_id = Platform.QUICKBOOKS, "", None, None, None
        if isinstance(config, StripeConfig):
            platform, account_id, livemode = Platform.STRIPE, acct.stripe_account_id, acct.livemode
        elif isinstance(config, HubSpotConfig):
            platform, account_id, app_id = Platform.HUBSPOT, str(acct.portal_id), str(acct.app_id)
            user_id = str(acct.user_id) if acct.user_id is not None else None
        else:
            account_id = acct.realm_id
        yield DesiredOAuthAccount(
            tenant_id=config.tenant,
            platform=platform,
            environment=environment,
            account_id=account_id,
            stripe_livemode=livemode,
            hubspot_app_id=app_id,
            hubspot_user_id=user_id,
            revoke_reason=reason,
            source=source,
        )


# --------------------------------------------------------------------------- validate command


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
