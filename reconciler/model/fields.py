"""The field table: every field the reconciler reads, compares or writes, declared once.

Each :class:`~reconciler.model.field_spec.FieldSpec` says what a field is called (on the
model objects, in the plan, in the manifest and in the database), what type it has, whether
it is a secret, who owns it (the manifests, or the application at run time) and which risk
rule a change of it matches. The model objects of each entity are declared right after its
row of the table: the desired object (what the manifests say, built by ``reconciler.load``)
and the actual one (what PostgreSQL holds, read by ``store.read``, with the version
every write bumps and a saved plan pins, :data:`ROW_VERSION`; a secret appears there only as its
``<column>_fingerprint``); an integration also has the view the services'
client returns (:class:`ActiveConfig`). The diff, the risk rules, the store's reads and
writes, the load cache, the import and the services' client iterate these tuples instead of
listing fields by hand, so adding a field is adding a row here and an attribute to the
objects beside it (plus its pydantic model field and its column).

The order of each tuple is the order of the attributes of the desired objects and of the
load cache's flat rows; changing it changes the cache format.

Pure data, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, TypeAlias

from reconciler.model.enums import (
    AuthType,
    ConfigType,
    Environment,
    Platform,
    SyncDirection,
    WebhookType,
)

# Re-exported (``name as name``): the table's vocabulary, for the modules that read the
# table and build their per-field code from it.
from reconciler.model.field_spec import FieldSpec as FieldSpec
from reconciler.model.field_spec import Kind as Kind
from reconciler.model.field_spec import Owner as Owner
from reconciler.model.field_spec import attribute_path as attribute_path
from reconciler.model.field_spec import call as call
from reconciler.model.field_spec import compile_record as compile_record
from reconciler.model.field_spec import identity_of as identity_of
from reconciler.model.field_spec import plain_of as plain_of
from reconciler.model.field_spec import secrets_of as secrets_of
from reconciler.model.field_spec import spec
from reconciler.model.plan import Address, ResourceKind, RowRef
from reconciler.model.sensitive import Sensitive
from reconciler.model.values import JSONValue, SecretDoubt, SecretValue, Source

# -- integrations ---------------------------------------------------------------------

_TENANT = spec("tenant_id", Kind.TEXT, identity=True, manifest="tenant")
_PLATFORM = spec(
    "platform", Kind.ENUM, "platform", identity=True, enum=Platform, manifest="platform"
)
_ENVIRONMENT = spec("environment", Kind.ENUM, "environment", identity=True, enum=Environment)
ROW_ID: Final = spec("id", Kind.INT, "bigint", owner=Owner.RUNTIME)
DELETED_AT: Final = spec("deleted_at", Kind.TIMESTAMP, owner=Owner.RUNTIME)
"""When a configuration row was soft-deleted (``None``: live)."""
ROW_VERSION: Final = spec("row_version", Kind.INT, owner=Owner.RUNTIME)
"""The optimistic version every write of a row bumps and a saved plan pins."""
ACTIVE: Final = spec("is_active", Kind.BOOL, risk="ACTIVATE", manifest="active")
"""Whether an integration or a webhook is switched on."""

API_KEY: Final = spec("api_key", Kind.SECRET, risk="SECRET_CHANGED", manifest="api_key")
API_SECRET: Final = spec("api_secret", Kind.SECRET, risk="SECRET_CHANGED", manifest="api_secret")


INTEGRATION_FIELDS: Final[tuple[FieldSpec, ...]] = (
    _TENANT,
    _PLATFORM,
    _ENVIRONMENT,
    spec("config_type", Kind.ENUM, "config_type", identity=True, enum=ConfigType),
    spec("is_primary", Kind.BOOL, risk="PRIMARY_SWITCH", manifest="primary"),
    ACTIVE,
    API_KEY,
    API_SECRET,
    spec(
        "sync_interval",
        Kind.INT,
        risk="SYNC_INTERVAL",
        manifest="sync.interval_minutes",
        schedules=True,
    ),
    spec(
        "sync_direction",
        Kind.ENUM,
        "sync_direction",
        risk="SYNC_DIRECTION",
        enum=SyncDirection,
        manifest="sync.direction",
    ),
    spec("features", Kind.JSON, risk="FEATURE_TOGGLE", manifest="features"),
    spec("mapping_rules", Kind.JSON, risk="RULES_CHANGED", manifest="mapping_rules"),
    spec("filter_rules", Kind.JSON, risk="RULES_CHANGED", manifest="filter_rules"),
    spec("transform_rules", Kind.JSON, risk="RULES_CHANGED", manifest="transform_rules"),
)
"""``integration_configs``, in the order of
:class:`DesiredIntegration`."""


@dataclass(frozen=True, slots=True)
class DesiredIntegration:
    """One ``integration_configs`` row as declared.

    Identity: ``(tenant_id, platform, environment, config_type)``.
    """

    tenant_id: str
    platform: Platform
    environment: Environment
    config_type: ConfigType
    is_primary: bool
    is_active: bool
    api_key: SecretValue | None
    api_secret: SecretValue | None
    sync_interval: int | None
    sync_direction: SyncDirection | None
    features: Mapping[str, JSONValue]
    mapping_rules: Mapping[str, JSONValue]
    filter_rules: Mapping[str, JSONValue]
    transform_rules: Mapping[str, JSONValue]
    source: Source

    @property
    def address(self) -> Address:
        """The plan address of this integration."""
        return Address(
            self.tenant_id,
            self.platform,
            self.environment,
            ResourceKind.INTEGRATION,
            self.config_type.value,
        )


@dataclass(frozen=True, slots=True)
class ActualIntegration:
    id: int
    tenant_id: str
    platform: Platform
    environment: Environment
    config_type: ConfigType
    is_primary: bool
    is_active: bool
    api_key_fingerprint: str | None
    api_secret_fingerprint: str | None
    sync_interval: int | None
    sync_direction: SyncDirection | None
    features: Mapping[str, JSONValue]
    mapping_rules: Mapping[str, JSONValue]
    filter_rules: Mapping[str, JSONValue]
    transform_rules: Mapping[str, JSONValue]
    deleted_at: datetime | None
    row_version: int
    doubted: Mapping[str, SecretDoubt] = field(default_factory=dict)
    """Secret columns whose stored value is not provably their fingerprint's (see above)."""

    @property
    def live(self) -> bool:
        """Not soft-deleted."""
        return self.deleted_at is None


