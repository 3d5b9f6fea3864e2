"""``reconciler.yaml``: optional repository-level defaults and the risk policy.

Looked up in the current directory (the repository root in CI). Every key is optional::

    manifests: manifests            # manifest directory
    apply:
      allow_risk: high              # highest level apply accepts without --allow-risk
      lock_timeout_seconds: 60      # 0.001 to 86400 (one day)
      statement_timeout_seconds: 300  # 0.001 to 86400 (one day)
      verify_connections: false     # probe new or changed credentials before the transaction
      verify_connections_unreachable: warn   # warn or block when a platform does not answer
    health:
      timeout_seconds: 10           # per probe, 0.001 to 300
      base_urls:                    # platform API roots (tests and proxies point them elsewhere)
        stripe: https://api.stripe.com
        hubspot: https://api.hubapi.com
        quickbooks:
          production: https://quickbooks.api.intuit.com
          sandbox: https://sandbox-quickbooks.api.intuit.com   # every other environment
    risk:
      overrides:                    # raise a rule's level; lowering below the default is refused
        SYNC_INTERVAL: MEDIUM
      mass_deletion:
        max_share: 0.5              # share of a tenant's objects one apply may delete, in (0, 1]
        min_objects: 3              # ... once at least this many objects would go (>= 1)
      mass_revocation:
        max_share: 0.5              # share of a tenant's active OAuth tokens one apply may
        min_tokens: 3               # revoke as undeclared/unmanaged, once this many would go
    approval:
      level: critical               # changes at or above this level need approvals to apply
      required: 1                   # approvals needed, from people other than the plan's author
    notify:                         # POSTed after apply, blocked apply, drift, approval needed
      - url: https://hooks.slack.com/services/...
        format: slack               # slack (incoming webhook) or json (the default)
        events: [applied, blocked, failed, drift, approval-needed]   # default: every event
        timeout_seconds: 5          # per attempt, 0.001 to 60

A bad value is a one-line :class:`~reconciler.errors.ConfigError` naming the file, the line
and column, and the field (``reconciler.yaml:4:25: apply.lock_timeout_seconds: ...``).
Timeouts have no "unlimited" value: ``0`` (PostgreSQL's "no limit"), negative, infinite and NaN
values are refused, as is anything above :data:`MAX_TIMEOUT_SECONDS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from reconciler.core.risk import RiskPolicy
from reconciler.errors import ConfigError
from reconciler.files import read_file
from reconciler.model.enums import RiskLevel
from reconciler.yaml_source import PathElement, YamlError, format_path, locate, parse_document

SETTINGS_FILE = "reconciler.yaml"

MIN_TIMEOUT_SECONDS = 0.001
"""Shortest timeout: PostgreSQL counts in milliseconds, and 0 ms would mean "no limit"."""
MAX_TIMEOUT_SECONDS = 86_400.0
"""Longest timeout: one day. Beyond that a run is stuck, not slow."""

T = TypeVar("T")

NOTIFY_EVENTS = ("applied", "blocked", "failed", "drift", "approval-needed")
"""Events a notification target may subscribe to (all of them when ``events`` is omitted)."""
NOTIFY_FORMATS = ("json", "slack")
MAX_NOTIFY_TIMEOUT_SECONDS = 60.0
MAX_PROBE_TIMEOUT_SECONDS = 300.0
UNREACHABLE_POLICIES = ("warn", "block")
"""What ``apply.verify_connections_unreachable`` may say about a platform that does not answer."""


@dataclass(frozen=True, slots=True)
class BaseUrls:
    """Where the platform APIs are: the roots health checks and connection tests call.

    Attributes:
        stripe: Stripe's API root.
        hubspot: HubSpot's API root.
        quickbooks_production: QuickBooks Online's API root for PRODUCTION integrations.
        quickbooks_sandbox: the root for every other environment (Intuit's sandbox).
    """

    stripe: str = "https://api.stripe.com"
    hubspot: str = "https://api.hubapi.com"
    quickbooks_production: str = "https://quickbooks.api.intuit.com"
    quickbooks_sandbox: str = "https://sandbox-quickbooks.api.intuit.com"

    def quickbooks(self, environment: str) -> str:
        """The QuickBooks root for ``environment`` (an :class:`Environment` value)."""
        if environment == "PRODUCTION":
            return self.quickbooks_production
        return self.quickbooks_sandbox


@dataclass(frozen=True, slots=True)
class NotifyTarget:
    """One ``notify:`` entry: where to POST which events, and in which JSON shape.

    Attributes:
        url: an ``http``/``https`` URL.
        events: the events sent there (see :data:`NOTIFY_EVENTS`).
        format: ``json`` (the reconciler's own document) or ``slack`` (incoming webhook).
        timeout_seconds: per attempt; a target that does not answer in time is retried,
            then reported as failed (a notification never fails an apply).
    """

    url: str
    events: tuple[str, ...] = NOTIFY_EVENTS
    format: str = "json"
    timeout_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved settings (file values over built-in defaults; CLI flags override these).

    Timeouts are always within [:data:`MIN_TIMEOUT_SECONDS`, :data:`MAX_TIMEOUT_SECONDS`]:
    building a ``Settings`` with any other value raises :class:`ConfigError`, so code using
    the Python API cannot pass "no limit" or NaN to the database either.
    """

    manifests_dir: Path = Path("manifests")
    allow_risk: RiskLevel = RiskLevel.HIGH
    lock_timeout_seconds: float = 60.0
    statement_timeout_seconds: float = 300.0
    policy: RiskPolicy = field(default_factory=RiskPolicy)
    source: Path | None = None
    approval_level: RiskLevel = RiskLevel.CRITICAL
    """Changes at or above this level need approvals (``reconciler approve``) to apply."""
    approvals_required: int = 1
    """How many approvals, from people other than the plan's author and the applier."""
    notify: tuple[NotifyTarget, ...] = ()
    verify_connections: bool = False
    """Probe new or changed credentials before the apply transaction (``--verify-connections``)."""
    verify_connections_unreachable: str = "warn"
    """``warn`` or ``block``: what a platform that does not answer does to such an apply."""
    health_timeout_seconds: float = 10.0
    """Seconds per probe, for health checks and connection tests."""
    base_urls: BaseUrls = field(default_factory=BaseUrls)

    def __post_init__(self) -> None:
        for name in ("lock_timeout_seconds", "statement_timeout_seconds"):
            try:
                check_timeout(getattr(self, name))
            except ValueError as exc:
                raise ConfigError(f"Settings.{name} {exc}") from None


_TOP = {"manifests", "apply", "risk", "approval", "notify", "health"}
_HEALTH = {"timeout_seconds", "base_urls"}
_BASE_URLS = {"stripe", "hubspot", "quickbooks"}
_APPROVAL = {"level", "required"}
_NOTIFY = {"url", "events", "format", "timeout_seconds"}
_APPLY = {
    "allow_risk",
    "lock_timeout_seconds",
    "statement_timeout_seconds",
    "verify_connections",
    "verify_connections_unreachable",
}
_RISK = {"overrides", "mass_deletion", "mass_revocation"}


class _FieldError(ValueError):
    """A bad value at ``path`` in the settings document (``key``: point at the key itself)."""

    def __init__(self, path: tuple[PathElement, ...], message: str, *, key: bool = False) -> None:
        super().__init__(message)
        self.path = path
        self.key = key


def load_settings(directory: Path | None = None) -> Settings:
    """Read ``reconciler.yaml`` from ``directory`` (default: cwd); defaults when absent.

    Raises:
        ConfigError: the file is not valid YAML, has an unknown key, or a value out of range;
            the message names the file, line, column and field.
    """
    path = (directory or Path.cwd()) / SETTINGS_FILE
    if not path.exists() and not path.is_symlink():
        return Settings()
    # Repository content: a link, FIFO or oversized file is refused (UnsafeFile), not read.
    raw = read_file(path)
    try:
        doc = parse_document(raw) or {}
    except YamlError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    try:
        return _parse(doc, path)
    except _FieldError as exc:
        position = locate(raw, exc.path, key=exc.key)
        where = f"{path}:{position[0]}:{position[1]}" if position else str(path)
        field_name = format_path(exc.path) if exc.path else SETTINGS_FILE
        raise ConfigError(f"{where}: {field_name}: {exc}") from None


def check_timeout(value: object) -> float:
    """``value`` as seconds if it is a usable timeout; ValueError naming the limits otherwise.

    A usable timeout is a finite number (not a boolean) from :data:`MIN_TIMEOUT_SECONDS` to
    :data:`MAX_TIMEOUT_SECONDS`.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number of seconds, got {_shown(value)}")
    seconds = float(value)
    if not (math.isfinite(seconds) and MIN_TIMEOUT_SECONDS <= seconds <= MAX_TIMEOUT_SECONDS):
        raise ValueError(
            f"must be from {MIN_TIMEOUT_SECONDS:g} to {MAX_TIMEOUT_SECONDS:g} seconds "
            f"(one day), got {_shown(value)}"
        )
    return seconds


def lock_timeout_option(value: float | None) -> float | None:
    """Check ``--lock-timeout`` like ``apply.lock_timeout_seconds``; ConfigError if unusable."""
    if value is None:
        return None
    try:
        return check_timeout(value)
    except ValueError as exc:
        raise ConfigError(f"--lock-timeout {exc}") from None


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _section(doc: Any, path: tuple[PathElement, ...], allowed: set[str]) -> dict[str, Any]:
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise _FieldError(path, "must be a mapping")
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise _FieldError(
            (*path, unknown[0]), f"unknown key (allowed: {', '.join(sorted(allowed))})", key=True
        )
    return doc


def _field(path: tuple[PathElement, ...], convert: Callable[[], T]) -> T:
    """``convert()``, with a ValueError or TypeError reported at ``path``."""
    try:
        return convert()
    except _FieldError:
        raise
    except (ValueError, TypeError, OverflowError) as exc:
        raise _FieldError(path, str(exc)) from None


def _timeout(section: dict[str, Any], key: str, default: float) -> float:
    if key not in section:
        return default
    return _field(("apply", key), lambda: check_timeout(section[key]))


def _override(code: str, value: Any) -> RiskLevel:
    where = ("risk", "overrides", code)
    level = _field(where, lambda: parse_level(str(value)))
    # One rule at a time, so that an unknown rule or a lowered level is reported at its line.
    _field(where, lambda: RiskPolicy.create({code: level}))
    return level


def _max_share(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number in (0, 1], got {_shown(value)}")
    share = float(value)
    if not 0 < share <= 1:  # also refuses NaN
        raise ValueError(f"must be in (0, 1], got {_shown(value)}")
    return share


def _min_objects(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"must be a whole number of at least 1, got {_shown(value)}")
    return value


def _parse(doc: Any, path: Path) -> Settings:
    top = _section(doc, (), _TOP)
    apply = _section(top.get("apply"), ("apply",), _APPLY)
    risk = _section(top.get("risk"), ("risk",), _RISK)
    mass = _section(
        risk.get("mass_deletion"), ("risk", "mass_deletion"), {"max_share", "min_objects"}
    )
    revocation = _section(
        risk.get("mass_revocation"), ("risk", "mass_revocation"), {"max_share", "min_tokens"}
    )
    overrides_raw = _section(
        risk.get("overrides"), ("risk", "overrides"), set(risk.get("overrides") or {})
    )
    overrides = {str(k): _override(str(k), v) for k, v in overrides_raw.items()}
    max_share = _field(
        ("risk", "mass_deletion", "max_share"), lambda: _max_share(mass.get("max_share", 0.5))
    )
    min_objects = _field(
        ("risk", "mass_deletion", "min_objects"), lambda: _min_objects(mass.get("min_objects", 3))
    )
    revocation_share = _field(
        ("risk", "mass_revocation", "max_share"),
        lambda: _max_share(revocation.get("max_share", 0.5)),
    )
    min_tokens = _field(
        ("risk", "mass_revocation", "min_tokens"),
        lambda: _min_objects(revocation.get("min_tokens", 3)),
    )
    policy = _field(
        ("risk", "overrides"),
        lambda: RiskPolicy.create(
            overrides,
            mass_deletion_max_share=max_share,
            mass_deletion_min_objects=min_objects,
            mass_revocation_max_share=revocation_share,
            mass_revocation_min_tokens=min_tokens,
        ),
    )
    approval = _section(top.get("approval"), ("approval",), _APPROVAL)
    approval_level = _field(
        ("approval", "level"), lambda: parse_level(str(approval.get("level", "critical")))
    )
    approvals_required = _field(
        ("approval", "required"), lambda: _min_objects(approval.get("required", 1))
    )
    verify = apply.get("verify_connections", False)
    if not isinstance(verify, bool):
        raise _FieldError(
            ("apply", "verify_connections"), f"must be true or false, got {_shown(verify)}"
        )
    unreachable = apply.get("verify_connections_unreachable", "warn")
    if unreachable not in UNREACHABLE_POLICIES:
        raise _FieldError(
            ("apply", "verify_connections_unreachable"),
            f"must be one of {', '.join(UNREACHABLE_POLICIES)}, got {_shown(unreachable)}",
        )
    health = _section(top.get("health"), ("health",), _HEALTH)
    probe_timeout = _field(
        ("health", "timeout_seconds"), lambda: check_timeout(health.get("timeout_seconds", 10.0))
    )
    if probe_timeout > MAX_PROBE_TIMEOUT_SECONDS:
        raise _FieldError(
            ("health", "timeout_seconds"),
            f"must be at most {MAX_PROBE_TIMEOUT_SECONDS:g} seconds, got {probe_timeout:g}",
        )
    return Settings(
        verify_connections=verify,
        verify_connections_unreachable=str(unreachable),
        health_timeout_seconds=probe_timeout,
        base_urls=_base_urls(health.get("base_urls")),
        approval_level=approval_level,
        approvals_required=approvals_required,
        notify=_notify_targets(top.get("notify")),
        manifests_dir=Path(str(top.get("manifests", "manifests"))),
        allow_risk=_field(
            ("apply", "allow_risk"), lambda: parse_level(str(apply.get("allow_risk", "high")))
        ),
        lock_timeout_seconds=_timeout(apply, "lock_timeout_seconds", 60.0),
        statement_timeout_seconds=_timeout(apply, "statement_timeout_seconds", 300.0),
        policy=policy,
        source=path,
    )


def _url(value: Any, where: tuple[PathElement, ...], default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise _FieldError(where, f"must be an http(s) URL, got {_shown(value)}")
    return value.rstrip("/")


def _base_urls(raw: Any) -> BaseUrls:
    where: tuple[PathElement, ...] = ("health", "base_urls")
    urls = _section(raw, where, _BASE_URLS)
    default = BaseUrls()
    quickbooks = _section(urls.get("quickbooks"), (*where, "quickbooks"), {"production", "sandbox"})
    return BaseUrls(
        stripe=_url(urls.get("stripe"), (*where, "stripe"), default.stripe),
        hubspot=_url(urls.get("hubspot"), (*where, "hubspot"), default.hubspot),
        quickbooks_production=_url(
            quickbooks.get("production"),
            (*where, "quickbooks", "production"),
            default.quickbooks_production,
        ),
        quickbooks_sandbox=_url(
            quickbooks.get("sandbox"), (*where, "quickbooks", "sandbox"), default.quickbooks_sandbox
        ),
    )


def _notify_targets(raw: Any) -> tuple[NotifyTarget, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _FieldError(("notify",), "must be a list of targets ({url, events, format})")
    targets = []
    for index, item in enumerate(raw):
        where: tuple[PathElement, ...] = ("notify", index)
        entry = _section(item, where, _NOTIFY)
        url = entry.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise _FieldError((*where, "url"), f"must be an http(s) URL, got {_shown(url)}")
        events_raw = entry.get("events", list(NOTIFY_EVENTS))
        if not isinstance(events_raw, list) or not events_raw:
            raise _FieldError((*where, "events"), "must be a non-empty list of events")
        for position, event in enumerate(events_raw):
            if event not in NOTIFY_EVENTS:
                raise _FieldError(
                    (*where, "events", position),
                    f"unknown event {_shown(event)} (choose from {', '.join(NOTIFY_EVENTS)})",
                )
        fmt = entry.get("format", "json")
        if fmt not in NOTIFY_FORMATS:
            raise _FieldError(
                (*where, "format"), f"must be one of {', '.join(NOTIFY_FORMATS)}, got {_shown(fmt)}"
            )
        timeout = _notify_timeout(entry, (*where, "timeout_seconds"))
        targets.append(NotifyTarget(url, tuple(events_raw), str(fmt), timeout))
    return tuple(targets)


def _notify_timeout(entry: dict[str, Any], where: tuple[PathElement, ...]) -> float:
    seconds = _field(where, lambda: check_timeout(entry.get("timeout_seconds", 5.0)))
    if seconds > MAX_NOTIFY_TIMEOUT_SECONDS:
        raise _FieldError(
            where, f"must be at most {MAX_NOTIFY_TIMEOUT_SECONDS:g} seconds, got {seconds:g}"
        )
    return seconds


def parse_level(text: str) -> RiskLevel:
    """``low``/``LOW`` -> RiskLevel.LOW; ValueError naming the choices otherwise."""
    try:
        return RiskLevel(text.upper())
    except ValueError:
        choices = ", ".join(level.value.lower() for level in RiskLevel)
        raise ValueError(f"unknown risk level {text!r} (choose from {choices})") from None
