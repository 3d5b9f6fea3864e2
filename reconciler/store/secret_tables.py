"""The tables that store encrypted values, how many rows each key version holds, and the
audit row of a re-encrypted row (shared by :mod:`~reconciler.store.rotate` and
:mod:`~reconciler.store.token_adoption`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa

from reconciler.crypto.aead import RCN1, CipherContext
from reconciler.crypto.legacy_tokens import MANAGED_TOKEN_SQL
from reconciler.model.enums import AuditAction, EntityType, Environment, Platform, RiskLevel
from reconciler.model.fields import INTEGRATION_FIELDS, WEBHOOK_FIELDS, FieldSpec, secrets_of
from reconciler.model.plan import Address, ResourceKind
from reconciler.store.audit import (
    AuditEntry,
)
from reconciler.store.database import is_distributed
from reconciler.store.row_state import bump_version

REENCRYPTED = "(sensitive, re-encrypted)"
"""What a ROTATE audit row shows as a secret column's new value."""


@dataclass(frozen=True, slots=True)
class SecretTable:
    """A table with encrypted columns, and how to name its rows.

    Attributes:
        name: the table.
        columns: its encrypted columns.
        identity_sql: SELECT expressions for the row identity the cipher context needs
            (aliased ``platform``, ``environment``, ``name``).
        entity_type: what audit rows call its rows.
    """

    name: str
    columns: tuple[str, ...]
    identity_sql: str
    entity_type: EntityType

    def context(self, row: Any, column: str) -> CipherContext:
        """The cipher context of ``column`` in ``row`` (same as the writer used)."""
        if self.entity_type is EntityType.INTEGRATION_CONFIG:
            return CipherContext.integration(
                row.tenant_id, row.platform, row.environment, row.name, column
            )
        if self.entity_type is EntityType.WEBHOOK_CONFIGURATION:
            return CipherContext.webhook(
                row.tenant_id, row.platform, row.environment, row.name, column
            )
        return CipherContext.oauth_token(row.tenant_id, row.id, column)

    def address(self, row: Any) -> str:
        """The row's address as plans print it."""
        env = Environment(row.environment) if row.environment else None
        kind = {
            EntityType.INTEGRATION_CONFIG: ResourceKind.INTEGRATION,
            EntityType.WEBHOOK_CONFIGURATION: ResourceKind.WEBHOOK,
            EntityType.OAUTH_TOKEN: ResourceKind.OAUTH_ACCOUNT,
        }[self.entity_type]
        name = row.name or f"token-{row.id}"
        return str(Address(row.tenant_id, Platform(row.platform), env, kind, name))

    @property
    def has_secret_sql(self) -> str:
        """SQL condition: the row holds at least one encrypted value."""
        return "(" + " OR ".join(f"{c} IS NOT NULL" for c in self.columns) + ")"

    @property
    def fingerprinted(self) -> bool:
        """Whether every secret column has a ``<column>_fingerprint`` column beside it."""
        return self.entity_type is not EntityType.OAUTH_TOKEN

    @property
    def legacy_sql(self) -> str:
        """SQL condition: an OAuth token row holds a value not in the ``rcn1`` form.

        Always false for the fingerprinted tables (their legacy form is ``rcn1`` itself,
        which a rotation upgrades).
        """
        if self.fingerprinted:
            return "false"
        return (
            "("
            + " OR ".join(
                f"({c} IS NOT NULL AND NOT {MANAGED_TOKEN_SQL.format(col=c)})" for c in self.columns
            )
            + ")"
        )

    def legacy_column_sql(self, column: str) -> str:
        """SQL condition: ``column`` of the row holds a legacy (not ``rcn1``) token."""
        return f"({column} IS NOT NULL AND NOT {MANAGED_TOKEN_SQL.format(col=column)})"

    @property
    def pending_sql(self) -> str:
        """SQL condition: the row needs re-encrypting (older version, or legacy ``rcn1``).

        Legacy OAuth tokens are left out: no key version of the keyring made them.
        """
        if not self.fingerprinted:
            return f"encryption_key_version < :active AND NOT {self.legacy_sql}"
        legacy = " OR ".join(f"{c} LIKE '{RCN1}%'" for c in self.columns)
        return f"(encryption_key_version < :active OR {legacy})"

    @property
    def select_sql(self) -> str:
        """The secret columns, and their fingerprints where the table has them."""
        if not self.fingerprinted:
            return ", ".join(self.columns)
        return ", ".join(f"{c}, {c}_fingerprint" for c in self.columns)


