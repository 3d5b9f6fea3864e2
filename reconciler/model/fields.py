"""The field table: every field the reconciler reads, compares or writes, declared once.

Each :class:`FieldSpec` says what a field is called (on the model objects, in the plan, in
the manifest and in the database), what type it has, whether it is a secret, who owns it
(the manifests, or the application at run time) and which risk rule a change of it
matches. The diff, the risk rules, the store's reads and writes, the load cache and the
import all iterate these tuples instead of listing fields by hand, so adding a field is
adding a row here (plus its pydantic model field, its model attribute and its column).

The order of each tuple is the order of the attributes of the model objects
(``model/desired.py``, ``model/actual.py``) and of the load cache's flat rows; changing it
changes the cache format.

Pure data, no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Final

from reconciler.model.enums import (
    AuthType,
    ConfigType,
    Environment,
    Platform,
    SyncDirection,
    WebhookType,
)


class Owner(enum.StrEnum):
    """Who sets a field: the manifests (reconciled) or the application at run time."""

    MANIFEST = "manifest"
    RUNTIME = "runtime"


class Kind(enum.StrEnum):
    """The value type of a field, which decides how it is converted at each boundary.

    Members:
        TEXT, BOOL, INT, FLOAT: plain scalars.
        ENUM: a :class:`enum.StrEnum` member (:attr:`FieldSpec.enum`), stored as its label.
        JSON: a mapping stored as JSONB (an SQL NULL reads as ``{}``).
        LIST: a list of strings stored as JSONB, a tuple on the model objects (an SQL NULL
            reads as ``()``).
        SECRET: a :class:`~reconciler.model.desired.SecretValue` on desired objects; the
            store keeps the ciphertext in :attr:`FieldSpec.column` and its fingerprint in
            :attr:`FieldSpec.fingerprint_column`.
        TIMESTAMP: a ``timestamptz``.
    """

    TEXT = "text"
    BOOL = "bool"
    INT = "int"
    FLOAT = "float"
    ENUM = "enum"
    JSON = "json"
    LIST = "list"
    SECRET = "secret"  # noqa: S105 - a kind of field, not a password
    TIMESTAMP = "timestamp"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of one entity.

    Attributes:
        name: the attribute of the model objects and the field name a plan shows.
        column: the database column (for a secret, the ciphertext column); ``None`` when
            the field has no column of its own (the store computes it, or only manifests
            carry it).
        kind: the value type.
        sql_type: the PostgreSQL type the store binds and casts it as.
        owner: manifest (reconciled: compared by the diff, written by apply) or runtime.
        identity: part of the object's identity (never updated, never a field change).
        risk: the code of the risk rule (``core/risk.py``) a change of the field matches.
        enum: the enum of an ENUM field.
        desired: the attribute path on the desired object when it differs from ``name``
            (a dotted path, e.g. ``retry.max_attempts``).
        manifest: the key path in the manifest object (dotted), for writing manifests back.
        set_like: compared as a set (order carries no meaning).
        schedules: its value is the sync interval in minutes: writing a new value moves the
            runtime-owned ``next_sync_at``.
    """

    name: str
    column: str | None
    kind: Kind
    sql_type: str
    owner: Owner = Owner.MANIFEST
    identity: bool = False
    risk: str | None = None
    enum: type[enum.StrEnum] | None = None
    desired: str = ""
    manifest: str = ""
    set_like: bool = False
    schedules: bool = False

    @property
    def secret(self) -> bool:
        """Whether the field is a secret (compared by fingerprint, encrypted, never shown)."""
        return self.kind is Kind.SECRET

    @property
    def reconciled(self) -> bool:
        """Owned by the manifests and not part of the identity: the diff compares it."""
        return self.owner is Owner.MANIFEST and not self.identity

    @property
    def fingerprint_column(self) -> str:
        """The column holding a secret's fingerprint (``<column>_fingerprint``)."""
        return f"{self.column or self.name}_fingerprint"

    @property
    def desired_path(self) -> str:
        """The attribute path of the value on a desired object."""
        return self.desired or self.name

    @property
    def read_desired(self) -> Any:
        """A getter of the value from a desired object (an :func:`operator.attrgetter`)."""
        return attrgetter(self.desired_path)


def _f(
    name: str,
    kind: Kind,
    sql_type: str = "",
    *,
    column: str | bool | None = True,
    **kw: Any,
) -> FieldSpec:
    col = name if column is True else (None if column is False else column)
    default_sql = {
        Kind.TEXT: "text",
        Kind.BOOL: "boolean",
        Kind.INT: "integer",
        Kind.FLOAT: "double precision",
        Kind.JSON: "jsonb",
        Kind.LIST: "jsonb",
        Kind.SECRET: "text",
        Kind.TIMESTAMP: "timestamptz",
    }
    sql = sql_type or default_sql.get(kind, "text")
    return FieldSpec(name, col, kind, sql, **kw)


