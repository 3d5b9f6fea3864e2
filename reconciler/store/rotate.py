"""Key rotation: re-encrypt every stored secret under the keyring's active version.

A rotation works table by table in batches, one transaction per batch::

    SELECT ... WHERE (encryption_key_version < active OR a secret is legacy rcn1)
           ... FOR UPDATE SKIP LOCKED LIMIT n
    decrypt with the row's version, encrypt with the active one (same row and column context)
    UPDATE ... FROM unnest(...)   -- new ciphertexts, version, row_version + 1, updated_at
    INSERT the audit rows (one ROTATE entry per row)   -- same transaction

so it is safe while the system is live (rows another transaction holds are skipped, not
waited for, and picked up by a later run) and resumable after a kill (every committed batch
stands; running again continues with what is left). Plaintext exists only in memory, one
value at a time. Bumping ``row_version`` makes any plan saved before the rotation stale, which
is right: the rows it pinned have changed.

Fingerprints do not change: they are computed from the plaintext, which rotation keeps.
Every value is decrypted with the row's fingerprint (see ``crypto.aead``), so a ciphertext
that is not the one written with its fingerprint (copied back from an earlier value, or
swapped in from another row or column) is refused: the rotation stops with a one-line error
naming the row, its batch is rolled back, and ``reconciler apply`` rewrites that value from
the manifests before the rotation is run again. A legacy ``rcn1`` value of an integration or
webhook comes out as ``rcn2``, but only when its plaintext's fingerprint is the row's
fingerprint column. OAuth tokens have no fingerprint column: they stay ``rcn1``, bound to
their row only.

OAuth tokens the application wrote in its own form before adoption (*legacy*: not
``rcn1``, see ``crypto.legacy_tokens``) are neither counted under a key version nor rotated:
:func:`legacy_usage` counts them, a rotation leaves them as they are and reports them, and
:func:`adopt_tokens` (``keys adopt-tokens``) brings them into ``rcn1`` with the same batch,
lock and audit discipline as a rotation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa

from reconciler.crypto.aead import RCN1, CipherContext, FieldCipher
from reconciler.crypto.legacy_tokens import MANAGED_TOKEN_SQL, Decoder, is_managed_token
from reconciler.errors import DecryptFailed, KeyUnavailable
from reconciler.model.enums import AuditAction, EntityType, Environment, Platform, RiskLevel
from reconciler.model.plan import Address, ResourceKind
from reconciler.model.sensitive import MASK
from reconciler.store.audit import (
    AuditContext,
    AuditEntry,
    append_audit_entries,
    mark_audited_write,
)
from reconciler.store.database import is_distributed

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


SECRET_TABLES: tuple[SecretTable, ...] = (
    SecretTable(
        "integration_configs",
        ("api_key", "api_secret"),
        "platform::text AS platform, environment::text AS environment, config_type::text AS name",
        EntityType.INTEGRATION_CONFIG,
    ),
    SecretTable(
        "webhook_configurations",
        ("signing_secret", "auth_token", "auth_password"),
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


@dataclass(slots=True)
class RotationResult:
    """What a rotation did.

    Attributes:
        active_version: the version everything was re-encrypted to.
        rotated: rows re-encrypted, per table.
        batches: committed transactions.
        remaining: rows still under an older version because another transaction held them
            (run the rotation again to pick them up).
        legacy: OAuth token rows left as they are because they hold a legacy value
            (``keys adopt-tokens`` brings them in); not a failure.
    """

    active_version: int
    rotated: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    remaining: int = 0
    legacy: int = 0

    @property
    def total(self) -> int:
        """Rows re-encrypted in all tables."""
        return sum(self.rotated.values())


def check_rotatable(usage: Sequence[KeyUsage], cipher: FieldCipher) -> int:
    """Rows under an older key version; refuse before writing anything if some cannot be.

    (A rotation also re-encrypts legacy ``rcn1`` rows under the active version: see
    :func:`pending_rows`.)

    Raises:
        KeyUnavailable: a row uses a version newer than the active one (rotation must never
            lower a version), a version missing from the keyring, or no version at all.
    """
    active = cipher.active_version
    for item in usage:
        if item.version is None:
            raise KeyUnavailable(
                f"{item.rows} row(s) of {item.table} hold ciphertext but no "
                "encryption_key_version; set it to the version they were encrypted with"
            )
        if item.version > active:
            raise KeyUnavailable(
                f"{item.rows} row(s) of {item.table} use key version {item.version}, newer than "
                f"the keyring's newest ({active}): add version {item.version} to the keyring"
            )
        if item.version not in cipher.keyring:
            raise KeyUnavailable(
                f"{item.rows} row(s) of {item.table} use key version {item.version}, which is "
                "not in the keyring: add it back until they are rotated"
            )
    return sum(item.rows for item in usage if item.version != active)


def rotate_keys(
    engine: sa.Engine,
    cipher: FieldCipher,
    context: AuditContext,
    *,
    batch_size: int = 500,
    progress: RotationProgress | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RotationResult:
    """Re-encrypt every secret not under the active key version; see the module docstring.

    Args:
        engine: the database.
        cipher: holds the keyring; its active version is the target.
        context: who rotates (for the audit rows).
        batch_size: rows per transaction.
        progress: told the total, then each committed batch.
        clock: the time written to ``updated_at`` and the audit rows of a batch.

    Raises:
        KeyUnavailable: some rows cannot be rotated (see :func:`check_rotatable`).
        DecryptFailed: a stored value does not decrypt, or is not the value its fingerprint
            describes (replayed or swapped); its batch is rolled back.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    with engine.connect() as conn:
        check_rotatable(key_usage(conn), cipher)
        total = pending_rows(conn, cipher.active_version)
    if progress is not None:
        progress.start(total)
    result = RotationResult(active_version=cipher.active_version)
    for table in SECRET_TABLES:
        result.rotated[table.name] = 0
        while True:
            with engine.begin() as conn:
                count = _rotate_batch(conn, table, cipher, context, batch_size, clock())
            if count == 0:
                break
            result.rotated[table.name] += count
            result.batches += 1
            if progress is not None:
                progress.advance(table.name, count)
    with engine.connect() as conn:
        result.remaining = pending_rows(conn, cipher.active_version)
        result.legacy = legacy_rows(conn)
    return result


