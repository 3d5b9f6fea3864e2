"""The SQL of the services' client (:mod:`reconciler.runtime`): tenant-scoped transactions over
the functions of the ``runtime_functions`` migration and the OAuth token columns.

Every statement runs as the service's own login, inside :func:`tenant_transaction`, which sets
``app.tenant_id`` for that transaction only (``set_config(..., true)``): a pooled connection
never carries one tenant's setting into another's transaction. Row-level security and the
login's column privileges do the rest; nothing here widens them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from reconciler.errors import StateError
from reconciler.model.enums import CircuitBreakerStatus, Environment, Platform
from reconciler.store.database import create_engine, resolve_database_url, translate_db_errors

_ACTIVE_CONFIG = """
SELECT id, tenant_id, platform::text, environment::text, config_type::text, api_key,
       api_key_fingerprint, api_secret, api_secret_fingerprint, encryption_key_version,
       sync_interval, sync_direction::text, features, mapping_rules, filter_rules,
       transform_rules, health_status::text
FROM reconciler_active_config(:platform, :environment)
"""

_WEBHOOK_ID = """
SELECT id FROM webhook_configurations
WHERE tenant_id = current_setting('app.tenant_id', true) AND platform = CAST(:platform AS platform)
  AND environment = CAST(:environment AS environment) AND name = :name AND deleted_at IS NULL
"""

_INSERT_CONNECTION = """
INSERT INTO oauth_tokens (tenant_id, platform, access_token, encryption_key_version,
                          token_type, scope, expires_at, refresh_token_expires_at,
                          stripe_account_id, stripe_user_id, stripe_livemode,
                          hubspot_portal_id, hubspot_user_id, hubspot_app_id,
                          quickbooks_realm_id, created_by)
VALUES (current_setting('app.tenant_id', true), CAST(:platform AS platform), '', :version,
        :token_type, :scope, :expires_at, :refresh_expires_at, :stripe_account_id,
        :stripe_user_id, :stripe_livemode, :hubspot_portal_id, :hubspot_user_id,
        :hubspot_app_id, :quickbooks_realm_id, :created_by)
RETURNING id
"""

_LOCK_CONNECTION = """
SELECT encryption_key_version, is_active FROM oauth_tokens
WHERE tenant_id = current_setting('app.tenant_id', true) AND id = :id
FOR UPDATE
"""

_READ_CONNECTION = """
SELECT access_token, refresh_token, encryption_key_version FROM oauth_tokens
WHERE tenant_id = current_setting('app.tenant_id', true) AND id = :id
"""

_SET_MATERIAL = """
UPDATE oauth_tokens SET access_token = :access, refresh_token = COALESCE(:refresh, refresh_token),
       expires_at = COALESCE(:expires_at, expires_at), updated_at = now()
WHERE tenant_id = current_setting('app.tenant_id', true) AND id = :id
"""

Connection = sa.Connection
"""The connection type of a tenant transaction (the layers above import no SQLAlchemy)."""


@dataclass(frozen=True, slots=True)
class StoredConfig:
    """One row of ``reconciler_active_config``, its secrets as stored (encrypted)."""

    id: int
    tenant_id: str
    platform: Platform
    environment: Environment
    config_type: str
    api_key: str | None
    api_key_fingerprint: str | None
    api_secret: str | None
    api_secret_fingerprint: str | None
    key_version: int | None
    sync_interval: int | None
    sync_direction: str | None
    features: Mapping[str, Any]
    mapping_rules: Mapping[str, Any]
    filter_rules: Mapping[str, Any]
    transform_rules: Mapping[str, Any]
    health_status: str


@dataclass(frozen=True, slots=True)
class NewToken:
    """The clear columns of a new ``oauth_tokens`` row (the tokens are written afterwards)."""

    platform: Platform
    key_version: int
    token_type: str | None
    scope: str | None
    expires_at: datetime | None
    refresh_token_expires_at: datetime | None
    stripe_account_id: str | None
    stripe_user_id: str | None
    stripe_livemode: bool | None
    hubspot_portal_id: str | None
    hubspot_user_id: str | None
    hubspot_app_id: str | None
    quickbooks_realm_id: str | None
    created_by: str


class RuntimeEngine:
    """A pooled engine on the service's database, named ``application_name`` on the server."""

    __slots__ = ("_engine",)

    def __init__(self, database_url: str | None, application_name: str) -> None:
        target = resolve_database_url(database_url)
        self._engine = create_engine(target, application_name=application_name)

    @contextmanager
    def tenant_transaction(self, tenant_id: str) -> Iterator[sa.Connection]:
        """One transaction acting for ``tenant_id``; committed when the block ends cleanly."""
        with translate_db_errors(self._engine.url), self._engine.begin() as conn:
            conn.execute(sa.text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant_id})
            yield conn

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()