_TENANT = _f("tenant_id", Kind.TEXT, identity=True, manifest="tenant")
_PLATFORM = _f("platform", Kind.ENUM, "platform", identity=True, enum=Platform, manifest="platform")
_ENVIRONMENT = _f("environment", Kind.ENUM, "environment", identity=True, enum=Environment)
_ROW_ID = _f("id", Kind.INT, "bigint", owner=Owner.RUNTIME)
_DELETED_AT = _f("deleted_at", Kind.TIMESTAMP, owner=Owner.RUNTIME)
_ROW_VERSION = _f("row_version", Kind.INT, owner=Owner.RUNTIME)


def _active(manifest: str = "active") -> FieldSpec:
    return _f("is_active", Kind.BOOL, risk="ACTIVATE", manifest=manifest)


INTEGRATION_FIELDS: Final[tuple[FieldSpec, ...]] = (
    _TENANT,
    _PLATFORM,
    _ENVIRONMENT,
    _f("config_type", Kind.ENUM, "config_type", identity=True, enum=ConfigType),
    _f("is_primary", Kind.BOOL, risk="PRIMARY_SWITCH", manifest="primary"),
    _active(),
    _f("api_key", Kind.SECRET, risk="SECRET_CHANGED", manifest="api_key"),
    _f("api_secret", Kind.SECRET, risk="SECRET_CHANGED", manifest="api_secret"),
    _f(
        "sync_interval",
        Kind.INT,
        risk="SYNC_INTERVAL",
        manifest="sync.interval_minutes",
        schedules=True,
    ),
    _f(
        "sync_direction",
        Kind.ENUM,
        "sync_direction",
        risk="SYNC_DIRECTION",
        enum=SyncDirection,
        manifest="sync.direction",
    ),
    _f("features", Kind.JSON, risk="FEATURE_TOGGLE", manifest="features"),
    _f("mapping_rules", Kind.JSON, risk="RULES_CHANGED", manifest="mapping_rules"),
    _f("filter_rules", Kind.JSON, risk="RULES_CHANGED", manifest="filter_rules"),
    _f("transform_rules", Kind.JSON, risk="RULES_CHANGED", manifest="transform_rules"),
)
"""``integration_configs``, in the order of
:class:`~reconciler.model.desired.DesiredIntegration`."""

WEBHOOK_FIELDS: Final[tuple[FieldSpec, ...]] = (
    _TENANT,
    _PLATFORM,
    _ENVIRONMENT,
    _f("name", Kind.TEXT, identity=True),
    _f(
        "webhook_type",
        Kind.ENUM,
        "webhook_type",
        risk="WEBHOOK_TYPE",
        enum=WebhookType,
        manifest="type",
    ),
    _f("endpoint_url", Kind.TEXT, risk="ENDPOINT_URL", manifest="endpoint_url"),
    _f(
        "auth_type",
        Kind.ENUM,
        "auth_type",
        risk="AUTH_TYPE_CHANGED",
        enum=AuthType,
        manifest="auth_type",
    ),
    _f("signing_secret", Kind.SECRET, risk="SECRET_CHANGED", manifest="signing_secret"),
    _f("auth_token", Kind.SECRET, risk="SECRET_CHANGED", manifest="auth_token"),
    _f("auth_password", Kind.SECRET, risk="SECRET_CHANGED", manifest="auth_password"),
    _f(
        "subscribed_events",
        Kind.LIST,
        risk="EVENTS_CHANGED",
        manifest="events",
        set_like=True,
    ),
    _f(
        "retry_max_attempts",
        Kind.INT,
        risk="RETRY_POLICY",
        desired="retry.max_attempts",
        manifest="retry.max_attempts",
    ),
    _f(
        "retry_initial_delay_seconds",
        Kind.INT,
        risk="RETRY_POLICY",
        desired="retry.initial_delay_seconds",
        manifest="retry.initial_delay_seconds",
    ),
    _f(
        "retry_backoff_multiplier",
        Kind.FLOAT,
        risk="RETRY_POLICY",
        desired="retry.multiplier",
        manifest="retry.multiplier",
    ),
    _f(
        "retry_max_delay_seconds",
        Kind.INT,
        risk="RETRY_POLICY",
        desired="retry.max_delay_seconds",
        manifest="retry.max_delay_seconds",
    ),
    _f(
        "circuit_breaker_threshold",
        Kind.INT,
        risk="CIRCUIT_BREAKER",
        manifest="circuit_breaker.failure_threshold",
    ),
    _f(
        "circuit_breaker_reset_seconds",
        Kind.INT,
        risk="CIRCUIT_BREAKER",
        manifest="circuit_breaker.reset_after_seconds",
    ),
    _active(),
)
"""``webhook_configurations``, in the order of :class:`~reconciler.model.desired.DesiredWebhook`
(whose ``retry`` groups the four ``retry_*`` fields)."""

ACCOUNT_ID: Final = _f("account_id", Kind.TEXT, identity=True, column=False)
"""An account's id: the store computes it from the platform's own column."""