def pending_rows(conn: sa.Connection, active: int) -> int:
    """Rows a rotation to ``active`` would re-encrypt (older version, or legacy ``rcn1``)."""
    return sum(
        int(
            conn.execute(
                sa.text(
                    f"SELECT count(*) FROM {table.name}"
                    f" WHERE {table.pending_sql} AND {table.has_secret_sql}"
                ),
                {"active": active},
            ).scalar_one()
        )
        for table in SECRET_TABLES
    )


def _rotate_batch(
    conn: sa.Connection,
    table: SecretTable,
    cipher: FieldCipher,
    context: AuditContext,
    batch_size: int,
    now: datetime,
) -> int:
    active = cipher.active_version
    cols = ", ".join(table.columns)
    mark_audited_write(conn, "keys rotate")  # each batch appends its own ROTATE rows
    rows = _locked_batch(
        conn,
        f"tenant_id, id, encryption_key_version AS version, {table.identity_sql},"
        f" {table.select_sql}",
        table.name,
        f"{table.pending_sql} AND {table.has_secret_sql}",
        {"active": active, "n": batch_size},
    )
    if not rows:
        return 0
    params: dict[str, Any] = {
        "tenant_id": [r.tenant_id for r in rows],
        "id": [r.id for r in rows],
        "active": active,
        "now": now,
    }
    for column in table.columns:
        params[column] = [
            None
            if getattr(r, column) is None
            else cipher.reencrypt(
                getattr(r, column),
                r.version,
                table.context(r, column),
                getattr(r, f"{column}_fingerprint") if table.fingerprinted else None,
            )
            for r in rows
        ]
    arrays = ", ".join(
        ["CAST(:tenant_id AS text[])", "CAST(:id AS bigint[])"]
        + [f"CAST(:{c} AS text[])" for c in table.columns]
    )
    conn.execute(
        sa.text(
            f"UPDATE {table.name} AS t SET "
            + ", ".join(f"{c} = v.{c}" for c in table.columns)
            + ", encryption_key_version = :active, row_version = t.row_version + 1,"
            " updated_at = :now"
            f" FROM unnest({arrays})"
            f" AS v(tenant_id, id, {cols})"
            " WHERE t.tenant_id = v.tenant_id AND t.id = v.id"
        ),
        params,
    )
    append_audit_entries(conn, [_audit_entry(table, r, active) for r in rows], context, now=now)
    return len(rows)


