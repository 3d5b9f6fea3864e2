"""Read what ``reconciler import`` exports: one set-based query per table.

Unlike :mod:`reconciler.store.read` (which plans from fingerprints only), the import needs
the secrets themselves, so the ciphertext columns are read too; they are decrypted in memory
by :mod:`reconciler.importer.service` and never written anywhere in plaintext.
:func:`begin_snapshot` makes the reads one read-only snapshot. Soft-deleted
rows, revoked or inactive OAuth tokens and token material are not read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from reconciler.model.desired import JSONValue
from reconciler.model.enums import (
    AuthType,
    ConfigType,
    Environment,
    Platform,
    SyncDirection,
    WebhookType,
)

from .read import ACCOUNT_ID_SQL


@dataclass(frozen=True, slots=True)
class StoredSecret:
    """One encrypted column of a row, as stored.

    Attributes:
        column: the column name (``api_key``, ``signing_secret``, ...).
        ciphertext: the ``rcn2:`` (or legacy ``rcn1:``) value; decrypt only through the
            field cipher, with ``fingerprint``.
        fingerprint: the stored HMAC fingerprint the diff compares (may be ``None``, which
            the field cipher refuses).
    """

    column: str
    ciphertext: str
    fingerprint: str | None


@dataclass(frozen=True, slots=True)
class StoredIntegration:
    """A live ``integration_configs`` row with its secrets still encrypted."""

    id: int
    tenant_id: str
    platform: Platform
    environment: Environment
    config_type: ConfigType
    is_primary: bool
    is_active: bool
    secrets: tuple[StoredSecret, ...]
    encryption_key_version: int | None
    sync_interval: int | None
    sync_direction: SyncDirection | None
    features: Mapping[str, JSONValue]
    mapping_rules: Mapping[str, JSONValue]
    filter_rules: Mapping[str, JSONValue]
    transform_rules: Mapping[str, JSONValue]


@dataclass(frozen=True, slots=True)
class StoredWebhook:
    """A live ``webhook_configurations`` row with its secrets still encrypted.

    The retry and circuit-breaker columns are nullable in the schema; ``None`` means the
    row has no value, which a manifest cannot express (it always has the defaults).
    """

    id: int
    tenant_id: str
    platform: Platform
    environment: Environment
    name: str
    webhook_type: WebhookType
    endpoint_url: str
    auth_type: AuthType
    secrets: tuple[StoredSecret, ...]
    encryption_key_version: int | None
    subscribed_events: tuple[str, ...]
    retry_max_attempts: int | None
    retry_initial_delay_seconds: int | None
    retry_backoff_multiplier: float | None
    retry_max_delay_seconds: int | None
    circuit_breaker_threshold: int | None
    circuit_breaker_reset_seconds: int | None
    is_active: bool


@dataclass(frozen=True, slots=True)
class StoredAccount:
    """The identity of an active, unrevoked ``oauth_tokens`` row (never the token)."""

    id: int
    tenant_id: str
    platform: Platform
    account_id: str | None
    stripe_livemode: bool | None
    hubspot_app_id: str | None
    hubspot_user_id: str | None
    environment_hint: str | None
    """``metadata.environment`` when the OAuth flow recorded one; tokens have no column."""


@dataclass(frozen=True, slots=True)
class StoredRows:
    """Everything the import reads for the selected tenants and platforms."""

    integrations: tuple[StoredIntegration, ...] = ()
    webhooks: tuple[StoredWebhook, ...] = ()
    accounts: tuple[StoredAccount, ...] = ()

    def files(self) -> frozenset[tuple[str, Platform]]:
        """``(tenant, platform)`` of every manifest these rows make."""
        rows: Sequence[Any] = (*self.integrations, *self.webhooks, *self.accounts)
        return frozenset((r.tenant_id, r.platform) for r in rows)

    def tenants(self) -> frozenset[str]:
        """Tenants that have at least one row."""
        return frozenset(tenant for tenant, _ in self.files())


_WHERE = """tenant_id = ANY(CAST(:tenants AS text[]))
    AND (cardinality(CAST(:platforms AS text[])) = 0
         OR CAST(platform AS text) = ANY(CAST(:platforms AS text[])))"""

_INTEGRATIONS = f"""
SELECT id, tenant_id, platform::text, environment::text, config_type::text, is_primary,
       is_active, api_key, api_key_fingerprint, api_secret, api_secret_fingerprint,
       encryption_key_version, sync_interval, sync_direction::text, features, mapping_rules,
       filter_rules, transform_rules