def _not_found(exc: sa.exc.DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == "P0002"


def active_config(
    conn: sa.Connection, platform: Platform, environment: Environment
) -> list[StoredConfig]:
    """The tenant's active primary configuration rows of a platform and environment."""
    rows = conn.execute(
        sa.text(_ACTIVE_CONFIG), {"platform": platform.value, "environment": environment.value}
    )
    return [
        StoredConfig(
            id=r[0],
            tenant_id=r[1],
            platform=Platform(r[2]),
            environment=Environment(r[3]),
            config_type=r[4],
            api_key=r[5],
            api_key_fingerprint=r[6],
            api_secret=r[7],
            api_secret_fingerprint=r[8],
            key_version=r[9],
            sync_interval=r[10],
            sync_direction=r[11],
            features=r[12],
            mapping_rules=r[13],
            filter_rules=r[14],
            transform_rules=r[15],
            health_status=r[16],
        )
        for r in rows
    ]


def webhook_id(
    conn: sa.Connection, platform: Platform, environment: Environment, name: str
) -> int | None:
    """The id of the tenant's webhook of that name, or ``None``."""
    found = conn.execute(
        sa.text(_WEBHOOK_ID),
        {"platform": platform.value, "environment": environment.value, "name": name},
    ).scalar_one_or_none()
    return None if found is None else int(found)


def webhook_allow(conn: sa.Connection, webhook: int) -> bool:
    """``reconciler_webhook_allow``.

    Raises:
        StateError: no such webhook for the session's tenant.
    """
    try:
        allowed = conn.execute(
            sa.text("SELECT reconciler_webhook_allow(:id)"), {"id": webhook}
        ).scalar_one()
    except sa.exc.DBAPIError as exc:
        if _not_found(exc):
            raise StateError(f"no webhook {webhook} for this tenant") from None
        raise
    return bool(allowed)


def webhook_record(
    conn: sa.Connection, webhook: int, succeeded: bool, error: str | None
) -> CircuitBreakerStatus:
    """``reconciler_webhook_record``; the new circuit state.

    Raises:
        StateError: no such webhook for the session's tenant.
    """
    try:
        state = conn.execute(
            sa.text("SELECT CAST(reconciler_webhook_record(:id, :ok, :error) AS text)"),
            {"id": webhook, "ok": succeeded, "error": error},
        ).scalar_one()
    except sa.exc.DBAPIError as exc:
        if _not_found(exc):
            raise StateError(f"no webhook {webhook} for this tenant") from None
        raise
    return CircuitBreakerStatus(state)


def insert_token(conn: sa.Connection, token: NewToken) -> int:
    """Create the tenant's token row with an empty access token; its id."""
    return int(
        conn.execute(
            sa.text(_INSERT_CONNECTION),
            {
                "platform": token.platform.value,
                "version": token.key_version,
                "token_type": token.token_type,
                "scope": token.scope,
                "expires_at": token.expires_at,
                "refresh_expires_at": token.refresh_token_expires_at,
                "stripe_account_id": token.stripe_account_id,
                "stripe_user_id": token.stripe_user_id,
                "stripe_livemode": token.stripe_livemode,
                "hubspot_portal_id": token.hubspot_portal_id,
                "hubspot_user_id": token.hubspot_user_id,
                "hubspot_app_id": token.hubspot_app_id,
                "quickbooks_realm_id": token.quickbooks_realm_id,
                "created_by": token.created_by,
            },
        ).scalar_one()
    )


def lock_token(conn: sa.Connection, token_id: int) -> int:
    """Lock the tenant's active token row (until the transaction ends); its key version.

    Raises:
        StateError: no such token for the session's tenant, or it is revoked.
    """
    row = conn.execute(sa.text(_LOCK_CONNECTION), {"id": token_id}).one_or_none()
    if row is None:
        raise StateError(f"no OAuth token {token_id} for this tenant")
    if not row[1]:
        raise StateError(f"OAuth token {token_id} is revoked; connect the account again")
    return int(row[0])


def read_token(conn: sa.Connection, token_id: int) -> tuple[str, str | None, int]:
    """``(access_token, refresh_token, encryption_key_version)`` as stored.

    Raises:
        StateError: no such token for the session's tenant.
    """
    row = conn.execute(sa.text(_READ_CONNECTION), {"id": token_id}).one_or_none()
    if row is None:
        raise StateError(f"no OAuth token {token_id} for this tenant")
    return row[0], row[1], int(row[2])


def write_tokens(
    conn: sa.Connection,
    token_id: int,
    access: str,
    refresh: str | None,
    expires_at: datetime | None,
) -> None:
    """Store the encrypted token material of the tenant's token row (``refresh`` None keeps
    the stored refresh token, as an OAuth refresh that returns none expects)."""
    conn.execute(
        sa.text(_SET_MATERIAL),
        {"id": token_id, "access": access, "refresh": refresh, "expires_at": expires_at},
    )
