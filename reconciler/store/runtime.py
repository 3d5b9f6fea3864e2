"""The SQL of the services' client (:mod:`reconciler.runtime`): tenant-scoped transactions over
the functions of the ``runtime_functions`` migration and the OAuth token columns.

Every statement runs as the service's own login, inside :func:`tenant_transaction`, which sets
``app.tenant_id`` for that transaction only (``set_config(..., true)``): a pooled connection
never carries one tenant's setting into another's transaction. Row-level security and the
login's column privileges do the rest; nothing here widens them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa

from reconciler.errors import StateError
from reconciler.model.enums import CircuitBreakerStatus, Environment, Platform
from reconciler.model.fields import (
    HUBSPOT_APP,
    HUBSPOT_USER,
    INTEGRATION_FIELDS,
    LIVEMODE,
    secrets_of,
)
from reconciler.store.database import create_engine, resolve_database_url, translate_db_errors
from reconciler.store.read import select_item
from reconciler.store.row_state import TOKEN_ON, not_deleted

_SECRETS = secrets_of(INTEGRATION_FIELDS)
_PLAIN = tuple(f for f in INTEGRATION_FIELDS if not f.secret)
_ACTIVE_CONFIG = f"""
SELECT id, {", ".join(map(select_item, _PLAIN))},
       {", ".join(f"{f.column}, {f.fingerprint_column}" for f in _SECRETS)},
       encryption_key_version AS key_version, health_status::text AS health_status
FROM reconciler_active_config(:platform, :environment)
"""

_WEBHOOK_ID = f"""
SELECT id FROM webhook_configurations
WHERE tenant_id = current_setting('app.tenant_id', true) AND platform = CAST(:platform AS platform)
  AND environment = CAST(:environment AS environment) AND name = :name AND {not_deleted()}
"""

ACCOUNT_COLUMNS: Final = (
    "stripe_account_id",
    "stripe_user_id",
    LIVEMODE.column_name,
    "hubspot_portal_id",
    HUBSPOT_USER.column_name,
    HUBSPOT_APP.column_name,
    "quickbooks_realm_id",
)
"""The ``oauth_tokens`` columns that identify the connected account of a new token."""

_INSERT_CONNECTION = f"""
INSERT INTO oauth_tokens (tenant_id, platform, access_token, encryption_key_version,
                          token_type, scope, expires_at, refresh_token_expires_at,
                          {", ".join(ACCOUNT_COLUMNS)}, created_by)
VALUES (current_setting('app.tenant_id', true), CAST(:platform AS platform), '', :key_version,
        :token_type, :scope, :expires_at, :refresh_token_expires_at,
        {", ".join(f":{column}" for column in ACCOUNT_COLUMNS)}, :created_by)
RETURNING id
"""

_LOCK_CONNECTION = f"""
SELECT encryption_key_version, {TOKEN_ON} FROM oauth_tokens
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

    values: Mapping[str, Any]
    """``id``, every field of the field table that is not a secret (by field name; platform
    and environment as enum members, the other enums as their labels), ``key_version`` and
    ``health_status``."""
    secrets: tuple[tuple[str, str | None, str | None], ...]
    """``(column, ciphertext, fingerprint)`` of each secret field, in table order."""


@dataclass(frozen=True, slots=True)
class NewToken:
    """The clear columns of a new ``oauth_tokens`` row (the tokens are written afterwards).

    Every attribute but ``platform`` and ``account`` binds the column of its name
    (``key_version``: ``encryption_key_version``).
    """

    platform: Platform
    key_version: int
    token_type: str | None
    scope: str | None
    expires_at: datetime | None
    refresh_token_expires_at: datetime | None
    created_by: str
    account: Mapping[str, str | bool | None]
    """The connected account's identity by column: the :data:`ACCOUNT_COLUMNS` it has."""


_TOKEN_PARAMS = tuple(
    f.name for f in dataclasses.fields(NewToken) if f.name not in ("platform", "account")
)


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


def active_config(
    conn: sa.Connection, platform: Platform, environment: Environment
) -> list[StoredConfig]:
    """The tenant's active primary configuration rows of a platform and environment."""
    rows = conn.execute(
        sa.text(_ACTIVE_CONFIG), {"platform": platform.value, "environment": environment.value}
    )
    return [_stored_config(dict(row)) for row in rows.mappings()]


def _stored_config(values: dict[str, Any]) -> StoredConfig:
    values["platform"] = Platform(values["platform"])
    values["environment"] = Environment(values["environment"])
    secrets = tuple(
        (f.name, values.pop(f.column or f.name), values.pop(f.fingerprint_column)) for f in _SECRETS
    )
    return StoredConfig(values, secrets)


def webhook_id(
    conn: sa.Connection, platform: Platform, environment: Environment, name: str
) -> int | None:
    """The id of the tenant's webhook of that name, or ``None``."""
    found = conn.execute(
        sa.text(_WEBHOOK_ID),
        {"platform": platform.value, "environment": environment.value, "name": name},
    ).scalar_one_or_none()
    return None if found is None else int(found)


def _webhook_function(conn: sa.Connection, sql: str, params: Mapping[str, Any]) -> Any:
    """The value of one call of a circuit-breaker function on the webhook ``params["id"]``.

    Raises:
        StateError: no such webhook for the session's tenant (the function's P0002).
    """
    try:
        return conn.execute(sa.text(sql), params).scalar_one()
    except sa.exc.DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "P0002":
            raise StateError(f"no webhook {params['id']} for this tenant") from None
        raise


def webhook_allow(conn: sa.Connection, webhook: int) -> bool:
    """``reconciler_webhook_allow``.

    Raises:
        StateError: no such webhook for the session's tenant.
    """
    return bool(_webhook_function(conn, "SELECT reconciler_webhook_allow(:id)", {"id": webhook}))


def webhook_record(
    conn: sa.Connection, webhook: int, succeeded: bool, error: str | None
) -> CircuitBreakerStatus:
    """``reconciler_webhook_record``; the new circuit state.

    Raises:
        StateError: no such webhook for the session's tenant.
    """
    state = _webhook_function(
        conn,
        "SELECT CAST(reconciler_webhook_record(:id, :ok, :error) AS text)",
        {"id": webhook, "ok": succeeded, "error": error},
    )
    return CircuitBreakerStatus(state)


def insert_token(conn: sa.Connection, token: NewToken) -> int:
    """Create the tenant's token row with an empty access token; its id."""
    return int(
        conn.execute(
            sa.text(_INSERT_CONNECTION),
            {
                **{column: token.account.get(column) for column in ACCOUNT_COLUMNS},
                **{name: getattr(token, name) for name in _TOKEN_PARAMS},
                "platform": token.platform.value,
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