@dataclass(frozen=True, slots=True)
class ActiveConfig:
    """An active primary integration of a tenant as the services' client returns it
    (:meth:`reconciler.runtime.RuntimeSession.active_config`), its secrets decrypted.

    Attributes:
        id: the row id.
        config_type: ``API_KEY``, ``WEBHOOK``, ``OAUTH`` or ``SETTINGS``.
        api_key: the decrypted API key, or ``None`` when none is stored.
        api_secret: the decrypted API secret, or ``None``.
        key_version: the keyring version the secrets are encrypted with.
        features, mapping_rules, filter_rules, transform_rules: the JSON columns.
        health_status: the last health verdict.
    """

    id: int
    tenant_id: str
    platform: Platform
    environment: Environment
    config_type: str
    api_key: Sensitive[str] | None
    api_secret: Sensitive[str] | None
    key_version: int | None
    sync_interval: int | None
    sync_direction: str | None
    features: Mapping[str, Any]
    mapping_rules: Mapping[str, Any]
    filter_rules: Mapping[str, Any]
    transform_rules: Mapping[str, Any]
    health_status: str


# -- webhooks -------------------------------------------------------------------------

ENDPOINT_URL: Final = spec("endpoint_url", Kind.TEXT, risk="ENDPOINT_URL", manifest="endpoint_url")
AUTH_TYPE: Final = spec(
    "auth_type",
    Kind.ENUM,
    "auth_type",
    risk="AUTH_TYPE_CHANGED",
    enum=AuthType,
    manifest="auth_type",
)
SIGNING_SECRET: Final = spec(
    "signing_secret", Kind.SECRET, risk="SECRET_CHANGED", manifest="signing_secret"
)
AUTH_TOKEN: Final = spec("auth_token", Kind.SECRET, risk="SECRET_CHANGED", manifest="auth_token")
AUTH_PASSWORD: Final = spec(
    "auth_password", Kind.SECRET, risk="SECRET_CHANGED", manifest="auth_password"
)
CIRCUIT_RESET: Final = spec(
    "circuit_breaker_reset_seconds",
    Kind.INT,
    risk="CIRCUIT_BREAKER",
    manifest="circuit_breaker.reset_after_seconds",
)
"""How long an open circuit waits before it may half-open (``None`` in a row: the default)."""


def _retry(name: str, attribute: str, kind: Kind = Kind.INT) -> FieldSpec:
    """A retry policy field: ``retry.<attribute>`` on the desired object and the manifest."""
    path = f"retry.{attribute}"
    return spec(name, kind, risk="RETRY_POLICY", desired=path, manifest=path)


