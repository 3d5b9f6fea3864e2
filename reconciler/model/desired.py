"""DesiredState: what the manifests say, validated and (where keys allow) decrypted.

Produced by ``reconciler.load`` and consumed by the pure core. The attributes are the
fields of the field table (``model/fields.py``), in its order, named like the database
columns they reconcile against, so the diff can compare like with like. Runtime-owned
columns (health, sync timestamps, circuit-breaker state and counters, token material, row
versions) have no field here: manifests cannot set them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.model.enums import (
    AuthType,
    ConfigType,
    Environment,
    Platform,
    SyncDirection,
    WebhookType,
)
from reconciler.model.plan import Address, ResourceKind
from reconciler.model.sensitive import Sensitive

JSONValue = Any
"""A JSON-compatible value (dict/list/str/int/float/bool/None)."""


@dataclass(frozen=True, slots=True)
class SecretValue:
    """A secret field of a manifest.

    Attributes:
        value: the decrypted plaintext, or ``None`` when no key was available (``validate``
            without keys). ``plan`` and ``apply`` require it.
        fingerprint: keyed HMAC-SHA256 of the plaintext (hex), the only form the diff and the
            plan ever see; ``None`` when not decrypted.
    """

    value: Sensitive[str] | None
    fingerprint: str | None


@dataclass(frozen=True, slots=True)
class Source:
    """Where a desired object was declared: the manifest path (relative to the repo root)."""

    path: str


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


@dataclass(frozen=True, slots=True)
class DesiredState:
    """Everything the selected manifests declare.

    Attributes:
        tenants: every selected tenant that has at least one manifest file, of any platform
            (used by the mass-deletion breaker to tell "a tenant disappeared" from "a tenant
            changed"; platform selectors do not narrow it).
        manifests_digest: SHA-256 over the selected manifest files' bytes (path-sorted); a
            saved plan records it and apply refuses a plan whose manifests moved.
    """

    integrations: tuple[DesiredIntegration, ...] = ()
    webhooks: tuple[DesiredWebhook, ...] = ()
    oauth_accounts: tuple[DesiredOAuthAccount, ...] = ()
    tenants: frozenset[str] = frozenset()
    manifests_digest: str = ""