FROM integration_configs
WHERE {_WHERE} AND deleted_at IS NULL
ORDER BY tenant_id, platform, environment, config_type
"""

_WEBHOOKS = f"""
SELECT id, tenant_id, platform::text, environment::text, name, webhook_type::text,
       endpoint_url, auth_type::text, signing_secret, signing_secret_fingerprint, auth_token,
       auth_token_fingerprint, auth_password, auth_password_fingerprint, encryption_key_version,
       subscribed_events, retry_max_attempts, retry_initial_delay_seconds,
       retry_backoff_multiplier, retry_max_delay_seconds, circuit_breaker_threshold,
       circuit_breaker_reset_seconds, is_active
FROM webhook_configurations
WHERE {_WHERE} AND deleted_at IS NULL
ORDER BY tenant_id, platform, environment, name
"""

_ACCOUNTS = f"""
SELECT id, tenant_id, platform::text, {ACCOUNT_ID_SQL} AS account_id, stripe_livemode,
       hubspot_app_id, hubspot_user_id, metadata->>'environment'
FROM oauth_tokens
WHERE {_WHERE} AND is_active AND revoked_at IS NULL
ORDER BY tenant_id, platform, id
"""


def begin_snapshot(conn: sa.Connection) -> None:
    """Make the current transaction one read-only snapshot (its first statement)."""
    conn.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))


def _secrets(pairs: Sequence[tuple[str, str | None, str | None]]) -> tuple[StoredSecret, ...]:
    return tuple(StoredSecret(c, text, fp) for c, text, fp in pairs if text is not None)


def read_rows(
    conn: sa.Connection, tenants: Sequence[str], platforms: Sequence[Platform] = ()
) -> StoredRows:
    """Read the live rows of ``tenants`` (optionally only ``platforms``): three queries."""
    params = {"tenants": list(tenants), "platforms": [p.value for p in platforms]}
    integrations = tuple(
        StoredIntegration(
            id=r[0],
            tenant_id=r[1],
            platform=Platform(r[2]),
            environment=Environment(r[3]),
            config_type=ConfigType(r[4]),
            is_primary=r[5],
            is_active=r[6],
            secrets=_secrets((("api_key", r[7], r[8]), ("api_secret", r[9], r[10]))),
            encryption_key_version=r[11],
            sync_interval=r[12],
            sync_direction=SyncDirection(r[13]) if r[13] is not None else None,
            features=r[14] or {},
            mapping_rules=r[15] or {},
            filter_rules=r[16] or {},
            transform_rules=r[17] or {},
        )
        for r in conn.execute(sa.text(_INTEGRATIONS), params)
    )
    webhooks = tuple(
        StoredWebhook(
            id=r[0],
            tenant_id=r[1],
            platform=Platform(r[2]),
            environment=Environment(r[3]),
            name=r[4],
            webhook_type=WebhookType(r[5]),
            endpoint_url=r[6],
            auth_type=AuthType(r[7]),
            secrets=_secrets(
                (
                    ("signing_secret", r[8], r[9]),
                    ("auth_token", r[10], r[11]),
                    ("auth_password", r[12], r[13]),
                )
            ),
            encryption_key_version=r[14],
            subscribed_events=tuple(r[15] or ()),
            retry_max_attempts=r[16],
            retry_initial_delay_seconds=r[17],
            retry_backoff_multiplier=r[18],
            retry_max_delay_seconds=r[19],
            circuit_breaker_threshold=r[20],
            circuit_breaker_reset_seconds=r[21],
            is_active=r[22],
        )
        for r in conn.execute(sa.text(_WEBHOOKS), params)
    )
    accounts = tuple(
        StoredAccount(
            id=r[0],
            tenant_id=r[1],
            platform=Platform(r[2]),
            account_id=r[3],
            stripe_livemode=r[4],
            hubspot_app_id=r[5],
            hubspot_user_id=r[6],
            environment_hint=r[7],
        )
        for r in conn.execute(sa.text(_ACCOUNTS), params)
    )
    return StoredRows(integrations, webhooks, accounts)
