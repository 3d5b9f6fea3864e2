"""Small builders for desired/actual objects used by core tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from reconciler.crypto.fingerprint import Fingerprinter
from reconciler.model.actual import ActualIntegration, ActualState, ActualToken, ActualWebhook
from reconciler.model.desired import (
    DesiredIntegration,
    DesiredOAuthAccount,
    DesiredState,
    DesiredWebhook,
    RetryPolicy,
    SecretValue,
    Source,
)
from reconciler.model.enums import (
    AuthType,
    ConfigType,
    Environment,
    Platform,
    SyncDirection,
    WebhookType,
)
from reconciler.model.sensitive import Sensitive

FINGERPRINTER = Fingerprinter(b"k" * 32)
"""The fingerprint key of every secret these builders make (a fixed test key)."""


def secret(value: str) -> SecretValue:
    return SecretValue(Sensitive(value), FINGERPRINTER(value))


def integration(tenant: str = "acme", **kw: Any) -> DesiredIntegration:
    base = DesiredIntegration(
        tenant_id=tenant,
        platform=Platform.STRIPE,
        environment=Environment.PRODUCTION,
        config_type=ConfigType.API_KEY,
        is_primary=True,
        is_active=True,
        api_key=secret("sk_live_canary"),
        api_secret=None,
        sync_interval=15,
        sync_direction=SyncDirection.BIDIRECTIONAL,
        features={"invoices": True},
        mapping_rules={},
        filter_rules={},
        transform_rules={},
        source=Source(f"manifests/tenants/{tenant}/stripe.yaml"),
    )
    return replace(base, **kw)


def webhook(tenant: str = "acme", name: str = "billing", **kw: Any) -> DesiredWebhook:
    base = DesiredWebhook(
        tenant_id=tenant,
        platform=Platform.STRIPE,
        environment=Environment.PRODUCTION,
        name=name,
        webhook_type=WebhookType.INBOUND,
        endpoint_url="https://hooks.example.com/stripe",
        auth_type=AuthType.SIGNATURE,
        signing_secret=secret("whsec_x"),
        auth_token=None,
        auth_password=None,
        subscribed_events=("invoice.paid", "customer.created"),
        retry=RetryPolicy(8, 30, 2.0, 3600),
        circuit_breaker_threshold=5,
        circuit_breaker_reset_seconds=300,
        is_active=True,
        source=Source(f"manifests/tenants/{tenant}/stripe.yaml"),
    )
    return replace(base, **kw)


def account(
    tenant: str = "acme", account_id: str = "acct_1Example00", **kw: Any
) -> DesiredOAuthAccount:
    base = DesiredOAuthAccount(
        tenant_id=tenant,
        platform=Platform.STRIPE,
        environment=Environment.PRODUCTION,
        account_id=account_id,
        stripe_livemode=True,
        source=Source(f"manifests/tenants/{tenant}/stripe.yaml"),
    )
    return replace(base, **kw)


def as_actual(desired: DesiredState, tokens: tuple[ActualToken, ...] = ()) -> ActualState:
    """The database state that applying ``desired`` would produce."""
    ints = tuple(
        ActualIntegration(
            id=i + 1,
            tenant_id=d.tenant_id,
            platform=d.platform,
            environment=d.environment,
            config_type=d.config_type,
            is_primary=d.is_primary,
            is_active=d.is_active,
            api_key_fingerprint=d.api_key.fingerprint if d.api_key else None,
            api_secret_fingerprint=d.api_secret.fingerprint if d.api_secret else None,
            sync_interval=d.sync_interval,
            sync_direction=d.sync_direction,
            features=dict(d.features),
            mapping_rules=dict(d.mapping_rules),
            filter_rules=dict(d.filter_rules),
            transform_rules=dict(d.transform_rules),
            deleted_at=None,
            row_version=1,
        )
        for i, d in enumerate(desired.integrations)
    )
    hooks = tuple(
        ActualWebhook(
            id=i + 1,
            tenant_id=d.tenant_id,
            platform=d.platform,
            environment=d.environment,
            name=d.name,
            webhook_type=d.webhook_type,
            endpoint_url=d.endpoint_url,
            auth_type=d.auth_type,
            signing_secret_fingerprint=d.signing_secret.fingerprint if d.signing_secret else None,
            auth_token_fingerprint=d.auth_token.fingerprint if d.auth_token else None,
            auth_password_fingerprint=d.auth_password.fingerprint if d.auth_password else None,
            subscribed_events=tuple(reversed(d.subscribed_events)),
            retry_max_attempts=d.retry.max_attempts,
            retry_initial_delay_seconds=d.retry.initial_delay_seconds,
            retry_backoff_multiplier=d.retry.multiplier,
            retry_max_delay_seconds=d.retry.max_delay_seconds,
            circuit_breaker_threshold=d.circuit_breaker_threshold,
            circuit_breaker_reset_seconds=d.circuit_breaker_reset_seconds,
            is_active=d.is_active,
            deleted_at=None,
            row_version=1,
        )
        for i, d in enumerate(desired.webhooks)
    )
    return ActualState(ints, hooks, tokens)


def token(
    tenant: str = "acme", account_id: str | None = "acct_1Example00", id: int = 1, **kw: Any
) -> ActualToken:
    base = ActualToken(
        id=id,
        tenant_id=tenant,
        platform=Platform.STRIPE,
        account_id=account_id,
        stripe_livemode=True,
        hubspot_app_id=None,
        is_active=True,
        revoked_at=None,
        row_version=1,
        # As apply leaves it once a manifest declared the account (a managed token).
        managed_since=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return replace(base, **kw)


def state(*objs: Any) -> DesiredState:
    ints = tuple(o for o in objs if isinstance(o, DesiredIntegration))
    hooks = tuple(o for o in objs if isinstance(o, DesiredWebhook))
    accts = tuple(o for o in objs if isinstance(o, DesiredOAuthAccount))
    tenants = frozenset(o.tenant_id for o in objs)
    return DesiredState(ints, hooks, accts, tenants, "digest")