WEBHOOK_FIELDS: Final[tuple[FieldSpec, ...]] = (
    _TENANT,
    _PLATFORM,
    _ENVIRONMENT,
    spec("name", Kind.TEXT, identity=True),
    spec(
        "webhook_type",
        Kind.ENUM,
        "webhook_type",
        risk="WEBHOOK_TYPE",
        enum=WebhookType,
        manifest="type",
    ),
    ENDPOINT_URL,
    AUTH_TYPE,
    SIGNING_SECRET,
    AUTH_TOKEN,
    AUTH_PASSWORD,
    spec(
        "subscribed_events",
        Kind.LIST,
        risk="EVENTS_CHANGED",
        manifest="events",
        set_like=True,
    ),
    _retry("retry_max_attempts", "max_attempts"),
    _retry("retry_initial_delay_seconds", "initial_delay_seconds"),
    _retry("retry_backoff_multiplier", "multiplier", Kind.FLOAT),
    _retry("retry_max_delay_seconds", "max_delay_seconds"),
    spec(
        "circuit_breaker_threshold",
        Kind.INT,
        risk="CIRCUIT_BREAKER",
        manifest="circuit_breaker.failure_threshold",
    ),
    CIRCUIT_RESET,
    ACTIVE,
)
"""``webhook_configurations``, in the order of :class:`DesiredWebhook`
(whose ``retry`` groups the four ``retry_*`` fields)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    initial_delay_seconds: int
    multiplier: float
    max_delay_seconds: int


@dataclass(frozen=True, slots=True)
class DesiredWebhook:
    """One ``webhook_configurations`` row as declared.

    Identity: ``(tenant_id, platform, environment, name)``. ``subscribed_events`` keeps the
    manifest's order but is compared as a set (order of subscriptions has no meaning).
    """

    tenant_id: str
    platform: Platform
    environment: Environment
    name: str
    webhook_type: WebhookType
    endpoint_url: str
    auth_type: AuthType
    signing_secret: SecretValue | None
    auth_token: SecretValue | None
    auth_password: SecretValue | None
    subscribed_events: tuple[str, ...]
    retry: RetryPolicy
    circuit_breaker_threshold: int
    circuit_breaker_reset_seconds: int
    is_active: bool
    source: Source

    @property
    def address(self) -> Address:
        """The plan address of this webhook."""
        return Address(
            self.tenant_id, self.platform, self.environment, ResourceKind.WEBHOOK, self.name
        )


@dataclass(frozen=True, slots=True)
class ActualWebhook:
    """A ``webhook_configurations`` row; the retry and circuit-breaker columns are nullable
    (``None``: the row has no value, which a manifest cannot express)."""

    id: int
    tenant_id: str
    platform: Platform
    environment: Environment
    name: str
    webhook_type: WebhookType
    endpoint_url: str
    auth_type: AuthType
    signing_secret_fingerprint: str | None
    auth_token_fingerprint: str | None
    auth_password_fingerprint: str | None
    subscribed_events: tuple[str, ...]
    retry_max_attempts: int | None
    retry_initial_delay_seconds: int | None
    retry_backoff_multiplier: float | None
    retry_max_delay_seconds: int | None
    circuit_breaker_threshold: int | None
    circuit_breaker_reset_seconds: int | None
    is_active: bool
    deleted_at: datetime | None
    row_version: int
    doubted: Mapping[str, SecretDoubt] = field(default_factory=dict)
    """Secret columns whose stored value is not provably their fingerprint's."""

    @property
    def live(self) -> bool:
        """Not soft-deleted."""
        return self.deleted_at is None


# -- OAuth accounts and tokens --------------------------------------------------------

ACCOUNT_ID: Final = spec("account_id", Kind.TEXT, identity=True, column=False)
"""An account's id: the store computes it from the platform's own column."""

LIVEMODE: Final = spec("stripe_livemode", Kind.BOOL, manifest="livemode")
HUBSPOT_APP: Final = spec("hubspot_app_id", Kind.TEXT, manifest="app_id")
HUBSPOT_USER: Final = spec("hubspot_user_id", Kind.TEXT, manifest="user_id")

OAUTH_ACCOUNT_FIELDS: Final[tuple[FieldSpec, ...]] = (
    _TENANT,
    _PLATFORM,
    spec("environment", Kind.ENUM, identity=True, enum=Environment, column=False),
    ACCOUNT_ID,
    LIVEMODE,
    HUBSPOT_APP,
    HUBSPOT_USER,
    spec("revoke_reason", Kind.TEXT, risk="TOKEN_REVOKE", manifest="revoke.reason", column=False),
)
"""An expected connected account (``oauth_tokens`` identity), in the order of
:class:`DesiredOAuthAccount`. ``account_id`` is the platform's
account column (``stripe_account_id``, ``hubspot_portal_id``, ``quickbooks_realm_id``)."""


