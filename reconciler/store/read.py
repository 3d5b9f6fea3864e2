"""Read the actual state: one set-based query per table, restricted to the selectors.

Secrets are never decrypted here (no database key is needed): the diff compares their
fingerprints, and each stored ciphertext's binding tag is checked with the fingerprint key,
so a ciphertext that is not the one written with its fingerprint (copied back from an
earlier value, swapped in from another row or column, or in the unbound legacy ``rcn1``
form) is reported in ``doubted`` and planned as a change. Soft-deleted rows are read too
(the diff restores them when a manifest declares them again).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import sqlalchemy as sa

from reconciler.crypto.aead import CipherContext, check_binding
from reconciler.crypto.fingerprint import Fingerprinter
from reconciler.model.actual import (
    ActualIntegration,
    ActualState,
    ActualToken,
    ActualWebhook,
    SecretDoubt,
)
from reconciler.model.enums import (
    AuthType,
    ConfigType,
    Environment,
    Platform,
    SyncDirection,
    WebhookType,
)
from reconciler.model.plan import RowRef, Selectors

_WHERE = """
    (cardinality(CAST(:tenants AS text[])) = 0 OR tenant_id = ANY(CAST(:tenants AS text[])))
    AND (cardinality(CAST(:platforms AS text[])) = 0
         OR CAST(platform AS text) = ANY(CAST(:platforms AS text[])))
    AND NOT (tenant_id = ANY(CAST(:excluded AS text[])))
"""

_INTEGRATIONS = f"""
SELECT id, tenant_id, platform::text, environment::text, config_type::text, is_primary, is_active,
       api_key_fingerprint, api_secret_fingerprint, sync_interval, sync_direction::text,
       features, mapping_rules, filter_rules, transform_rules, deleted_at, row_version,
       api_key, api_secret, encryption_key_version
FROM integration_configs WHERE {_WHERE}
"""

_WEBHOOKS = f"""
SELECT id, tenant_id, platform::text, environment::text, name, webhook_type::text, endpoint_url,
       auth_type::text, signing_secret_fingerprint, auth_token_fingerprint,
       auth_password_fingerprint, subscribed_events, retry_max_attempts,
       retry_initial_delay_seconds, retry_backoff_multiplier, retry_max_delay_seconds,
       circuit_breaker_threshold, circuit_breaker_reset_seconds, is_active, deleted_at, row_version,
       signing_secret, auth_token, auth_password, encryption_key_version
FROM webhook_configurations WHERE {_WHERE}
"""

ACCOUNT_ID_SQL = """CASE platform WHEN 'STRIPE' THEN stripe_account_id
    WHEN 'HUBSPOT' THEN hubspot_portal_id WHEN 'QUICKBOOKS' THEN quickbooks_realm_id END"""

_TOKENS = f"""
SELECT id, tenant_id, platform::text, {ACCOUNT_ID_SQL} AS account_id, stripe_livemode,
       hubspot_app_id, is_active, revoked_at, row_version, managed_since
