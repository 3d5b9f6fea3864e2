"""``audit``: read, review and verify the hash-chained audit log.

``list`` and ``pending`` read rows, ``review`` appends a signed decision, ``summary`` counts
rows per day, ``verify`` recomputes every chain (fail-closed: what it cannot prove is a
gap unless the caller accepts it) and ``checkpoint`` records the verified heads.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Unpack

from reconciler.context import MAX_NOTE_LENGTH, checked_name, user_agent
from reconciler.crypto.audit_key import AUDIT_KEY_ENV, AuditKey, load_audit_key
from reconciler.errors import ConfigError
from reconciler.files import atomic_write
from reconciler.model.enums import ReviewDecision
from reconciler.store import audit
from reconciler.store.audit import AuditFilters, AuditRecord, ChainReport, Checkpoint, SummaryRow
from reconciler.store.database import resolve_database_url
from reconciler.store.session import connect

__all__ = [
    "AUDIT_KEY_ENV",
    "AuditCheckpoint",
    "AuditRecord",
    "AuditVerification",
    "ChainReport",
    "SummaryRow",
    "audit_checkpoint",
    "audit_summary",
    "list_audit",
    "pending_reviews",
    "review",
    "verify_audit",
]


@dataclass(frozen=True, slots=True)
class AuditVerification:
    """What :func:`verify_audit` found, and what it could not prove.

    Attributes:
        report: the chains as recomputed.
        gaps: what the chains do not prove and the caller did not accept, one line each.
        checkpoint: the checkpoint file verified against, if any.
    """

    report: ChainReport
    gaps: tuple[str, ...]
    checkpoint: Path | None

    @property
    def intact(self) -> bool:
        """No chain is broken."""
        return not self.report.breaks

    @property
    def verified(self) -> bool:
        """No chain is broken and nothing is left unproved."""
        return self.intact and not self.gaps


@dataclass(frozen=True, slots=True)
class AuditCheckpoint:
    """A checkpoint of every verified chain head.

    Attributes:
        text: the checkpoint document (JSON, newline-terminated).
        tenants: how many tenant chains it records.
        out: the file it was written to (None: not written).
    """

    text: str
    tenants: int
    out: Path | None


def list_audit(
    *,
    since: str | None = None,
    database_url: str | None = None,
    now: datetime | None = None,
    **filters: Unpack[AuditFilters],
) -> list[AuditRecord]:
    """Newest audit rows first, optionally of one apply run (an id or a prefix) or object.

    ``since`` is an age (``30d``, ``12h``, ``90m``, ``2w``) or a date, relative to ``now``;
    ``filters`` are those of :class:`~reconciler.store.audit.AuditFilters`.

    Raises:
        ConfigError: ``since`` is neither an age nor a date.
    """
    since_at = audit.parse_since(since, now=now or datetime.now(UTC)) if since else None
    with connect(database_url, "audit list") as conn:
        return audit.list_entries(conn, since=since_at, **filters)


def pending_reviews(
    *, tenant: str | None = None, database_url: str | None = None
) -> list[AuditRecord]:
    """HIGH and CRITICAL changes that still await a review, oldest first."""
    with connect(database_url, "audit pending") as conn:
        return audit.pending_reviews(conn, tenant)


def rejected_reviews(
    *, tenant: str | None = None, database_url: str | None = None
) -> list[AuditRecord]:
    """Changes a reviewer rejected, oldest first (what a compliance job fails on)."""
    with connect(database_url, "audit rejected") as conn:
        return audit.rejected_reviews(conn, tenant)


def review(
    *,
    audit_id: int,
    decision: ReviewDecision,
    reviewed_by: str,
    tenant: str | None = None,
    note: str | None = None,
    database_url: str | None = None,
    now: datetime | None = None,
) -> AuditRecord:
    """Approve or reject a row that requires review (once), as a signed ``REVIEW`` row.

    Raises:
        ConfigError: an empty or malformed reviewer or note, a row that needs no review or
            was reviewed already, a reviewer who performed the change, another tenant's row.
    """
    target = resolve_database_url(database_url)
    context = audit.AuditContext(
        performed_by=checked_name(reviewed_by, "--by"),
        ip_address=None,
        user_agent=user_agent(os.environ),
        session_id=str(uuid.uuid4()),
        key=load_audit_key(target, create=True),
    )
    if not context.performed_by:
        raise ConfigError("--by: the reviewer's name is empty")
    note_text = checked_name(note, "--note", kind="a note", limit=MAX_NOTE_LENGTH) if note else ""
    with connect(database_url, "audit review", target) as conn:
        return audit.review_entry(
            conn,
            tenant=tenant,
            audit_id=audit_id,
            decision=decision,
            context=context,
            note=note_text or None,
            now=now or datetime.now(UTC),
        )


def audit_summary(*, days: int = 7, database_url: str | None = None) -> list[SummaryRow]:
    """Audit rows per day, entity type, action and risk level."""
    with connect(database_url, "audit summary") as conn:
        return audit.daily_summary(conn, days)


def verify_audit(
    *,
    tenants: Sequence[str] = (),
    checkpoint: Path | None = None,
    without_key: bool = False,
    allow_unkeyed: bool = False,
    database_url: str | None = None,
) -> AuditVerification:
    """Recompute every tenant's hash chain (keyed rows with the audit key).

    Args:
        tenants: only these tenants (default: all).
        checkpoint: also require every chain to extend the heads recorded in this file.
        without_key: accept that, without the audit key, keyed rows are checked for their
            links only.
        allow_unkeyed: accept unkeyed rows no keyed row or checkpoint covers yet.
        database_url: as for every command.

    Raises:
        ConfigError: the checkpoint file cannot be read or is not a checkpoint.
    """
    recorded = _read_checkpoint(checkpoint) if checkpoint else None
    report = _inspect(database_url, tenants, recorded, "audit verify")
    return AuditVerification(report, _unaccepted(report, without_key, allow_unkeyed), checkpoint)


def audit_checkpoint(
    *,
    out: Path | None = None,
    without_key: bool = False,
    allow_unkeyed: bool = False,
    database_url: str | None = None,
    now: datetime | None = None,
) -> AuditCheckpoint:
    """Verify every chain, then record each tenant's head as JSON (written to ``out``).

    Raises:
        ConfigError: a chain is broken or not fully verified (nothing is written), or
            ``out`` cannot be written.
    """
    report = _inspect(database_url, (), None, "audit checkpoint")
    if report.breaks:
        first = report.breaks[0]
        raise ConfigError(
            f"no checkpoint written: the chain of tenant {first.tenant_id} is broken at row "
            f"{first.audit_id} ({first.kind}); run `reconciler audit verify`"
        )
    gaps = _unaccepted(report, without_key, allow_unkeyed)
    if gaps:
        raise ConfigError(f"no checkpoint written: {gaps[0]}")
    document = audit.checkpoint_document(report, now=now or datetime.now(UTC))
    text = json.dumps(document, indent=2) + "\n"
    if out is not None:
        try:
            atomic_write(out, text)
        except OSError as exc:
            raise ConfigError(f"cannot write {out}: {exc.strerror}") from exc
    return AuditCheckpoint(text, len(report.tips), out)


def _inspect(
    database_url: str | None,
    tenants: Sequence[str],
    checkpoint: Checkpoint | None,
    purpose: str,
) -> ChainReport:
    target = resolve_database_url(database_url)
    key: AuditKey | None = load_audit_key(target, create=False)
    with connect(database_url, purpose, target) as conn:
        return audit.inspect_chains(conn, list(tenants) or None, key=key, checkpoint=checkpoint)


def _unaccepted(report: ChainReport, without_key: bool, allow_unkeyed: bool) -> tuple[str, ...]:
    """What the chain does not prove and the user did not accept: fail closed on each."""
    gaps = []
    if report.keyed_unverified and not without_key:
        gaps.append(
            f"{report.keyed_unverified} keyed row(s) not verified: no audit key (set "
            f"${AUDIT_KEY_ENV}, or accept checking their links only with --without-key)"
        )
    if report.unkeyed_only and not allow_unkeyed:
        gaps.append(
            f"{report.unkeyed_only} unkeyed row(s) covered by no keyed row or checkpoint: the "
            "database owner could have rewritten them (written before the keyed chain? accept "
            "them once with --allow-unkeyed and keep a checkpoint)"
        )
    return tuple(gaps)


def _read_checkpoint(path: Path) -> Checkpoint:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"cannot read checkpoint {path}: {reason}") from exc
    return audit.parse_checkpoint(text, source=str(path))