def _secret_columns(fields: tuple[FieldSpec, ...]) -> tuple[str, ...]:
    """The ciphertext columns of an entity's secrets, in the field table's order."""
    return tuple(f.column_name for f in secrets_of(fields))


SECRET_TABLES: tuple[SecretTable, ...] = (
    SecretTable(
        "integration_configs",
        _secret_columns(INTEGRATION_FIELDS),
        "platform::text AS platform, environment::text AS environment, config_type::text AS name",
        EntityType.INTEGRATION_CONFIG,
    ),
    SecretTable(
        "webhook_configurations",
        _secret_columns(WEBHOOK_FIELDS),
        "platform::text AS platform, environment::text AS environment, name",
        EntityType.WEBHOOK_CONFIGURATION,
    ),
    SecretTable(
        "oauth_tokens",
        ("access_token", "refresh_token"),
        "platform::text AS platform, NULL::text AS environment, "
        "COALESCE(stripe_account_id, hubspot_portal_id, quickbooks_realm_id) AS name",
        EntityType.OAUTH_TOKEN,
    ),
)
"""Every table that stores encrypted values, in rotation order."""


@dataclass(frozen=True, slots=True)
class KeyUsage:
    """How many rows of a table hold secrets encrypted under one key version.

    Attributes:
        table: the table.
        version: ``encryption_key_version`` (None: a row with ciphertext but no version).
        rows: rows holding at least one encrypted value under that version.
    """

    table: str
    version: int | None
    rows: int


def key_usage(conn: sa.Connection) -> list[KeyUsage]:
    """Rows per key version per table: one GROUP BY query per table.

    Legacy OAuth token rows are not counted: their ``encryption_key_version`` (``1`` after
    the upgrade's data step) names no key of ours. :func:`legacy_usage` counts them.
    """
    usage: list[KeyUsage] = []
    for table in SECRET_TABLES:
        result = conn.execute(
            sa.text(
                f"SELECT encryption_key_version AS version, count(*) AS rows FROM {table.name}"
                f" WHERE {table.has_secret_sql} AND NOT {table.legacy_sql}"
                " GROUP BY 1 ORDER BY 1"
            )
        )
        usage += [KeyUsage(table.name, row.version, row.rows) for row in result]
    return usage


@dataclass(frozen=True, slots=True)
class LegacyUsage:
    """How many rows hold a legacy (not ``rcn1``) value in one token column.

    Attributes:
        table: ``oauth_tokens``.
        column: ``access_token`` or ``refresh_token``.
        rows: rows whose value in ``column`` is legacy.
    """

    table: str
    column: str
    rows: int


def legacy_usage(conn: sa.Connection) -> list[LegacyUsage]:
    """Legacy token values per table and column (one query per table that has tokens)."""
    usage: list[LegacyUsage] = []
    for table in SECRET_TABLES:
        if table.fingerprinted:
            continue
        counts = ", ".join(
            f"count(*) FILTER (WHERE {table.legacy_column_sql(c)})" for c in table.columns
        )
        row = conn.execute(sa.text(f"SELECT {counts} FROM {table.name}")).one()
        usage += [
            LegacyUsage(table.name, column, int(n))
            for column, n in zip(table.columns, row, strict=True)
        ]
    return usage


def legacy_rows(conn: sa.Connection) -> int:
    """Rows holding at least one legacy token value."""
    return sum(
        int(
            conn.execute(
                sa.text(f"SELECT count(*) FROM {table.name} WHERE {table.legacy_sql}")
            ).scalar_one()
        )
        for table in SECRET_TABLES
        if not table.fingerprinted
    )