FROM oauth_tokens WHERE {_WHERE}
"""

_VERSIONS = f"""
SELECT 'integration_configs', id, row_version FROM integration_configs WHERE {_WHERE}
UNION ALL
SELECT 'webhook_configurations', id, row_version FROM webhook_configurations WHERE {_WHERE}
UNION ALL
SELECT 'oauth_tokens', id, row_version FROM oauth_tokens WHERE {_WHERE}
"""


def selector_params(selectors: Selectors) -> dict[str, Any]:
    """Bind parameters for the selector filter shared by every read."""
    return {
        "tenants": list(selectors.tenants),
        "platforms": [p.value for p in selectors.platforms],
        "excluded": list(selectors.exclude_tenants),
    }


def _opt(enum_type: Any, value: str | None) -> Any:
    return enum_type(value) if value is not None else None


def _doubts(
    fingerprinter: Fingerprinter,
    context: Callable[[str], CipherContext],
    secrets: Sequence[tuple[str, str | None, str | None]],
    version: int | None,
) -> dict[str, SecretDoubt]:
    """The doubted secrets of one row: ``(column, ciphertext, fingerprint)`` each checked."""
    out: dict[str, SecretDoubt] = {}
    for column, stored, fingerprint in secrets:
        doubt = check_binding(fingerprinter, stored, fingerprint, version, context(column))
        if doubt is not None:
            out[column] = doubt
    return out


def read_actual_state(
    conn: sa.Connection, selectors: Selectors, fingerprinter: Fingerprinter
) -> ActualState:
    """Read integrations, webhooks and OAuth token identities (three queries).

    ``fingerprinter`` (the fingerprint key, no database key) checks each stored ciphertext's
    binding to its fingerprint; see the module docstring.
    """
    params = selector_params(selectors)
    integrations = tuple(
        ActualIntegration(
            id=r[0],
            tenant_id=r[1],
            platform=Platform(r[2]),
            environment=Environment(r[3]),
            config_type=ConfigType(r[4]),
            is_primary=r[5],
            is_active=r[6],
            api_key_fingerprint=r[7],
            api_secret_fingerprint=r[8],
            sync_interval=r[9],
            sync_direction=_opt(SyncDirection, r[10]),
            features=r[11] or {},
            mapping_rules=r[12] or {},
            filter_rules=r[13] or {},
            transform_rules=r[14] or {},
            deleted_at=r[15],
            row_version=r[16],
            doubted=_doubts(
                fingerprinter,
                partial(CipherContext.integration, r[1], r[2], r[3], r[4]),
                (("api_key", r[17], r[7]), ("api_secret", r[18], r[8])),
                r[19],
            ),
        )
        for r in conn.execute(sa.text(_INTEGRATIONS), params)
    )
    webhooks = tuple(
        ActualWebhook(
            id=r[0],
            tenant_id=r[1],
            platform=Platform(r[2]),
            environment=Environment(r[3]),
            name=r[4],
            webhook_type=WebhookType(r[5]),
            endpoint_url=r[6],
            auth_type=AuthType(r[7]),
            signing_secret_fingerprint=r[8],
            auth_token_fingerprint=r[9],
            auth_password_fingerprint=r[10],
            subscribed_events=tuple(r[11] or ()),
            retry_max_attempts=r[12],
            retry_initial_delay_seconds=r[13],
            retry_backoff_multiplier=r[14],
            retry_max_delay_seconds=r[15],
            circuit_breaker_threshold=r[16],
            circuit_breaker_reset_seconds=r[17],
            is_active=r[18],
            deleted_at=r[19],
            row_version=r[20],
            doubted=_doubts(
                fingerprinter,
                partial(CipherContext.webhook, r[1], r[2], r[3], r[4]),
                (
                    ("signing_secret", r[21], r[8]),
                    ("auth_token", r[22], r[9]),
                    ("auth_password", r[23], r[10]),
                ),
                r[24],
            ),
        )
        for r in conn.execute(sa.text(_WEBHOOKS), params)
    )
    tokens = tuple(
        ActualToken(
            id=r[0],
            tenant_id=r[1],
            platform=Platform(r[2]),
            account_id=r[3],
            stripe_livemode=r[4],
            hubspot_app_id=r[5],
            is_active=bool(r[6]),
            revoked_at=r[7],
            row_version=r[8],
            managed_since=r[9],
        )
        for r in conn.execute(sa.text(_TOKENS), params)
    )
    return ActualState(integrations, webhooks, tokens)


def read_row_versions(conn: sa.Connection, selectors: Selectors) -> tuple[RowRef, ...]:
    """The (table, id, row_version) of every selected row: the cheap under-lock stale check."""
    rows = conn.execute(sa.text(_VERSIONS), selector_params(selectors))
    return tuple(sorted(RowRef(r[0], r[1], r[2]) for r in rows))
