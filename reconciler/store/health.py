"""The SQL of ``reconciler health check``: runtime-owned health and circuit columns.

* :func:`read_check_targets` reads the selected active, non-deleted integrations with their
  encrypted credentials (decryption is the caller's, in memory);
* :func:`write_health` writes ``health_status``, ``health_message`` and
  ``last_health_check_at`` with one set-based ``UPDATE ... FROM unnest(...)``;
* :func:`advance_circuits` moves webhooks whose circuit has been OPEN longer than
  its reset time to HALF_OPEN (or, in a dry run, only lists them).

None of them touches the row's version or ``updated_at``: those track reconciled
configuration, and a health check must not make a saved plan stale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from reconciler.model.enums import ConfigType, Environment, HealthStatus, Platform
from reconciler.model.fields import CIRCUIT_RESET, INTEGRATION_FIELDS, secrets_of
from reconciler.model.plan import Selectors
from reconciler.store.row_state import active_live, live_token, not_deleted

from .read import selector_params

DEFAULT_RESET_SECONDS = 300
"""Reset time of a circuit whose row has none (the manifest default)."""


def reset_seconds() -> str:
    """SQL: a webhook's circuit reset time in seconds, the default where its row has none."""
    return f"COALESCE({CIRCUIT_RESET.column_name}, {DEFAULT_RESET_SECONDS})"


_WHERE = """(cardinality(CAST(:tenants AS text[])) = 0 OR tenant_id = ANY(CAST(:tenants AS text[])))
    AND (cardinality(CAST(:platforms AS text[])) = 0
         OR CAST(platform AS text) = ANY(CAST(:platforms AS text[])))
    AND NOT (tenant_id = ANY(CAST(:excluded AS text[])))"""

_SECRETS = secrets_of(INTEGRATION_FIELDS)
_TARGETS = f"""
SELECT id, tenant_id, platform::text AS platform, environment::text AS environment,
       config_type::text AS config_type, encryption_key_version, health_status::text AS health,
       {", ".join(f"{f.column} AS {f.name}, {f.fingerprint_column}" for f in _SECRETS)}
FROM integration_configs
WHERE {_WHERE} AND {active_live()}
ORDER BY tenant_id, platform, environment, config_type
"""

# The statuses are cast as one array parameter, not value by value: Citus refuses a STABLE
# function (an enum's input) applied to a column in an UPDATE of a distributed table.
_WRITE_HEALTH = f"""
UPDATE integration_configs AS t
SET health_status = v.status, health_message = v.message,
    last_health_check_at = :now
FROM unnest(CAST(:tenant_ids AS text[]), CAST(:ids AS bigint[]),
            CAST(:statuses AS health_status[]), CAST(:messages AS text[]))
     AS v(tenant_id, id, status, message)
WHERE t.tenant_id = v.tenant_id AND t.id = v.id AND {not_deleted("t")}
"""

_DUE = f"""circuit_breaker_status = 'OPEN' AND circuit_opened_at IS NOT NULL
    AND {not_deleted()} AND {_WHERE}
    AND circuit_opened_at + make_interval(secs => {reset_seconds()})
        <= CAST(:now AS timestamptz)"""

# The due test (timestamptz arithmetic on columns, STABLE) in a subquery: Citus refuses it
# in the WHERE of an UPDATE on a distributed table; the outer OPEN test re-checks a row that
# a concurrent transaction changed. The enums are returned as they are (psycopg reads an
# enum as text): Citus refuses non-immutable casts in RETURNING.
_HALF_OPEN = f"""
UPDATE webhook_configurations SET circuit_breaker_status = 'HALF_OPEN'
WHERE circuit_breaker_status = 'OPEN'
  AND (tenant_id, id) IN (SELECT tenant_id, id FROM webhook_configurations WHERE {_DUE})
RETURNING tenant_id, platform, environment, name, circuit_opened_at
"""

_DUE_PREVIEW = f"""
SELECT tenant_id, platform::text, environment::text, name, circuit_opened_at
FROM webhook_configurations WHERE {_DUE}
"""