@dataclass(frozen=True, slots=True)
class DesiredOAuthAccount:
    """An expected connected account (an ``oauth_tokens`` identity), not the token itself.

    Identity: ``(tenant_id, platform, account_id)`` where ``account_id`` is the Stripe
    ``acct_...`` id, the HubSpot portal id, or the QuickBooks realm id. Tokens are created by
    the OAuth flow at run time; the reconciler only checks that the right accounts are
    connected and revokes the ones asked for (``revoke_reason``) or not declared (with prune).
    """

    tenant_id: str
    platform: Platform
    environment: Environment
    account_id: str
    stripe_livemode: bool | None = None
    hubspot_app_id: str | None = None
    hubspot_user_id: str | None = None
    revoke_reason: str | None = None
    source: Source = field(default_factory=lambda: Source(""))


TOKEN_ACTIVE: Final = spec("is_active", Kind.BOOL, owner=Owner.RUNTIME)
"""Whether a token may be used (revoking it switches it off)."""
REVOKED_AT: Final = spec("revoked_at", Kind.TIMESTAMP, owner=Owner.RUNTIME)
"""When a token was revoked (``None``: not revoked)."""
MANAGED_SINCE: Final = spec(
    "managed_since", Kind.TIMESTAMP, owner=Owner.RUNTIME, risk="ADOPT_ACCOUNT"
)
"""When apply first found a token's account declared (``None``: unmanaged)."""

TOKEN_FIELDS: Final[tuple[FieldSpec, ...]] = (
    ROW_ID,
    _TENANT,
    _PLATFORM,
    ACCOUNT_ID,
    LIVEMODE,
    HUBSPOT_APP,
    TOKEN_ACTIVE,
    REVOKED_AT,
    ROW_VERSION,
    MANAGED_SINCE,
)
"""The ``oauth_tokens`` columns a plan reads, in the order of
:class:`ActualToken` (token material is never read)."""


@dataclass(frozen=True, slots=True)
class ActualToken:
    """An ``oauth_tokens`` row, identity columns only (token material is never read)."""

    id: int
    tenant_id: str
    platform: Platform
    account_id: str | None
    """Stripe account id, HubSpot portal id or QuickBooks realm id; None if the row has none."""
    stripe_livemode: bool | None
    hubspot_app_id: str | None
    is_active: bool
    revoked_at: datetime | None
    row_version: int
    managed_since: datetime | None = None
    """When apply first found the account declared; None: no manifest has declared it
    since the token was written (an *unmanaged* token, which ``--prune`` alone never revokes)."""

    @property
    def live(self) -> bool:
        """Active and not revoked: the token can be used, and revoking it is a change."""
        return self.is_active and self.revoked_at is None

    @property
    def managed(self) -> bool:
        """A manifest has declared the account since the token was written."""
        return self.managed_since is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class ActualAccount(ActualToken):
    """A token row with every account column a manifest can declare (what ``import`` reads)."""

    hubspot_user_id: str | None


# -- derived --------------------------------------------------------------------------

DESIRED_ENTITIES: Final = (
    (INTEGRATION_FIELDS, DesiredIntegration),
    (WEBHOOK_FIELDS, DesiredWebhook),
    (OAUTH_ACCOUNT_FIELDS, DesiredOAuthAccount),
)
"""Each entity's fields with its desired object, in the order of the collections of
:class:`~reconciler.model.desired.DesiredState`."""

ROW_FIELDS: Final[tuple[FieldSpec, ...]] = (ROW_ID, DELETED_AT, ROW_VERSION)
"""Runtime-owned columns every configuration row is read with."""

ActualRow: TypeAlias = ActualIntegration | ActualWebhook | ActualToken


def row_of(actual: ActualRow | None) -> tuple[int | None, int | None]:
    """The id and version of the row ``actual`` was read from (``None``s: no row)."""
    return (None, None) if actual is None else (actual.id, actual.row_version)


def row_ref(table: str, actual: ActualRow) -> RowRef:
    """The read-set entry of ``actual``: its table, id and version."""
    return RowRef(table, actual.id, actual.row_version)


MANAGED: Final = "managed"
"""The plan field of a token that becomes managed (recorded in :data:`MANAGED_SINCE`)."""

FIELD_RULES: Final[Mapping[str, str]] = {
    **{
        f.name: f.risk
        for f in (*INTEGRATION_FIELDS, *WEBHOOK_FIELDS)
        if f.risk is not None and not f.secret
    },
    MANAGED: "ADOPT_ACCOUNT",
}
"""Plan field name -> the risk rule a change of it matches (secrets match SECRET_CHANGED)."""


INTEGRATION_SECRETS: Final = tuple(f.name for f in secrets_of(INTEGRATION_FIELDS))
WEBHOOK_SECRETS: Final = tuple(f.name for f in secrets_of(WEBHOOK_FIELDS))