class RotationProgress(Protocol):
    """Receives progress while :func:`rotate_keys` runs (the CLI draws a bar from it)."""

    def start(self, total: int) -> None:
        """Called once with the number of rows to re-encrypt."""

    def advance(self, table: str, rows: int) -> None:
        """Called after each committed batch of ``rows`` rows of ``table``."""


def reencryption_entry(
    table: SecretTable,
    row: Any,
    active: int,
    code: str,
    message: str,
    before: Callable[[str], str],
) -> AuditEntry:
    """The LOW ``ROTATE`` audit row of one re-encrypted row (values masked, never shown)."""
    changes: dict[str, Any] = {
        column: {"before": before(column), "after": REENCRYPTED}
        for column in table.columns
        if getattr(row, column) is not None
    }
    changes["encryption_key_version"] = {"before": row.version, "after": active}
    return AuditEntry(
        tenant_id=row.tenant_id,
        entity_type=table.entity_type,
        entity_id=row.id,
        entity_address=table.address(row),
        action=AuditAction.ROTATE,
        changes=changes,
        risk_level=RiskLevel.LOW,
        risk_reasons=[{"code": code, "level": RiskLevel.LOW.value, "message": message}],
        requires_review=False,
    )


def write_reencrypted(conn: sa.Connection, table: SecretTable, params: Mapping[str, Any]) -> None:
    """Write re-encrypted values in one set-based UPDATE, under key version ``:active``.

    ``params`` holds the arrays ``tenant_id``, ``id`` and one per column of ``table`` (the
    new ciphertexts, in row order), and the scalars ``active`` and ``now``.
    """
    arrays = ", ".join(
        ["CAST(:tenant_id AS text[])", "CAST(:id AS bigint[])"]
        + [f"CAST(:{c} AS text[])" for c in table.columns]
    )
    conn.execute(
        sa.text(
            f"UPDATE {table.name} AS t SET "
            + ", ".join(f"{c} = v.{c}" for c in table.columns)
            + f", encryption_key_version = :active, {bump_version()},"
            " updated_at = :now"
            f" FROM unnest({arrays})"
            f" AS v(tenant_id, id, {', '.join(table.columns)})"
            " WHERE t.tenant_id = v.tenant_id AND t.id = v.id"
        ),
        params,
    )


def locked_batch(
    conn: sa.Connection, select: str, table: str, where: str, params: Mapping[str, Any]
) -> list[Any]:
    """The next ``:n`` rows matching ``where`` in ``(tenant_id, id)`` order, row-locked.

    ``FOR UPDATE SKIP LOCKED`` in one statement on PostgreSQL. Citus locks rows only in a
    statement routed to one shard: there the batch's keys are chosen first, then each
    tenant's rows are locked (and read again, still matching ``where``) by a statement of
    their own, rows another transaction holds skipped as before.
    """
    order = " ORDER BY tenant_id, id"
    if not is_distributed(conn):
        sql = f"SELECT {select} FROM {table} WHERE {where}{order} LIMIT :n FOR UPDATE SKIP LOCKED"
        return list(conn.execute(sa.text(sql), params).all())
    keys = conn.execute(
        sa.text(f"SELECT tenant_id, id FROM {table} WHERE {where}{order} LIMIT :n"), params
    ).all()
    by_tenant: dict[str, list[int]] = {}
    for key in keys:
        by_tenant.setdefault(key.tenant_id, []).append(key.id)
    lock = sa.text(
        f"SELECT {select} FROM {table} WHERE {where} AND tenant_id = :lock_tenant"
        " AND id = ANY(CAST(:lock_ids AS bigint[])) ORDER BY id FOR UPDATE SKIP LOCKED"
    )
    rows: list[Any] = []
    for tenant, ids in by_tenant.items():
        rows += conn.execute(lock, {**params, "lock_tenant": tenant, "lock_ids": ids}).all()
    return rows
