"""The manifest format (``apiVersion: reconciler/v1``) as pydantic v2 models.

These models are the single source of the format: :mod:`reconciler.load.analyze` checks every
manifest against them, and ``reconciler schema export`` turns them into
``schemas/manifest.v1.json`` and ``schemas/template.v1.json`` for editors. Every model
forbids unknown fields. Field descriptions end up in the JSON Schema, so they are written for
the person editing a manifest.

The models validate the *encrypted* form of a document: secret fields hold SOPS
``ENC[...]`` strings. Decryption happens afterwards (the MAC covers the encrypted form).

Constraints that a JSON Schema can express (ranges, patterns, enums) live here; rules that
need more (catalogs, URLs, environments, other files) live in :mod:`reconciler.load.rules`.
One model family exists per platform so each platform's OAuth account shape and event
catalog is exact; :func:`config_model` picks it.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.config import JsonDict

from reconciler.model.enums import AuthType, Platform, SyncDirection, WebhookType
from reconciler.model.fields import INTEGRATION_FIELDS, REVOKED_AT, ROW_FIELDS, WEBHOOK_FIELDS

API_VERSION = "reconciler/v1"
CONFIG_KIND = "PlatformConfig"
TEMPLATE_KIND = "PlatformTemplate"

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
"""Tenant, template and webhook names: lower-case letters, digits and dashes, 1-63 long."""

ENC_PATTERN = (
    r"^ENC\[AES256_GCM,data:[A-Za-z0-9+/=]*,iv:[A-Za-z0-9+/=]+,tag:[A-Za-z0-9+/=]+,type:[a-z]+\]$"
)
"""A SOPS-encrypted scalar. Secret fields must match it."""

SECRET_FIELDS = frozenset(f.manifest for f in (*INTEGRATION_FIELDS, *WEBHOOK_FIELDS) if f.secret)
"""Fields whose values must be SOPS-encrypted (the ``encrypted_regex`` of ``.sops.yaml``)."""

RUNTIME_OWNED_FIELDS = frozenset(
    {
        "health_status",
        "last_health_check_at",
        "last_sync_at",
        "next_sync_at",
        "last_sync_status",
        "last_error",
        "error_count",
        "circuit_breaker_status",
        "consecutive_failures",
        "total_trigger_count",
        "total_success_count",
        "total_failure_count",
        "last_triggered_at",
        "last_success_at",
        "last_failure_at",
        "opened_at",
        "tokens",
        "token",
        "access_token",
        "refresh_token",
        "expires_at",
        "issued_at",
        REVOKED_AT.column_name,
        "revoked_by",
        *(f.column_name for f in ROW_FIELDS),
        "version",
        "created_at",
        "updated_at",
        "created_by",
        "updated_by",
        "encryption_key_version",
    }
)
"""Columns the running system owns (observed state). Manifests may not set them."""

# Bounds shared by the models and the error messages (docs/domain-rules.md: RCN-WH-8/9).
SYNC_INTERVAL = (1, 10080)
RETRY_MAX_ATTEMPTS = (1, 25)
RETRY_INITIAL_DELAY = (1, 300)
RETRY_MULTIPLIER = (1.5, 10)
RETRY_MAX_DELAY = (1, 21600)
BREAKER_THRESHOLD = (1, 100)
BREAKER_RESET = (10, 3600)
INT64_MAX = 2**63 - 1

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
EncryptedSecret = Annotated[
    str,
    StringConstraints(strict=True, pattern=ENC_PATTERN),
    Field(
        description="A secret, SOPS-encrypted (`ENC[AES256_GCM,...]`). Plaintext is refused: "
        "run `sops encrypt --in-place FILE` (the repository's .sops.yaml encrypts exactly the "
        "secret fields)."
    ),
]
StrictStr = Annotated[str, Field(strict=True)]
StrictBool = Annotated[bool, Field(strict=True)]
FreeForm = Annotated[
    dict[str, Any],
    Field(
        description="Free-form mapping stored as JSONB. Values must be JSON: quote dates, and "
        "never put credentials here (they are refused even inside free-form maps)."
    ),
]


def _bounded_int(bounds: tuple[int, int], description: str, default: int | None = None) -> Any:
    lo, hi = bounds
    if default is None:
        return Field(strict=True, ge=lo, le=hi, description=description)
    return Field(default, strict=True, ge=lo, le=hi, description=description)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --------------------------------------------------------------------------- integrations


class Sync(_Model):
    """How often and in which direction a sync runs."""

    interval_minutes: int = _bounded_int(
        SYNC_INTERVAL,
        "Minutes between syncs, 1..10080 (one week). Below 5 draws a warning: production "
        "webhooks aggregate over 1-5 minutes and rate limits make faster polling useless.",
    )
    direction: SyncDirection = Field(
        description="INBOUND (platform to hub), OUTBOUND (hub to platform) or BIDIRECTIONAL."
    )


class Integration(_Model):
    """One ``integration_configs`` row; its key in ``integrations`` is the config type."""

    primary: StrictBool = Field(
        False,
        description="The primary config of this platform and environment. At most one "
        "integration per environment may be primary.",
    )
    active: StrictBool = Field(True, description="Whether the integration is enabled.")
    api_key: EncryptedSecret | None = None
    api_secret: EncryptedSecret | None = None
    sync: Sync | None = Field(None, description="Sync schedule; omit for no scheduled sync.")
    features: FreeForm = Field(default_factory=dict)
    mapping_rules: FreeForm = Field(default_factory=dict)
    filter_rules: FreeForm = Field(default_factory=dict)
    transform_rules: FreeForm = Field(default_factory=dict)


class Integrations(_Model):
    """Integrations of one environment, keyed by config type (one of each at most)."""

    API_KEY: Integration | None = None
    WEBHOOK: Integration | None = None
    OAUTH: Integration | None = None
    SETTINGS: Integration | None = None


# --------------------------------------------------------------------------- webhooks


class Retry(_Model):
    """Retry policy for deliveries (exponential backoff). Omitted fields take the defaults."""

    max_attempts: int = _bounded_int(RETRY_MAX_ATTEMPTS, "Attempts per event, 1..25.", 5)
    initial_delay_seconds: int = _bounded_int(
        RETRY_INITIAL_DELAY, "Delay before the first retry, 1..300 seconds.", 30
    )
    multiplier: float = Field(
        2.0,
        strict=True,
        ge=RETRY_MULTIPLIER[0],
        le=RETRY_MULTIPLIER[1],
        description="Backoff factor between retries, 1.5..10.",
    )
    max_delay_seconds: int = _bounded_int(
        RETRY_MAX_DELAY,
        "Longest delay between retries, at most 21600 seconds (6 hours) and not below "
        "initial_delay_seconds.",
        3600,
    )


class CircuitBreaker(_Model):
    """When to stop delivering to a failing endpoint. Omitted fields take the defaults."""

    failure_threshold: int = _bounded_int(
        BREAKER_THRESHOLD, "Consecutive failures that open the circuit, 1..100.", 5
    )
    reset_after_seconds: int = _bounded_int(
        BREAKER_RESET, "Seconds before an open circuit is tried again, 10..3600.", 300
    )


def _events_field(platform: Platform) -> Any:
    # Imported here: the platform modules import the file types, which name this module's
    # PlatformConfig.
    from reconciler.load.platforms import rules_for

    platform_rules = rules_for(platform)
    return Field(
        min_length=1,
        description="Event names from the platform's catalog, without duplicates. "
        + platform_rules.events_description,
        json_schema_extra={"items": platform_rules.events_json_schema()},
    )


class _WebhookBase(_Model):
    type: WebhookType = Field(
        description="INBOUND: the platform calls us (must be signed). OUTBOUND: we call the "
        "endpoint."
    )
    endpoint_url: StrictStr = Field(
        description="Public `https://` URL: no localhost, private, loopback or link-local "
        "address, no `user:pass@`, no `#fragment`; no port other than 443 in production.",
    )
    auth_type: AuthType = Field(
        description="How requests are authenticated. Inbound webhooks of Stripe, HubSpot and "
        "QuickBooks use SIGNATURE (with signing_secret); BEARER and API_KEY need auth_token, "
        "BASIC needs auth_password."
    )
    signing_secret: EncryptedSecret | None = None
    auth_token: EncryptedSecret | None = None
    auth_password: EncryptedSecret | None = None
    retry: Retry = Field(default_factory=Retry)
    circuit_breaker: CircuitBreaker = Field(default_factory=CircuitBreaker)
    active: StrictBool = Field(True, description="Whether deliveries are enabled.")


class StripeWebhook(_WebhookBase):
    """A Stripe webhook endpoint (one ``whsec_`` signing secret per endpoint)."""

    events: list[StrictStr] = _events_field(Platform.STRIPE)


class HubSpotWebhook(_WebhookBase):
    """A HubSpot webhook. Inbound HubSpot webhooks belong to the app: every tenant connected
    to the same app (``oauth_accounts[].app_id``) must declare the same endpoint_url."""

    events: list[StrictStr] = _events_field(Platform.HUBSPOT)


class QuickBooksWebhook(_WebhookBase):
    """A QuickBooks Online webhook. Inbound ones belong to the Intuit app (``app_id``)."""

    events: list[StrictStr] = _events_field(Platform.QUICKBOOKS)
    payload_format: Literal["legacy", "cloudevents"] = Field(
        "legacy",
        description="The payload format the Intuit app is switched to; it selects the event "
        "catalog (`Customer.Create` for legacy, `qbo.customer.created.v1` for cloudevents). "
        "Used for validation only; not stored.",
    )
    app_id: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255)] | None = (
        Field(
            None,
            description="The Intuit app (client id or your own app name) this webhook belongs "
            "to. Required for INBOUND: Intuit sends every connected company's events to the "
            "app's one endpoint, so all tenants naming the same app_id must declare the same "
            "endpoint_url per environment. Used for validation only; not stored.",
        )
    )


# --------------------------------------------------------------------------- oauth accounts


class Revoke(_Model):
    """Ask the reconciler to revoke this account's token."""

    reason: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=1000)] = Field(
        description="Why the token is revoked (recorded in the audit log)."
    )


