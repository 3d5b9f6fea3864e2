"""Which columns the manifests own and which the runtime owns, declared once.

*Reconciled* fields are compared by the diff and written by apply. *Runtime-owned* fields
are written by the integration runtime (health checks, sync scheduler, webhook delivery,
OAuth flow): manifests may not set them, the diff never reports them, and apply never
touches them on update (it only initialises them on create).
"""

from __future__ import annotations

from typing import Final

INTEGRATION_FIELDS: Final = (
    "is_primary",
    "is_active",
    "api_key",
    "api_secret",
    "sync_interval",
    "sync_direction",
    "features",
    "mapping_rules",
    "filter_rules",
    "transform_rules",
)
INTEGRATION_SECRETS: Final = ("api_key", "api_secret")

WEBHOOK_FIELDS: Final = (
    "webhook_type",
    "endpoint_url",
    "auth_type",
    "signing_secret",
    "auth_token",
    "auth_password",
    "subscribed_events",
    "retry_max_attempts",
    "retry_initial_delay_seconds",
    "retry_backoff_multiplier",
    "retry_max_delay_seconds",
    "circuit_breaker_threshold",
    "circuit_breaker_reset_seconds",
    "is_active",
)
WEBHOOK_SECRETS: Final = ("signing_secret", "auth_token", "auth_password")

INTEGRATION_RUNTIME_OWNED: Final = (
    "health_status",
    "health_message",
    "last_health_check_at",
    "next_sync_at",
    "last_sync_at",
    "row_version",
    "encryption_key_version",
)
WEBHOOK_RUNTIME_OWNED: Final = (
    "circuit_breaker_status",
    "consecutive_failures",
    "circuit_opened_at",
    "total_trigger_count",
    "total_failure_count",
    "last_trigger_at",
    "last_success_at",
    "last_failure_at",
    "row_version",
    "encryption_key_version",
)
TOKEN_RUNTIME_OWNED: Final = (
    "access_token",
    "refresh_token",
    "token_type",
    "scope",
    "expires_at",
    "refresh_token_expires_at",
)

TOKEN_RECONCILER_OWNED: Final = ("managed_since",)
"""Token columns only ``apply`` writes: when a manifest first declared the token's account
(unmanaged tokens have none). Neither manifests nor the OAuth flow set them."""

RUNTIME_OWNED: Final = frozenset(
    INTEGRATION_RUNTIME_OWNED + WEBHOOK_RUNTIME_OWNED + TOKEN_RUNTIME_OWNED + TOKEN_RECONCILER_OWNED
)
"""Every runtime-owned field name; the manifest loader rejects these keys."""
