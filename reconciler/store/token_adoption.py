"""Adoption of OAuth tokens written before the reconciler managed them: each legacy value is
read with its layout and stored in the ``rcn1`` form under the active key version, with the
batch, lock and audit discipline of a rotation (see :mod:`reconciler.store.rotate`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from reconciler.crypto.aead import FieldCipher
from reconciler.crypto.legacy_tokens import Decoder, is_managed_token
from reconciler.errors import DecryptFailed, KeyUnavailable
from reconciler.model.sensitive import MASK
from reconciler.store.audit import (
    AuditContext,
    AuditEntry,
    append_audit_entries,
    mark_audited_write,
)
from reconciler.store.secret_tables import (
    SECRET_TABLES,
    RotationProgress,
    SecretTable,
    legacy_rows,
    locked_batch,
    reencryption_entry,
    write_reencrypted,
)

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
                rows = locked_batch(
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
    write_reencrypted(conn, table, params)


def _adoption_entry(
    table: SecretTable, row: Any, active: int, layout: str, legacy: Sequence[str]
) -> AuditEntry:
    message = f"legacy token ({layout}) stored in the rcn1 form under key version {active}"
    return reencryption_entry(
        table,
        row,
        active,
        "TOKEN_ADOPTED",
        message,
        lambda column: f"(sensitive, legacy {layout})" if column in legacy else MASK,
    )