OAUTH_ACCOUNT_FIELDS: Final[tuple[FieldSpec, ...]] = (
    _TENANT,
    _PLATFORM,
    _f("environment", Kind.ENUM, identity=True, enum=Environment, column=False),
    ACCOUNT_ID,
    _f("stripe_livemode", Kind.BOOL, manifest="livemode"),
    _f("hubspot_app_id", Kind.TEXT, manifest="app_id"),
    _f("hubspot_user_id", Kind.TEXT, manifest="user_id"),
    _f("revoke_reason", Kind.TEXT, risk="TOKEN_REVOKE", manifest="revoke.reason", column=False),
)
"""An expected connected account (``oauth_tokens`` identity), in the order of
:class:`~reconciler.model.desired.DesiredOAuthAccount`. ``account_id`` is the platform's
account column (``stripe_account_id``, ``hubspot_portal_id``, ``quickbooks_realm_id``)."""

TOKEN_FIELDS: Final[tuple[FieldSpec, ...]] = (
    _ROW_ID,
    _TENANT,
    _PLATFORM,
    OAUTH_ACCOUNT_FIELDS[3],
    OAUTH_ACCOUNT_FIELDS[4],
    OAUTH_ACCOUNT_FIELDS[5],
    _f("is_active", Kind.BOOL, owner=Owner.RUNTIME),
    _f("revoked_at", Kind.TIMESTAMP, owner=Owner.RUNTIME),
    _ROW_VERSION,
    _f("managed_since", Kind.TIMESTAMP, owner=Owner.RUNTIME, risk="ADOPT_ACCOUNT"),
)
"""The ``oauth_tokens`` columns a plan reads, in the order of
:class:`~reconciler.model.actual.ActualToken` (token material is never read)."""

ROW_FIELDS: Final[tuple[FieldSpec, ...]] = (_ROW_ID, _DELETED_AT, _ROW_VERSION)
"""Runtime-owned columns every configuration row is read with."""

MANAGED: Final = "managed"
"""The plan field of a token that becomes managed (recorded in ``managed_since``)."""

FIELD_RULES: Final[Mapping[str, str]] = {
    **{
        f.name: f.risk
        for f in (*INTEGRATION_FIELDS, *WEBHOOK_FIELDS)
        if f.risk is not None and not f.secret
    },
    MANAGED: "ADOPT_ACCOUNT",
}
"""Plan field name -> the risk rule a change of it matches (secrets match SECRET_CHANGED)."""


def secrets_of(fields: tuple[FieldSpec, ...]) -> tuple[FieldSpec, ...]:
    """The secret fields."""
    return tuple(f for f in fields if f.secret)


def plain_of(fields: tuple[FieldSpec, ...]) -> tuple[FieldSpec, ...]:
    """The reconciled fields that are not secrets (compared by value)."""
    return tuple(f for f in fields if f.reconciled and not f.secret)


def identity_of(fields: tuple[FieldSpec, ...]) -> tuple[FieldSpec, ...]:
    """The identity fields."""
    return tuple(f for f in fields if f.identity)


INTEGRATION_SECRETS: Final = tuple(f.name for f in secrets_of(INTEGRATION_FIELDS))
WEBHOOK_SECRETS: Final = tuple(f.name for f in secrets_of(WEBHOOK_FIELDS))


def attribute_path(path: str, root: str = "obj", *, none_safe: bool = False) -> str:
    """The expression reading ``root.path`` (dotted); ``none_safe``: a None step reads None.

    Raises ``ValueError`` unless every step is an identifier, so only names from the field
    table reach :func:`compile_record`.
    """
    steps = path.split(".")
    if not all(step.isidentifier() for step in (root, *steps)):
        raise ValueError(f"not an attribute path: {path!r}")
    expression = f"{root}.{steps[0]}"
    for step in steps[1:]:
        expression = (
            f"(None if {expression} is None else {expression}.{step})"
            if none_safe
            else f"{expression}.{step}"
        )
    return expression


def call(helper: str, expression: str) -> str:
    """``helper(expression)``; ``helper`` must be an identifier (``""``: no call)."""
    if not helper:
        return expression
    if not helper.isidentifier():
        raise ValueError(f"not a helper name: {helper!r}")
    return f"{helper}({expression})"


def compile_record(
    items: Sequence[tuple[str, str]],
    helpers: Mapping[str, object] | None = None,
    params: str = "obj",
) -> Callable[..., dict[str, Any]]:
    """A function ``(params) -> {key: expression}`` compiled once from the field table.

    The expressions are built with :func:`attribute_path` and :func:`call` (names from
    the table and helper names only). The diff, the store and state building run these per
    object at fleet scale, where one generated dict display is several times faster than a
    loop over getters (the technique :mod:`dataclasses` uses for ``__init__``).
    """
    if not all(p.strip().isidentifier() for p in params.split(",")):
        raise ValueError(f"not parameter names: {params!r}")
    body = ", ".join(f"{key!r}: {expression}" for key, expression in items)
    source = f"def record({params}):\n    return {{{body}}}\n"
    namespace: dict[str, Any] = dict(helpers or {})
    exec(source, namespace)  # noqa: S102 - only identifiers from the table reach the source
    record: Callable[..., dict[str, Any]] = namespace["record"]
    return record
