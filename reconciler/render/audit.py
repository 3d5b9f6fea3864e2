"""Text and JSON of the ``reconciler audit`` commands."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from reconciler.crypto.audit_key import AUDIT_KEY_ENV
from reconciler.escape import printable
from reconciler.render.table import format_table, utc_time
from reconciler.store.audit import AuditRecord, ChainReport, SummaryRow


def render_records(records: Sequence[AuditRecord], *, wide: bool = False) -> str:
    """Audit rows as a table (the caller says what to print when there are none)."""
    # SOURCE tells the reconciler's own rows from those the database recorded for a write
    # made outside it (BY is then the database login); --wide adds the security context.
    headers = ["ID", "TIME (UTC)", "TENANT", "ACTION", "RISK", "REVIEW", "BY", "SOURCE"]
    if wide:
        headers += ["CLIENT", "USER AGENT", "SESSION"]
    headers.append("ADDRESS")
    rows = []
    for r in records:
        row: list[object] = [
            r.id,
            utc_time(r.created_at) or "-",
            r.tenant_id,
            r.action,
            r.risk_level,
            r.review_status,
            r.performed_by,
            r.recorded_by,
        ]
        if wide:
            row += [r.ip_address, r.user_agent, r.session_id]
        row.append(r.entity_address)
        rows.append(row)
    return format_table(headers, rows)


def render_review(record: AuditRecord) -> str:
    """One line: the decision recorded on a row."""
    return printable(
        f"Audit row {record.id} of tenant {record.tenant_id} ({record.entity_address}): "
        f"{record.review_decision} by {record.reviewed_by} (review row {record.review_id})."
    )


def summary_records(rows: Sequence[SummaryRow]) -> list[dict[str, Any]]:
    """The JSON form of ``audit summary``."""
    return [asdict(r) for r in rows]


def render_summary(rows: Sequence[SummaryRow]) -> str:
    """Audit rows per day, entity, action and risk as a table."""
    headers = ("DATE", "ENTITY", "ACTION", "RISK", "COUNT")
    table = [(r.audit_date, r.entity_type, r.action, r.risk_level, r.count) for r in rows]
    return format_table(headers, table)


def verification_record(
    report: ChainReport, gaps: Sequence[str], checkpoint: Path | None
) -> dict[str, Any]:
    """The JSON form of ``audit verify``."""
    return {
        "intact": not report.breaks,
        "verified": not report.breaks and not gaps,
        "rows": report.rows,
        "keyed_rows": report.keyed_rows,
        "keyed_unverified": report.keyed_unverified,
        "unkeyed_rows": report.unkeyed_rows,
        "unkeyed_only": report.unkeyed_only,
        "database_rows": report.database_rows,
        "database_uncovered": report.database_uncovered,
        "checkpoint": str(checkpoint) if checkpoint else None,
        "heads": report.heads,
        "breaks": [
            {"tenant": b.tenant_id, "id": b.audit_id, "kind": b.kind, "detail": b.detail}
            for b in report.breaks
        ],
        "unverified": list(gaps),
    }


def render_verification(report: ChainReport, gaps: Sequence[str], checkpoint: Path | None) -> str:
    """Each break and gap, then one line saying what was checked and how far it is proved."""
    lines = [
        f"BROKEN tenant {b.tenant_id} at row {b.audit_id} ({b.kind}): {b.detail}"
        for b in report.breaks
    ]
    lines += [f"NOT VERIFIED: {gap}" for gap in gaps]
    tenant_count = len(report.heads) + len(report.breaks)
    state = "BROKEN" if report.breaks else "NOT VERIFIED" if gaps else "intact"
    against = f" against checkpoint {checkpoint}" if checkpoint else ""
    lines.append(
        f"Audit chain {state}{against}: {report.rows} row(s), "
        f"{tenant_count} tenant(s) checked; {_coverage(report)}."
    )
    return "\n".join(lines) + "\n"


KEY_SKIPPED_WARNING = (
    f"WARNING: keyed verification was skipped (no ${AUDIT_KEY_ENV}): "
    "the database owner could have rewritten keyed rows undetected."
)
"""Printed on stderr when ``--without-key`` let keyed rows pass on their links alone."""


def _coverage(report: ChainReport) -> str:
    parts = [f"{report.keyed_rows - report.keyed_unverified} keyed row(s) verified with the key"]
    if report.keyed_unverified:
        parts.append(f"{report.keyed_unverified} keyed row(s) checked for links only")
    parts.append(f"{report.unkeyed_rows} unkeyed (v1) row(s)")
    if report.unkeyed_rows:
        parts.append(f"{report.unkeyed_only} of them only unkeyed-verified")
    parts.append(f"{report.database_rows} row(s) recorded by the database")
    if report.database_uncovered:
        parts.append(
            f"{report.database_uncovered} of them after the newest keyed row "
            "(only a checkpoint protects those)"
        )
    return "; ".join(parts)
