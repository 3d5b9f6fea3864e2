"""The field table: every field the reconciler reads, compares or writes, declared once.

Each :class:`~reconciler.model.field_spec.FieldSpec` says what a field is called (on the
model objects, in the plan, in the manifest and in the database), what type it has, whether
it is a secret, who owns it (the manifests, or the application at run time) and which risk
rule a change of it matches. The model objects of each entity are declared right after its
row of the table: the desired object (what the manifests say, built by ``reconciler.load``)
and the actual one (what PostgreSQL holds, read by ``store.read``, with the ``row_version``
every write bumps and a saved plan pins; a secret appears there only as its
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
from typing import Any, Final

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
from reconciler.model.plan import Address, ResourceKind
from reconciler.model.sensitive import Sensitive
from reconciler.model.values import JSONValue, SecretDoubt, SecretValue, Source

# -- integrations ---------------------------------------------------------------------

_TENANT = spec("tenant_id", Kind.TEXT, identity=True, manifest="tenant")
_PLATFORM = spec(
    "platform", Kind.ENUM, "platform", identity=True, enum=Platform, manifest="platform"
)
_ENVIRONMENT = spec("environment", Kind.ENUM, "environment", identity=True, enum=Environment)
_ROW_ID = spec("id", Kind.INT, "bigint", owner=Owner.RUNTIME)
_DELETED_AT = spec("deleted_at", Kind.TIMESTAMP, owner=Owner.RUNTIME)
_ROW_VERSION = spec("row_version", Kind.INT, owner=Owner.RUNTIME)


def _active(manifest: str = "active") -> FieldSpec:
    return spec("is_active", Kind.BOOL, risk="ACTIVATE", manifest=manifest)


INTEGRATION_FIELDS: Final[tuple[FieldSpec, ...]] = (
    _TENANT,
    _PLATFORM,
    _ENVIRONMENT,
    spec("config_type", Kind.ENUM, "config_type", identity=True, enum=ConfigType),
    spec("is_primary", Kind.BOOL, risk="PRIMARY_SWITCH", manifest="primary"),
    _active(),
    spec("api_key", Kind.SECRET, risk="SECRET_CHANGED", manifest="api_key"),
    spec("api_secret", Kind.SECRET, risk="SECRET_CHANGED", manifest="api_secret"),
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
    spec("endpoint_url", Kind.TEXT, risk="ENDPOINT_URL", manifest="endpoint_url"),
    spec(
        "auth_type",
        Kind.ENUM,
        "auth_type",
        risk="AUTH_TYPE_CHANGED",
        enum=AuthType,
        manifest="auth_type",
    ),
    spec("signing_secret", Kind.SECRET, risk="SECRET_CHANGED", manifest="signing_secret"),
    spec("auth_token", Kind.SECRET, risk="SECRET_CHANGED", manifest="auth_token"),
    spec("auth_password", Kind.SECRET, risk="SECRET_CHANGED", manifest="auth_password"),
    spec(
        "subscribed_events",
        Kind.LIST,
        risk="EVENTS_CHANGED",
        manifest="events",
        set_like=True,
    ),
    spec(
        "retry_max_attempts",
        Kind.INT,
        risk="RETRY_POLICY",
        desired="retry.max_attempts",
        manifest="retry.max_attempts",
    ),
    spec(
        "retry_initial_delay_seconds",
        Kind.INT,
        risk="RETRY_POLICY",
        desired="retry.initial_delay_seconds",
        manifest="retry.initial_delay_seconds",
    ),
    spec(
        "retry_backoff_multiplier",
        Kind.FLOAT,
        risk="RETRY_POLICY",
        desired="retry.multiplier",
        manifest="retry.multiplier",
    ),
    spec(
        "retry_max_delay_seconds",
        Kind.INT,
        risk="RETRY_POLICY",
        desired="retry.max_delay_seconds",
        manifest="retry.max_delay_seconds",
    ),
    spec(
        "circuit_breaker_threshold",
        Kind.INT,
        risk="CIRCUIT_BREAKER",
        manifest="circuit_breaker.failure_threshold",
    ),
    spec(
        "circuit_breaker_reset_seconds",
        Kind.INT,
        risk="CIRCUIT_BREAKER",
        manifest="circuit_breaker.reset_after_seconds",
    ),
    _active(),
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

OAUTH_ACCOUNT_FIELDS: Final[tuple[FieldSpec, ...]] = (
    _TENANT,
    _PLATFORM,
    spec("environment", Kind.ENUM, identity=True, enum=Environment, column=False),
    ACCOUNT_ID,
    spec("stripe_livemode", Kind.BOOL, manifest="livemode"),
    spec("hubspot_app_id", Kind.TEXT, manifest="app_id"),
    spec("hubspot_user_id", Kind.TEXT, manifest="user_id"),
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


TOKEN_FIELDS: Final[tuple[FieldSpec, ...]] = (
    _ROW_ID,
    _TENANT,
    _PLATFORM,
    OAUTH_ACCOUNT_FIELDS[3],
    OAUTH_ACCOUNT_FIELDS[4],
    OAUTH_ACCOUNT_FIELDS[5],
    spec("is_active", Kind.BOOL, owner=Owner.RUNTIME),
    spec("revoked_at", Kind.TIMESTAMP, owner=Owner.RUNTIME),
    _ROW_VERSION,
    spec("managed_since", Kind.TIMESTAMP, owner=Owner.RUNTIME, risk="ADOPT_ACCOUNT"),
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


# -- derived --------------------------------------------------------------------------

DESIRED_ENTITIES: Final = (
    (INTEGRATION_FIELDS, DesiredIntegration),
    (WEBHOOK_FIELDS, DesiredWebhook),
    (OAUTH_ACCOUNT_FIELDS, DesiredOAuthAccount),
)
"""Each entity's fields with its desired object, in the order of the collections of
:class:`~reconciler.model.desired.DesiredState`."""

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


INTEGRATION_SECRETS: Final = tuple(f.name for f in secrets_of(INTEGRATION_FIELDS))
WEBHOOK_SECRETS: Final = tuple(f.name for f in secrets_of(WEBHOOK_FIELDS))
