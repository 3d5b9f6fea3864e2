"""Domain rules: what a manifest must satisfy beyond its JSON Schema.

Every rule has a stable id (``RCN-...``); :data:`RULES` is the table users see in the README.
Rules run on the raw merged document (plain dicts) rather than on the pydantic model, so a
file with a schema error still gets every domain finding in the same run; each rule checks
the shape it needs and stays silent on shapes the schema already reports.

Rules that need a decrypted secret (key mode, key prefixes) are in :func:`check_secret`
and run only when the file could be decrypted.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from reconciler.diagnostics import Severity
from reconciler.load.findings import FieldPath, Finding, show
from reconciler.load.manifest_model import SECRET_FIELDS
from reconciler.load.platforms import rules_for
from reconciler.model.enums import Platform
from reconciler.model.fields import (
    API_KEY,
    AUTH_PASSWORD,
    AUTH_TOKEN,
    AUTH_TYPE,
    ENDPOINT_URL,
    INTEGRATION_FIELDS,
    SIGNING_SECRET,
    Kind,
)

RULES: dict[str, str] = {
    "RCN-Y001": "YAML syntax error, not UTF-8, or more than one document",
    "RCN-Y002": "duplicate mapping key",
    "RCN-Y003": "alias expansion too large or recursive (alias bomb)",
    "RCN-Y004": "file larger than 1 MiB",
    "RCN-F001": "file in manifests/tenants/ that is not <tenant>/<platform>.yaml",
    "RCN-F002": "tenant field does not match the directory name",
    "RCN-F003": "platform field does not match the file name",
    "RCN-F004": "path given on the command line is not a manifest",
    "RCN-F005": "not a regular file: symbolic link, FIFO, socket or device (never read)",
    "RCN-S001": "wrong type",
    "RCN-S002": "unknown field",
    "RCN-S003": "required field missing",
    "RCN-S004": "value not allowed (enum, apiVersion, kind)",
    "RCN-S005": "value out of range or malformed",
    "RCN-S006": "field owned by the runtime (health, timestamps, counters, tokens)",
    "RCN-S007": "invalid name (tenant, template, webhook): ^[a-z0-9][a-z0-9-]{0,62}$",
    "RCN-S008": "free-form value is not JSON (timestamp, NaN, infinity)",
    "RCN-TPL-1": "template not found",
    "RCN-TPL-2": "template chain is cyclic",
    "RCN-TPL-3": "template is for another platform",
    "RCN-SEC-1": "secret field is not SOPS-encrypted",
    "RCN-SEC-2": "plaintext live credential anywhere in a file (values, keys, comments)",
    "RCN-SOPS-1": "encrypted values but no sops metadata",
    "RCN-SOPS-2": "none of the available age keys can decrypt the file",
    "RCN-SOPS-3": "decryption or MAC verification failed",
    "RCN-ENV-1": "Stripe key mode does not match the environment (live key outside production, "
    "test key in production)",
    "RCN-ENV-2": "Stripe publishable key (pk_) used as a secret",
    "RCN-ENV-3": "Stripe account livemode does not match the environment",
    "RCN-ENV-6": "HubSpot production reuses a sandbox portal id",
    "RCN-ID-1": "Stripe account id is not acct_ + 8-32 letters/digits",
    "RCN-ID-2": "HubSpot portal/app/user id is not a positive integer",
    "RCN-ID-3": "QuickBooks realm id is not a string of 1-20 digits",
    "RCN-INT-1": "more than one primary integration in an environment",
    "RCN-INT-2": f"API_KEY integration without {API_KEY.manifest}",
    "RCN-OA-1": "OAuth account declared twice",
    "RCN-SYNC-1": "sync interval outside 1..10080 minutes",
    "RCN-SYNC-2": "sync interval below 5 minutes (warning)",
    "RCN-WH-1": "endpoint URL is not a public https URL",
    "RCN-WH-2": f"inbound webhook of a platform must use {AUTH_TYPE.manifest} SIGNATURE",
    "RCN-WH-3": "signing secret missing, or not a Stripe whsec_ secret",
    "RCN-WH-4": "event not in the platform's catalog",
    "RCN-WH-5": "duplicate event",
    "RCN-WH-6": "Stripe wildcard event '*' (warning)",
    "RCN-WH-7": "HubSpot propertyChange without a property, or generic object.* event",
    "RCN-WH-8": "retry policy out of bounds",
    "RCN-WH-9": "circuit breaker out of bounds",
    "RCN-WH-10": "tenants sharing a HubSpot/QuickBooks app declare different inbound endpoints",
    "RCN-WH-11": "inbound QuickBooks webhook without app_id",
    "RCN-WH-12": (
        f"{AUTH_TYPE.manifest} needs a credential field "
        f"({AUTH_TOKEN.manifest} / {AUTH_PASSWORD.manifest})"
    ),
}
"""Rule id -> one-line summary (the README rules table)."""

LIVE_CREDENTIAL = re.compile(
    r"(?:sk|rk)_live_[0-9A-Za-z]{10,}|whsec_[A-Za-z0-9]{24,}|pat-[a-z]{2}\d-[0-9a-f-]{36}"
)
"""Plaintext that looks like a live credential (the patterns secret scanners use)."""

_CREDENTIAL_MARKERS = ("_live_", "whsec_", "pat-")
_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".lan", ".intranet")


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def environments(doc: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(name, environment)`` for each well-formed environment of a document."""
    for name, env in _map(_map(doc).get("environments")).items():
        if isinstance(env, dict):
            yield name, env