def _locked_batch(
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


def _audit_entry(table: SecretTable, row: Any, active: int) -> AuditEntry:
    message = (
        f"secrets re-encrypted from key version {row.version} to {active}"
        if row.version != active
        else f"secrets re-encrypted under key version {active} in the rcn2 form"
    )
    return _reencryption_entry(table, row, active, "KEY_ROTATION", message, lambda _: MASK)


def _reencryption_entry(
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


# -- adopting legacy tokens ------------------------------------------------------------------


TOKENS = next(t for t in SECRET_TABLES if not t.fingerprinted)
"""The ``oauth_tokens`` entry of :data:`SECRET_TABLES`."""


@dataclass(frozen=True, slots=True)
class RefusedToken:
    """A legacy token row adoption left as it was, and why (the reason quotes no value).

    Attributes:
        tenant_id: the row's tenant.
        id: the row's id.
        column: the column that could not be read.
        reason: why, in words.
    """

    tenant_id: str
    id: int
    column: str
    reason: str

    def describe(self) -> str:
        """``oauth_tokens.COLUMN tenant=T row=ID: reason``."""
        return f"{TOKENS.name}.{self.column} tenant={self.tenant_id} row={self.id}: {self.reason}"


@dataclass(slots=True)
class AdoptionResult:
    """What :func:`adopt_tokens` did (or, for a dry run, would do).

    Attributes:
        layout: the legacy layout the values were read with.
        active_version: the key version they were encrypted under.
        adopted: rows now (or, in a dry run, that would be) in the ``rcn1`` form.
        batches: transactions run.
        refused: rows left as they were because a value could not be read.
        remaining: legacy rows still left afterwards that were not refused: held by another
            transaction, or written meanwhile (run the command again).
        dry_run: nothing was committed.
    """

    layout: str
    active_version: int
    adopted: int = 0
    batches: int = 0
    refused: list[RefusedToken] = field(default_factory=list)
    remaining: int = 0
    dry_run: bool = False


def adopt_tokens(
    engine: sa.Engine,
    cipher: FieldCipher,
    context: AuditContext,
    *,
    layout: str,
    decode: Decoder,
    batch_size: int = 500,
    dry_run: bool = False,
    progress: RotationProgress | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AdoptionResult:
    """Store every legacy OAuth token as ``rcn1`` under the keyring's active version.

    Rows are taken in ``(tenant_id, id)`` order, a batch per transaction, ``FOR UPDATE SKIP
    LOCKED`` (a row the OAuth flow holds is left for the next run). Each legacy value is
    read with ``decode`` and encrypted for its own row and column; a value of the same row
    already in the ``rcn1`` form is re-encrypted under the active version too, so the row's
    single ``encryption_key_version`` stays true. A row with a value that cannot be read is
    refused (reported, left as it was) and the others go ahead. One LOW ``ROTATE`` audit row
    per adopted row, appended in the batch's transaction through the keyed chain.

    Args:
        engine: the database.
        cipher: the keyring (its active version encrypts).
        context: who adopts (for the audit rows).
        layout: the layout's name (recorded in the audit rows).
        decode: reads one legacy value (``crypto.legacy_tokens.decoder``); holds the key.
        batch_size: rows per transaction.
        dry_run: run every batch, writes and audit rows included, and roll each back.
        progress: told the total, then each batch.
        clock: the time written to ``updated_at`` and the audit rows of a batch.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    table = TOKENS
    with engine.connect() as conn:
        total = legacy_rows(conn)
    if progress is not None:
        progress.start(total)
    result = AdoptionResult(layout, cipher.active_version, dry_run=dry_run)
    after: tuple[str, int] = ("", -(2**63))
    while True:
        with engine.connect() as conn:
            tx = conn.begin()
            try:
                rows = _locked_batch(
                    conn,
                    f"tenant_id, id, encryption_key_version AS version,"
                    f" {table.identity_sql}, {table.select_sql}",
                    table.name,
                    f"{table.legacy_sql} AND (tenant_id, id) > (:tenant, :id)",
                    {"tenant": after[0], "id": after[1], "n": batch_size},
                )
                if not rows:
                    tx.rollback()
                    break
                after = (rows[-1].tenant_id, rows[-1].id)
                mark_audited_write(conn, "keys adopt-tokens")  # each batch appends its rows
                count = _adopt_batch(
                    conn, table, rows, cipher, context, layout, decode, result, clock()
                )
                if dry_run:
                    tx.rollback()
                else:
                    tx.commit()
            except BaseException:
                if tx.is_active:
                    tx.rollback()
                raise
        result.adopted += count
        result.batches += 1
        if progress is not None:
            progress.advance(table.name, count)
    with engine.connect() as conn:
        left = legacy_rows(conn)
    result.remaining = 0 if dry_run else max(0, left - len(result.refused))
    return result


def _adopt_batch(
    conn: sa.Connection,
    table: SecretTable,
    rows: Sequence[Any],
    cipher: FieldCipher,
    context: AuditContext,
    layout: str,
    decode: Decoder,
    result: AdoptionResult,
    now: datetime,
) -> int:
    active = cipher.active_version
    adopted: list[tuple[Any, dict[str, str | None], list[str]]] = []
    for r in rows:
        values: dict[str, str | None] = {}
        legacy_columns: list[str] = []
        refused: RefusedToken | None = None
        for column in table.columns:
            stored = getattr(r, column)
            if stored is None:
                values[column] = None
                continue
            ctx = table.context(r, column)
            try:
                if is_managed_token(stored):
                    if r.version is None:
                        raise DecryptFailed("an rcn1 value without encryption_key_version")
                    values[column] = cipher.reencrypt(stored, r.version, ctx, None)
                else:
                    values[column] = cipher.encrypt(decode(stored), ctx, None)
                    legacy_columns.append(column)
            except (DecryptFailed, KeyUnavailable) as exc:
                refused = RefusedToken(r.tenant_id, r.id, column, _one_line(str(exc)))
                break
        if refused is not None:
            result.refused.append(refused)
        else:
            adopted.append((r, values, legacy_columns))
    if not adopted:
        return 0
    _store(conn, table, [(a[0], a[1]) for a in adopted], active, now)
    append_audit_entries(
        conn,
        [_adoption_entry(table, r, active, layout, legacy) for r, _, legacy in adopted],
        context,
        now=now,
    )
    return len(adopted)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _store(
    conn: sa.Connection,
    table: SecretTable,
    rows: Sequence[tuple[Any, Mapping[str, str | None]]],
    active: int,
    now: datetime,
) -> None:
    """Write new ciphertexts and the active version for ``rows`` (one UPDATE)."""
    params: dict[str, Any] = {
        "tenant_id": [r.tenant_id for r, _ in rows],
        "id": [r.id for r, _ in rows],
        "active": active,
        "now": now,
    }
    for column in table.columns:
        params[column] = [values[column] for _, values in rows]
    arrays = ", ".join(
        ["CAST(:tenant_id AS text[])", "CAST(:id AS bigint[])"]
        + [f"CAST(:{c} AS text[])" for c in table.columns]
    )
    conn.execute(
        sa.text(
            f"UPDATE {table.name} AS t SET "
            + ", ".join(f"{c} = v.{c}" for c in table.columns)
            + ", encryption_key_version = :active, row_version = t.row_version + 1,"
            " updated_at = :now"
            f" FROM unnest({arrays})"
            f" AS v(tenant_id, id, {', '.join(table.columns)})"
            " WHERE t.tenant_id = v.tenant_id AND t.id = v.id"
        ),
        params,
    )


def _adoption_entry(
    table: SecretTable, row: Any, active: int, layout: str, legacy: Sequence[str]
) -> AuditEntry:
    message = f"legacy token ({layout}) stored in the rcn1 form under key version {active}"
    return _reencryption_entry(
        table,
        row,
        active,
        "TOKEN_ADOPTED",
        message,
        lambda column: f"(sensitive, legacy {layout})" if column in legacy else MASK,
    )