class StripeAccount(_Model):
    """An expected Stripe Connect account."""

    stripe_account_id: Annotated[
        str, StringConstraints(strict=True, pattern=r"^acct_[A-Za-z0-9]{8,32}$")
    ] = Field(description="The connected account id: `acct_` and 8-32 letters or digits.")
    livemode: StrictBool = Field(
        description="True for live mode. Must be true in production and false elsewhere."
    )
    revoke: Revoke | None = None


class HubSpotAccount(_Model):
    """An expected HubSpot installation (portal = HubSpot account)."""

    portal_id: int = Field(
        strict=True, ge=1, le=INT64_MAX, description="Hub (portal) id, a number."
    )
    app_id: int = Field(strict=True, ge=1, le=INT64_MAX, description="HubSpot app id, a number.")
    user_id: int | None = Field(
        None, strict=True, ge=1, le=INT64_MAX, description="Installing user id (optional)."
    )
    revoke: Revoke | None = None


class QuickBooksAccount(_Model):
    """An expected QuickBooks Online company connection."""

    realm_id: Annotated[str, StringConstraints(strict=True, pattern=r"^[0-9]{1,20}$")] = Field(
        description='Company (realm) id: 1-20 digits, quoted so it stays text: "9130347596263942".'
    )
    revoke: Revoke | None = None