def secret_paths(doc: Any) -> Iterator[FieldPath]:
    """Paths of every secret field that is set in a document."""
    for env_name, env in environments(doc):
        groups = (
            ("integrations", _map(env.get("integrations"))),
            ("webhooks", _map(env.get("webhooks"))),
        )
        for group, items in groups:
            for key, item in items.items():
                for field in SECRET_FIELDS.intersection(_map(item)):
                    if item[field] is not None:
                        yield ("environments", env_name, group, key, field)


# --------------------------------------------------------------------------- document rules


def check_document(doc: Any, platform: Platform) -> list[Finding]:
    """Every domain rule that needs no decryption, for one merged manifest."""
    found: list[Finding] = []
    seen_accounts: dict[Any, str] = {}
    for env_name, env in environments(doc):
        base: FieldPath = ("environments", env_name)
        found += _check_integrations((*base, "integrations"), _map(env.get("integrations")))
        for name, hook in _map(env.get("webhooks")).items():
            if isinstance(hook, dict):
                found += _check_webhook((*base, "webhooks", name), hook, platform, env_name)
        accounts = env.get("oauth_accounts")
        if isinstance(accounts, list):
            found += _check_accounts(
                (*base, "oauth_accounts"), accounts, platform, env_name, seen_accounts
            )
    found += rules_for(platform).document_findings(list(environments(doc)))
    found += _check_free_form(doc)
    return found


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _check_integrations(base: FieldPath, integrations: Mapping[str, Any]) -> list[Finding]:
    found: list[Finding] = []
    primaries: list[str] = []
    for config_type, integ in integrations.items():
        if not isinstance(integ, dict):
            continue
        if integ.get("primary") is True:
            primaries.append(config_type)
            if len(primaries) > 1:
                found.append(
                    Finding(
                        "RCN-INT-1",
                        f"{config_type} is primary, but {primaries[0]} already is; at most one "
                        "integration per platform and environment may be primary",
                        (*base, config_type, "primary"),
                    )
                )
        if config_type == "API_KEY" and integ.get(API_KEY.manifest) is None:
            found.append(
                Finding(
                    "RCN-INT-2",
                    f"an API_KEY integration needs {API_KEY.manifest} (SOPS-encrypted)",
                    (*base, config_type),
                    at_key=True,
                )
            )
        interval = _map(integ.get("sync")).get("interval_minutes")
        if type(interval) is int and 1 <= interval < 5:
            found.append(
                Finding(
                    "RCN-SYNC-2",
                    f"syncing every {interval} minute(s) gains nothing over webhooks and burns "
                    "rate limit; 5 minutes or more is recommended",
                    (*base, config_type, "sync", "interval_minutes"),
                    Severity.WARNING,
                )
            )
    return found


_CREDENTIAL_OF = {
    "BEARER": AUTH_TOKEN.manifest,
    "API_KEY": AUTH_TOKEN.manifest,
    "BASIC": AUTH_PASSWORD.manifest,
}
"""Webhook authentication type -> the manifest key of the credential it needs."""


