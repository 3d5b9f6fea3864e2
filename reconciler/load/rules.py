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
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from reconciler.diagnostics import Severity
from reconciler.load import catalogs
from reconciler.load.manifest_model import SECRET_FIELDS
from reconciler.model.enums import Platform
from reconciler.redaction import REDACTED, is_secret_shaped

PathElement = str | int
FieldPath = tuple[PathElement, ...]

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
    "RCN-INT-2": "API_KEY integration without api_key",
    "RCN-OA-1": "OAuth account declared twice",
    "RCN-SYNC-1": "sync interval outside 1..10080 minutes",
    "RCN-SYNC-2": "sync interval below 5 minutes (warning)",
    "RCN-WH-1": "endpoint URL is not a public https URL",
    "RCN-WH-2": "inbound webhook of a platform must use auth_type SIGNATURE",
    "RCN-WH-3": "signing secret missing, or not a Stripe whsec_ secret",
    "RCN-WH-4": "event not in the platform's catalog",
    "RCN-WH-5": "duplicate event",
    "RCN-WH-6": "Stripe wildcard event '*' (warning)",
    "RCN-WH-7": "HubSpot propertyChange without a property, or generic object.* event",
    "RCN-WH-8": "retry policy out of bounds",
    "RCN-WH-9": "circuit breaker out of bounds",
    "RCN-WH-10": "tenants sharing a HubSpot/QuickBooks app declare different inbound endpoints",
    "RCN-WH-11": "inbound QuickBooks webhook without app_id",
    "RCN-WH-12": "auth_type needs a credential field (auth_token / auth_password)",
}
"""Rule id -> one-line summary (the README rules table)."""

LIVE_CREDENTIAL = re.compile(
    r"(?:sk|rk)_live_[0-9A-Za-z]{10,}|whsec_[A-Za-z0-9]{24,}|pat-[a-z]{2}\d-[0-9a-f-]{36}"
)
"""Plaintext that looks like a live credential (the patterns secret scanners use)."""

_CREDENTIAL_MARKERS = ("_live_", "whsec_", "pat-")
_PROPERTY_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".lan", ".intranet")

