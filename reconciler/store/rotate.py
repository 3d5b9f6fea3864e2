"""Key rotation: re-encrypt every stored secret under the keyring's active version.

A rotation works table by table in batches, one transaction per batch::

    SELECT ... WHERE (encryption_key_version < active OR a secret is legacy rcn1)
           ... FOR UPDATE SKIP LOCKED LIMIT n
    decrypt with the row's version, encrypt with the active one (same row and column context)
    UPDATE ... FROM unnest(...)   -- new ciphertexts, key version, row version + 1, updated_at
    INSERT the audit rows (one ROTATE entry per row)   -- same transaction

so it is safe while the system is live (rows another transaction holds are skipped, not
waited for, and picked up by a later run) and resumable after a kill (every committed batch
stands; running again continues with what is left). Plaintext exists only in memory, one
value at a time. Bumping the row's version makes any plan saved before the rotation stale, which
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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from reconciler.crypto.aead import FieldCipher
from reconciler.errors import KeyUnavailable
from reconciler.model.sensitive import MASK
from reconciler.store.audit import (
    AuditContext,
    AuditEntry,
    append_audit_entries,
    mark_audited_write,
)
from reconciler.store.secret_tables import (
    REENCRYPTED,
    SECRET_TABLES,
    KeyUsage,
    LegacyUsage,
    RotationProgress,
    SecretTable,
    key_usage,
    legacy_rows,
    legacy_usage,
    locked_batch,
    reencryption_entry,
    write_reencrypted,
)
from reconciler.store.token_adoption import TOKENS, AdoptionResult, RefusedToken, adopt_tokens

__all__ = [
    "REENCRYPTED",
    "SECRET_TABLES",
    "TOKENS",
    "AdoptionResult",
    "KeyUsage",
    "LegacyUsage",
    "RefusedToken",
    "RotationProgress",
    "RotationResult",
    "SecretTable",
    "adopt_tokens",
    "check_rotatable",
    "key_usage",
    "legacy_rows",
    "legacy_usage",
    "pending_rows",
    "rotate_keys",
]


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
    mark_audited_write(conn, "keys rotate")  # each batch appends its own ROTATE rows
    rows = locked_batch(
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
    write_reencrypted(conn, table, params)
    append_audit_entries(conn, [_audit_entry(table, r, active) for r in rows], context, now=now)
    return len(rows)


def _audit_entry(table: SecretTable, row: Any, active: int) -> AuditEntry:
    message = (
        f"secrets re-encrypted from key version {row.version} to {active}"
        if row.version != active
        else f"secrets re-encrypted under key version {active} in the rcn2 form"
    )
    return reencryption_entry(table, row, active, "KEY_ROTATION", message, lambda _: MASK)