# --------------------------------------------------------------------------- environments

_WEBHOOKS_DESCRIPTION = "Webhooks keyed by name (lower-case letters, digits, dashes; 1-63)."
_NAMES_SCHEMA: JsonDict = {"propertyNames": {"pattern": NAME_PATTERN}}


class _EnvironmentBase(_Model):
    integrations: Integrations = Field(
        default_factory=Integrations,
        description="Integrations keyed by config type: API_KEY, WEBHOOK, OAUTH, SETTINGS.",
    )


class StripeEnvironment(_EnvironmentBase):
    """What one environment of a Stripe manifest declares."""

    webhooks: dict[Name, StripeWebhook] = Field(
        default_factory=dict, description=_WEBHOOKS_DESCRIPTION, json_schema_extra=_NAMES_SCHEMA
    )
    oauth_accounts: list[StripeAccount] = Field(
        default_factory=list, description="Expected connected Stripe accounts."
    )


class HubSpotEnvironment(_EnvironmentBase):
    """What one environment of a HubSpot manifest declares."""

    webhooks: dict[Name, HubSpotWebhook] = Field(
        default_factory=dict, description=_WEBHOOKS_DESCRIPTION, json_schema_extra=_NAMES_SCHEMA
    )
    oauth_accounts: list[HubSpotAccount] = Field(
        default_factory=list, description="Expected HubSpot installations."
    )


