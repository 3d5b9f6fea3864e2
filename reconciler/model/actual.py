"""ActualState: what PostgreSQL holds, read set-based by ``store.read``.

Secrets appear only as fingerprints (the ciphertext never leaves the store adapter), plus,
for each stored secret that is not provably the value its fingerprint describes, why not
(:class:`SecretDoubt`). ``row_version`` is bumped by every write and is what a saved plan pins.
The attributes are the fields of the field table (``model/fields.py``), a secret as its
``<column>_fingerprint``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from reconciler.model.desired import JSONValue
from reconciler.model.enums import (
    AuthType,
    ConfigType,
    Environment,
    Platform,
    SyncDirection,
    WebhookType,
)


class SecretDoubt(enum.Enum):
    """Why a stored secret is not provably the value its fingerprint column describes.

    The store checks each ciphertext's binding tag with the fingerprint key (no database key
    needed); the diff shows a doubted secret as changed, so ``apply`` rewrites it.

    Members:
        MISMATCH: the ciphertext does not belong with the row's fingerprint, key version or
            place (replayed, swapped or edited in the database), or has no fingerprint.
        LEGACY: the ``rcn1:`` format, written before ciphertexts carried a binding; only a
            path holding the database keys can check it (``keys rotate`` upgrades it).
    """

    MISMATCH = "mismatch"
    LEGACY = "legacy"


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


@dataclass(frozen=True, slots=True)
class ActualWebhook:
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
    retry_max_attempts: int
    retry_initial_delay_seconds: int
    retry_backoff_multiplier: float
    retry_max_delay_seconds: int
    circuit_breaker_threshold: int
    circuit_breaker_reset_seconds: int
    is_active: bool
    deleted_at: datetime | None
    row_version: int
    doubted: Mapping[str, SecretDoubt] = field(default_factory=dict)
    """Secret columns whose stored value is not provably their fingerprint's."""


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


@dataclass(frozen=True, slots=True)
class ActualState:
    """The rows that the selected tenants and platforms have in the database."""

    integrations: tuple[ActualIntegration, ...] = ()
    webhooks: tuple[ActualWebhook, ...] = ()
    tokens: tuple[ActualToken, ...] = ()