def _check_webhook(
    path: FieldPath, hook: Mapping[str, Any], platform: Platform, env_name: str
) -> list[Finding]:
    found: list[Finding] = []
    inbound = hook.get("type") == "INBOUND"
    url_key, auth_key = ENDPOINT_URL.manifest, AUTH_TYPE.manifest
    url = hook.get(url_key)
    if isinstance(url, str):
        problem = check_endpoint(url, env_name, outbound=hook.get("type") == "OUTBOUND")
        if problem:
            found.append(Finding("RCN-WH-1", f"{url_key} {problem}", (*path, url_key)))
    auth = hook.get(auth_key)
    if inbound and isinstance(auth, str) and auth != "SIGNATURE":
        found.append(
            Finding(
                "RCN-WH-2",
                f"inbound {platform.value.title()} webhooks are verified by signature: use "
                f"{auth_key} SIGNATURE (with {SIGNING_SECRET.manifest}), not {auth}",
                (*path, auth_key),
            )
        )
    if (auth == "SIGNATURE" or inbound) and hook.get(SIGNING_SECRET.manifest) is None:
        found.append(
            Finding(
                "RCN-WH-3",
                f"a signed webhook needs {SIGNING_SECRET.manifest} (SOPS-encrypted): "
                + rules_for(platform).signature_key_hint,
                path,
                at_key=True,
            )
        )
    needed = _CREDENTIAL_OF.get(str(auth))
    if needed and hook.get(needed) is None:
        found.append(
            Finding(
                "RCN-WH-12", f"{auth_key} {auth} needs {needed} (SOPS-encrypted)", path, at_key=True
            )
        )
    found += rules_for(platform).webhook_findings(path, hook, inbound)
    events = hook.get("events")
    if isinstance(events, list):
        fmt = hook.get("payload_format", "legacy")
        found += check_events((*path, "events"), events, platform, str(fmt))
    retry = _map(hook.get("retry"))
    first, longest = retry.get("initial_delay_seconds"), retry.get("max_delay_seconds")
    if type(first) is int and type(longest) is int and longest < first:
        found.append(
            Finding(
                "RCN-WH-8",
                f"max_delay_seconds ({longest}) is below initial_delay_seconds ({first})",
                (*path, "retry", "max_delay_seconds"),
            )
        )
    return found


def check_endpoint(url: str, env_name: str, *, outbound: bool = False) -> str | None:
    """Why ``url`` is not a public https endpoint, or ``None`` if it is. Resolves nothing."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme == "http" and outbound and env_name == "development" and host == "localhost":
        return None  # local receivers for outbound hooks during development (domain WH-1)
    if parts.scheme != "https":
        return f"must use https:// (got {parts.scheme + '://' if parts.scheme else show(url)})"
    if "@" in parts.netloc:
        return (
            f"must not contain credentials (user:pass@host); use {AUTH_TYPE.manifest} BASIC or "
            f"BEARER with an encrypted {AUTH_PASSWORD.manifest} / {AUTH_TOKEN.manifest}"
        )
    if parts.fragment or url.endswith("#"):
        return "must not contain a #fragment (it is never sent to the server)"
    if not host:
        return "has no host"
    if port not in (None, 443) and env_name == "production":
        return f"must not use port {port} in production; use the default https port 443"
    problem = _host_problem(host)
    return f"{problem}; webhooks must reach a public host" if problem else None


def _host_problem(host: str) -> str | None:
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    if ":" in host or host[-1:].isdigit():  # only these can be IP literals; skip the parse
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
    if ip is not None:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        for test, label in (
            ("is_loopback", "a loopback address"),
            ("is_link_local", "a link-local address"),
            ("is_private", "a private address"),
            ("is_multicast", "a multicast address"),
            ("is_unspecified", "an unspecified address"),
        ):
            if getattr(ip, test):
                return f"points at {label} ({host})"
        return None if ip.is_global else f"points at a non-public address ({host})"
    lowered = host.lower()
    if lowered == "localhost" or lowered.endswith(_PRIVATE_SUFFIXES):
        return f"points at a local name ({host})"
    labels = lowered.split(".")
    if len(labels) == 1:
        return f"host {host!r} is not a public DNS name (no domain)"
    if all(re.fullmatch(r"[0-9]+|0x[0-9a-f]*", label) for label in labels):
        return f"host {host!r} is an IP address in a non-standard form"
    return None


def check_events(
    path: FieldPath, events: list[Any], platform: Platform, payload_format: str
) -> list[Finding]:
    """Catalog, duplicate and grammar rules for a webhook's ``events`` list."""
    found: list[Finding] = []
    seen: dict[str, int] = {}
    for i, event in enumerate(events):
        if not isinstance(event, str):
            continue  # the schema reports the type
        here = (*path, i)
        if event in seen:
            found.append(
                Finding(
                    "RCN-WH-5", f"{event!r} is listed twice (first at events[{seen[event]}])", here
                )
            )
            continue
        seen[event] = i
        finding = rules_for(platform).check_event(event, payload_format)
        if finding is not None:
            code, message, severity = finding
            found.append(Finding(code, message, here, severity))
    return found