KNOWN_MISTAKES = {
    "invoice.payed": "invoice.paid",
    "customer.subscription.canceled": "customer.subscription.deleted",
    "payment_intent.failed": "payment_intent.payment_failed",
    "charge.refund": "charge.refunded",
    "contact.created": "contact.creation",
    "contact.updated": "contact.propertyChange:<property>",
    "deal.stageChange": "deal.propertyChange:dealstage",
}
"""Common misspellings of Stripe and HubSpot event names and what was meant (RCN-WH-4)."""


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
    portals: dict[str, set[int]] = {}
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
                (*base, "oauth_accounts"), accounts, platform, env_name, portals, seen_accounts
            )
    sandbox = portals.get("sandbox", set())
    for env_name, env in environments(doc):
        if env_name != "production":
            continue
        for i, acct in enumerate(_list(env.get("oauth_accounts"))):
            portal = _map(acct).get("portal_id")
            if type(portal) is int and portal in sandbox:  # any YAML value may stand here
                found.append(
                    Finding(
                        "RCN-ENV-6",
                        f"portal {acct['portal_id']} is also declared in sandbox; production and "
                        "sandbox are different HubSpot accounts with different portal ids",
                        ("environments", "production", "oauth_accounts", i, "portal_id"),
                    )
                )
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
        if config_type == "API_KEY" and integ.get("api_key") is None:
            found.append(
                Finding(
                    "RCN-INT-2",
                    "an API_KEY integration needs api_key (SOPS-encrypted)",
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


def _check_webhook(
    path: FieldPath, hook: Mapping[str, Any], platform: Platform, env_name: str
) -> list[Finding]:
    found: list[Finding] = []
    inbound = hook.get("type") == "INBOUND"
    url = hook.get("endpoint_url")
    if isinstance(url, str):
        problem = check_endpoint(url, env_name, outbound=hook.get("type") == "OUTBOUND")
        if problem:
            found.append(Finding("RCN-WH-1", f"endpoint_url {problem}", (*path, "endpoint_url")))
    auth = hook.get("auth_type")
    if inbound and isinstance(auth, str) and auth != "SIGNATURE":
        found.append(
            Finding(
                "RCN-WH-2",
                f"inbound {platform.value.title()} webhooks are verified by signature: use "
                f"auth_type SIGNATURE (with signing_secret), not {auth}",
                (*path, "auth_type"),
            )
        )
    if (auth == "SIGNATURE" or inbound) and hook.get("signing_secret") is None:
        found.append(
            Finding(
                "RCN-WH-3",
                "a signed webhook needs signing_secret (SOPS-encrypted): "
                + _SIGNING_SECRET_HINT[platform],
                path,
                at_key=True,
            )
        )
    needed = {"BEARER": "auth_token", "API_KEY": "auth_token", "BASIC": "auth_password"}.get(
        str(auth)
    )
    if needed and hook.get(needed) is None:
        found.append(
            Finding(
                "RCN-WH-12", f"auth_type {auth} needs {needed} (SOPS-encrypted)", path, at_key=True
            )
        )
    if platform is Platform.QUICKBOOKS and inbound and hook.get("app_id") is None:
        found.append(
            Finding(
                "RCN-WH-11",
                "inbound QuickBooks webhooks belong to the Intuit app: set app_id so every "
                "tenant of that app can be checked for the same endpoint_url",
                path,
                at_key=True,
            )
        )
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


_SIGNING_SECRET_HINT = {
    Platform.STRIPE: "the endpoint's whsec_ secret",
    Platform.HUBSPOT: "the HubSpot app's client secret",
    Platform.QUICKBOOKS: "the Intuit app's verifier token",
}


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
            "must not contain credentials (user:pass@host); use auth_type BASIC or BEARER "
            "with an encrypted auth_password / auth_token"
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
        finding = _check_event(event, platform, payload_format)
        if finding is not None:
            code, message, severity = finding
            found.append(Finding(code, message, here, severity))
    return found


def _unknown(
    event: str, catalog: frozenset[str], platform: Platform, extra: str = ""
) -> tuple[str, str, Severity]:
    guess = KNOWN_MISTAKES.get(event) or catalogs.suggest(event, catalog)
    hint = f"; did you mean {guess!r}?" if guess else ""
    return (
        "RCN-WH-4",
        f"{event!r} is not a {platform.value.title()} event{extra}{hint}",
        Severity.ERROR,
    )


def _check_event(
    event: str, platform: Platform, payload_format: str
) -> tuple[str, str, Severity] | None:
    if platform is Platform.STRIPE:
        if event == catalogs.STRIPE_WILDCARD:
            return (
                "RCN-WH-6",
                "'*' subscribes to every event type, including future ones; list the events "
                "this endpoint handles",
                Severity.WARNING,
            )
        if event in catalogs.stripe_events():
            return None
        return _unknown(event, catalogs.stripe_events(), platform)
    if platform is Platform.HUBSPOT:
        return _check_hubspot_event(event)
    catalog = catalogs.quickbooks_events(payload_format)
    if event in catalog:
        return None
    other = "cloudevents" if payload_format != "cloudevents" else "legacy"
    if event in catalogs.quickbooks_events(other):
        return (
            "RCN-WH-4",
            f"{event!r} is a {other} event name but payload_format is {payload_format}; "
            f"set payload_format: {other} or use the {payload_format} name",
            Severity.ERROR,
        )
    return _unknown(event, catalog, platform, f" ({payload_format} payload format)")


def _check_hubspot_event(event: str) -> tuple[str, str, Severity] | None:
    catalog = catalogs.hubspot_events()
    base, sep, prop = event.partition(":")
    objects = catalogs.hubspot_property_objects()
    if base.startswith("object.") and base in catalog:
        return (
            "RCN-WH-7",
            f"{event!r}: generic object.* subscriptions need an objectTypeId, which manifests "
            "do not support; subscribe to the specific object (e.g. contact.creation)",
            Severity.ERROR,
        )
    if base.endswith("." + catalogs.PROPERTY_CHANGE) and base in catalog:
        if not sep:
            return (
                "RCN-WH-7",
                f"{event!r} must name the property it watches, e.g. '{base}:email'",
                Severity.ERROR,
            )
        if not _PROPERTY_NAME.match(prop):
            return (
                "RCN-WH-7",
                f"{event!r}: property name {prop!r} must be a HubSpot internal name "
                "(letters, digits, underscores)",
                Severity.ERROR,
            )
        return None
    if sep and base in catalog:
        return (
            "RCN-WH-7",
            f"{event!r}: only <object>.propertyChange takes a ':property' suffix "
            f"({', '.join(sorted(objects))})",
            Severity.ERROR,
        )
    if not sep and event in catalog:
        return None
    return _unknown(event, catalog, Platform.HUBSPOT)


def _check_accounts(
    base: FieldPath,
    accounts: list[Any],
    platform: Platform,
    env_name: str,
    portals: dict[str, set[int]],
    seen_accounts: dict[Any, str],
) -> list[Finding]:
    found: list[Finding] = []
    id_field = {Platform.STRIPE: "stripe_account_id", Platform.HUBSPOT: "portal_id"}.get(
        platform, "realm_id"
    )
    for i, acct in enumerate(accounts):
        if not isinstance(acct, dict):
            continue
        account_id = acct.get(id_field)
        here = (*base, i, id_field)
        if account_id is not None and not isinstance(account_id, dict | list):
            where = seen_accounts.get(account_id)
            # A HubSpot portal in both production and sandbox is RCN-ENV-6's to explain.
            hubspot_pair = {env_name, str(where).split(".")[0]} == {"production", "sandbox"}
            if where is not None and not (platform is Platform.HUBSPOT and hubspot_pair):
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
        if platform is Platform.HUBSPOT and type(account_id) is int:
            portals.setdefault(env_name, set()).add(account_id)
        livemode = acct.get("livemode")
        stripe = platform is Platform.STRIPE and isinstance(livemode, bool)
        if stripe and livemode != (env_name == "production"):
            want = "true" if env_name == "production" else "false"
            found.append(
                Finding(
                    "RCN-ENV-3",
                    f"livemode must be {want} in {env_name}: "
                    + (
                        "production uses the live-mode account"
                        if env_name == "production"
                        else "only production may connect in live mode"
                    ),
                    (*base, i, "livemode"),
                )
            )
    return found


def _check_free_form(doc: Any) -> list[Finding]:
    """Free-form maps become JSONB: refuse values JSON cannot hold."""
    found: list[Finding] = []
    for env_name, env in environments(doc):
        for config_type, integ in _map(env.get("integrations")).items():
            for field in ("features", "mapping_rules", "filter_rules", "transform_rules"):
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
    """Key-dependent rules on one decrypted secret (RCN-ENV-1/2, RCN-WH-3).

    The message names at most the key's public prefix (``sk_test_``), never the key.
    """
    if platform is not Platform.STRIPE:
        return None
    if field == "signing_secret":
        if not plaintext.startswith("whsec_"):
            return Finding("RCN-WH-3", "does not look like a Stripe signing secret (whsec_...)")
        return None
    if field not in ("api_key", "api_secret"):
        return None
    if plaintext.startswith("pk_"):
        return Finding(
            "RCN-ENV-2",
            "is a publishable key (pk_...), which cannot call the API; use a restricted "
            "(rk_) or secret (sk_) key",
        )
    prefix = plaintext[:8]
    live = prefix in ("sk_live_", "rk_live_")
    test = prefix in ("sk_test_", "rk_test_")
    if env_name == "production" and test:
        return Finding(
            "RCN-ENV-1",
            f"holds a test-mode key ({prefix}...) in production; use a live key "
            "(rk_live_ preferred)",
        )
    if env_name != "production" and live:
        return Finding(
            "RCN-ENV-1",
            f"holds a live-mode key ({prefix}...) in {env_name}; only production may use live "
            "keys (use sk_test_ or rk_test_)",
        )
    return None