@dataclass(frozen=True, slots=True)
class StoredIntegration:
    """An active integration to check, its credentials still encrypted as stored.

    Attributes:
        id: the row id (with ``tenant_id``, the key :func:`write_health` writes by).
        key_version: ``encryption_key_version`` of the row.
        health_status: the status before this check.
        secrets: ``(column, ciphertext or None, fingerprint or None)`` of each secret field
            of the field table, in its order.
    """

    id: int
    tenant_id: str
    platform: Platform
    environment: Environment
    config_type: ConfigType
    key_version: int | None
    health_status: HealthStatus
    secrets: tuple[tuple[str, str | None, str | None], ...]


_TOKENS = f"""
SELECT DISTINCT ON (tenant_id, platform) id, tenant_id, platform::text, access_token,
       encryption_key_version, COALESCE(hubspot_portal_id, quickbooks_realm_id)
FROM oauth_tokens
WHERE {_WHERE} AND platform IN ('HUBSPOT', 'QUICKBOOKS') AND {live_token()}
ORDER BY tenant_id, platform, updated_at DESC, id DESC
"""


@dataclass(frozen=True, slots=True)
class StoredToken:
    """The newest active OAuth token of a tenant and platform, still encrypted.

    Attributes:
        id: the row id (part of the token's authenticated data).
        access_token: the stored ciphertext.
        key_version: ``encryption_key_version`` of the row.
        account_id: the HubSpot portal id or the QuickBooks realm id.
    """

    id: int
    tenant_id: str
    platform: Platform
    access_token: str
    key_version: int | None
    account_id: str | None


def read_check_tokens(conn: sa.Connection, selectors: Selectors) -> list[StoredToken]:
    """The newest active HubSpot and QuickBooks OAuth token per selected tenant (one query)."""
    return [
        StoredToken(r[0], r[1], Platform(r[2]), r[3], r[4], r[5])
        for r in conn.execute(sa.text(_TOKENS), selector_params(selectors))
    ]


@dataclass(frozen=True, slots=True)
class DueCircuit:
    """A webhook whose circuit moved (or, in a dry run, is due to move) to HALF_OPEN."""

    tenant_id: str
    platform: Platform
    environment: Environment
    name: str
    opened_at: datetime


@dataclass(frozen=True, slots=True)
class HealthVerdict:
    """The new health of one integration, addressed by its row key."""

    tenant_id: str
    id: int
    status: HealthStatus
    message: str


def read_check_targets(conn: sa.Connection, selectors: Selectors) -> list[StoredIntegration]:
    """The selected active, non-deleted integrations, in address order (one query)."""
    return [
        StoredIntegration(
            m["id"],
            m["tenant_id"],
            Platform(m["platform"]),
            Environment(m["environment"]),
            ConfigType(m["config_type"]),
            m["encryption_key_version"],
            HealthStatus(m["health"]),
            tuple((f.name, m[f.name], m[f.fingerprint_column]) for f in _SECRETS),
        )
        for m in conn.execute(sa.text(_TARGETS), selector_params(selectors)).mappings()
    ]


def write_health(conn: sa.Connection, now: datetime, verdicts: Sequence[HealthVerdict]) -> None:
    """Write every verdict with one set-based ``UPDATE`` (nothing when there is none)."""
    if not verdicts:
        return
    conn.execute(
        sa.text(_WRITE_HEALTH),
        {
            "now": now,
            "tenant_ids": [v.tenant_id for v in verdicts],
            "ids": [v.id for v in verdicts],
            "statuses": [v.status.value for v in verdicts],
            "messages": [v.message for v in verdicts],
        },
    )


def advance_circuits(
    conn: sa.Connection, selectors: Selectors, now: datetime, *, dry_run: bool
) -> list[DueCircuit]:
    """Move the selected circuits OPEN longer than their reset time to HALF_OPEN.

    With ``dry_run`` nothing is written and the circuits that would move are returned.
    """
    query = _DUE_PREVIEW if dry_run else _HALF_OPEN
    params = {**selector_params(selectors), "now": now}
    return [
        DueCircuit(m[0], Platform(m[1]), Environment(m[2]), m[3], m[4])
        for m in conn.execute(sa.text(query), params)
    ]