def _check_accounts(
    base: FieldPath,
    accounts: list[Any],
    platform: Platform,
    env_name: str,
    seen_accounts: dict[Any, str],
) -> list[Finding]:
    found: list[Finding] = []
    platform_rules = rules_for(platform)
    id_field = platform_rules.account_id_field
    for i, acct in enumerate(accounts):
        if not isinstance(acct, dict):
            continue
        account_id = acct.get(id_field)
        here = (*base, i, id_field)
        if account_id is not None and not isinstance(account_id, dict | list):
            where = seen_accounts.get(account_id)
            elsewhere = where is not None and platform_rules.duplicate_reported_elsewhere(
                env_name, str(where).split(".")[0]
            )
            if where is not None and not elsewhere:
                found.append(
                    Finding(
                        "RCN-OA-1",
                        f"account {account_id} is already declared in {where}; an OAuth "
                        "account is identified by tenant, platform and account id alone, so it "
                        "may appear once per file",
                        here,
                    )
                )
            else:
                seen_accounts[account_id] = f"{env_name}.oauth_accounts[{i}]"
        found += platform_rules.account_findings((*base, i), acct, env_name)
    return found


_FREE_FORM = tuple(f.manifest for f in INTEGRATION_FIELDS if f.kind is Kind.JSON)
"""The integration's free-form maps (JSONB columns), by manifest key."""


def _check_free_form(doc: Any) -> list[Finding]:
    """Free-form maps become JSONB: refuse values JSON cannot hold."""
    found: list[Finding] = []
    for env_name, env in environments(doc):
        for config_type, integ in _map(env.get("integrations")).items():
            for field in _FREE_FORM:
                value = _map(integ).get(field)
                if isinstance(value, dict):
                    base = ("environments", env_name, "integrations", config_type, field)
                    found += _non_json(base, value)
    return found


def _non_json(path: FieldPath, value: Any) -> list[Finding]:
    if isinstance(value, dict):
        return [f for k, v in value.items() for f in _non_json((*path, k), v)]
    if isinstance(value, list):
        return [f for i, v in enumerate(value) for f in _non_json((*path, i), v)]
    if isinstance(value, datetime | date):
        return [Finding("RCN-S008", "a timestamp is not JSON; quote it to keep it as text", path)]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return [Finding("RCN-S008", f"{value} is not a JSON number", path)]
    return []


# --------------------------------------------------------------------------- credentials


def scan_credentials(doc: Any, text: str) -> list[Finding]:
    """RCN-SEC-2: plaintext live credentials anywhere in a file, comments included.

    The whole text is searched first (one regex pass); only a file with a hit is walked to
    name the places. Secret fields are left to RCN-SEC-1, which already refuses plaintext.
    """
    # Substring tests are far cheaper than the regex, and almost every file has no hit.
    if not any(marker in text for marker in _CREDENTIAL_MARKERS) or not LIVE_CREDENTIAL.search(
        text
    ):
        return []
    found: list[Finding] = []

    def walk(value: Any, path: FieldPath) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                if path == () and key == "sops":
                    continue
                if isinstance(key, str) and LIVE_CREDENTIAL.search(key):
                    found.append(_credential_finding((*path, key), at_key=True))
                if key not in SECRET_FIELDS:
                    walk(child, (*path, key))
        elif isinstance(value, list):
            for i, child in enumerate(value):
                walk(child, (*path, i))
        elif isinstance(value, str) and LIVE_CREDENTIAL.search(value):
            found.append(_credential_finding(path))

    walk(doc, ())
    for number, line in enumerate(text.splitlines(), start=1):
        _, hash_, comment = line.partition("#")
        if hash_ and LIVE_CREDENTIAL.search(comment) and not _in_value(line):
            found.append(
                Finding(
                    "RCN-SEC-2",
                    "a comment contains what looks like a live credential; remove it and "
                    "rotate the credential",
                    line=number,
                )
            )
    return found


def _in_value(line: str) -> bool:
    """True when the credential-looking text sits in a quoted value, not in a comment."""
    before = line.split("#", 1)[0]
    return before.count('"') % 2 == 1 or before.count("'") % 2 == 1


def _credential_finding(path: FieldPath, *, at_key: bool = False) -> Finding:
    return Finding(
        "RCN-SEC-2",
        "looks like a live credential in plaintext; never commit it (rotate it if it was "
        "pushed) and put secrets only in encrypted secret fields",
        path,
        at_key=at_key,
    )


# --------------------------------------------------------------------------- decrypted secrets


def check_secret(platform: Platform, env_name: str, field: str, plaintext: str) -> Finding | None:
    """Key-dependent rules on one decrypted secret (Stripe: RCN-ENV-1/2, RCN-WH-3).

    The message names at most the key's public prefix (``sk_test_``), never the key.
    """
    return rules_for(platform).secret_finding(env_name, field, plaintext)