class QuickBooksEnvironment(_EnvironmentBase):
    """What one environment of a QuickBooks manifest declares."""

    webhooks: dict[Name, QuickBooksWebhook] = Field(
        default_factory=dict, description=_WEBHOOKS_DESCRIPTION, json_schema_extra=_NAMES_SCHEMA
    )
    oauth_accounts: list[QuickBooksAccount] = Field(
        default_factory=list, description="Expected QuickBooks company connections."
    )


EnvironmentT = TypeVar("EnvironmentT", bound=_EnvironmentBase)


class _Environments(_Model, Generic[EnvironmentT]):
    """The environments a manifest may declare, each of its platform's environment model."""

    production: EnvironmentT | None = None
    sandbox: EnvironmentT | None = None
    staging: EnvironmentT | None = None
    development: EnvironmentT | None = None


class StripeEnvironments(_Environments[StripeEnvironment]):
    """Environments of a Stripe manifest (at least one is usual; all are optional)."""


class HubSpotEnvironments(_Environments[HubSpotEnvironment]):
    """Environments of a HubSpot manifest."""


class QuickBooksEnvironments(_Environments[QuickBooksEnvironment]):
    """Environments of a QuickBooks manifest."""


# --------------------------------------------------------------------------- documents

_SOPS_DESCRIPTION = "Written by sops (recipients, data key, MAC). Never edit by hand."
_TEMPLATE_DESCRIPTION = (
    "Name of a template in `manifests/templates/<name>.yaml`, deep-merged under this file: "
    "this file wins, mappings merge recursively, lists and scalars replace."
)


class _ConfigBase(_Model):
    api_version: Literal["reconciler/v1"] = Field(alias="apiVersion")
    kind: Literal["PlatformConfig"]
    tenant: Name = Field(
        description="Tenant id; must equal the directory name in manifests/tenants/<tenant>/."
    )
    template: Name | None = Field(None, description=_TEMPLATE_DESCRIPTION)
    sops: dict[str, Any] | None = Field(None, description=_SOPS_DESCRIPTION)


class StripeConfig(_ConfigBase):
    """A tenant's Stripe configuration: ``manifests/tenants/<tenant>/stripe.yaml``."""

    platform: Literal["STRIPE"]
    environments: StripeEnvironments


class HubSpotConfig(_ConfigBase):
    """A tenant's HubSpot configuration: ``manifests/tenants/<tenant>/hubspot.yaml``."""

    platform: Literal["HUBSPOT"]
    environments: HubSpotEnvironments


class QuickBooksConfig(_ConfigBase):
    """A tenant's QuickBooks configuration: ``manifests/tenants/<tenant>/quickbooks.yaml``."""

    platform: Literal["QUICKBOOKS"]
    environments: QuickBooksEnvironments


PlatformConfig = StripeConfig | HubSpotConfig | QuickBooksConfig
"""A validated manifest of any platform."""

_CONFIG_MODELS: dict[
    Platform, type[StripeConfig] | type[HubSpotConfig] | type[QuickBooksConfig]
] = {
    Platform.STRIPE: StripeConfig,
    Platform.HUBSPOT: HubSpotConfig,
    Platform.QUICKBOOKS: QuickBooksConfig,
}


def config_model(
    platform: Platform,
) -> type[StripeConfig] | type[HubSpotConfig] | type[QuickBooksConfig]:
    """The model a manifest of ``platform`` is validated against."""
    return _CONFIG_MODELS[platform]


class PlatformTemplate(_Model):
    """A template: shared defaults in ``manifests/templates/<name>.yaml``.

    Only the envelope is checked here; ``environments`` is checked after it is merged under
    a manifest (a template may leave required fields to the manifest).
    """

    api_version: Literal["reconciler/v1"] = Field(alias="apiVersion")
    kind: Literal["PlatformTemplate"]
    platform: Literal["STRIPE", "HUBSPOT", "QUICKBOOKS"] | None = Field(
        None, description="When set, only manifests of this platform may use the template."
    )
    template: Name | None = Field(None, description=_TEMPLATE_DESCRIPTION)
    environments: dict[Literal["production", "sandbox", "staging", "development"], Any] = Field(
        default_factory=dict, description="Partial environments, same shape as in a manifest."
    )
    sops: dict[str, Any] | None = Field(None, description=_SOPS_DESCRIPTION)
