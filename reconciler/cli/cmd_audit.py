"""CLI commands: ``reconciler audit list | pending | review | summary | verify | checkpoint``."""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from reconciler.cli.exit_codes import ExitCode
from reconciler.cli.options import database_url_option, handle_errors
from reconciler.context import MAX_NOTE_LENGTH, checked_name, user_agent
from reconciler.crypto.audit_key import AUDIT_KEY_ENV, AuditKey, load_audit_key
from reconciler.errors import ConfigError
from reconciler.escape import printable
from reconciler.files import atomic_write
from reconciler.model.enums import ReviewDecision, RiskLevel
from reconciler.store import audit
from reconciler.store.database import resolve_database_url
from reconciler.store.session import connect

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for machines.",
)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain left-aligned table; ``None`` shows as ``-``."""
    # Cells come from the database, where any writer of the table could put a newline or an
    # escape sequence: escaped, they cannot forge a line of the table or a CI log.
    cells = [[("-" if v is None else printable(str(v))) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = [list(headers), *cells]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _emit_records(
    records: list[audit.AuditRecord], fmt: str, empty: str, *, wide: bool = False
) -> None:
    if fmt == "json":
        _emit_json([r.to_dict() for r in records])
        return
    if not records:
        click.echo(empty)
        return
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
            _when(r.created_at),
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
    click.echo(format_table(headers, rows))


wide_option = click.option(
    "--wide",
    is_flag=True,
    help="Also show the security context: client address, user agent, session.",
)


@click.group("audit")
def audit_group() -> None:
    """Read, review and verify the hash-chained audit log."""


@audit_group.command("list")
@click.option("--tenant", metavar="T", help="Only this tenant.")
@click.option(
    "--risk",
    type=click.Choice([r.value for r in RiskLevel], case_sensitive=False),
    help="Only rows at this risk level or above.",
)
@click.option("--since", metavar="AGE", help="Only rows newer than 30d, 12h, 90m, 2w or a date.")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@click.option("--run", metavar="RUN", help="Only rows of this apply run (id or a prefix).")
@click.option(
    "--address", metavar="ADDRESS", help="Only rows of this object (tenant/platform/env/kind/name)."
)
@wide_option
@format_option
@database_url_option
@handle_errors
def list_cmd(
    tenant: str | None,
    risk: str | None,
    since: str | None,
    limit: int,
    run: str | None,
    address: str | None,
    wide: bool,
    fmt: str,
    database_url: str | None,
) -> None:
    """Newest audit rows first.

    \b
    SOURCE is "reconciler" for rows the reconciler wrote (signed with the audit key) and
    "database" for rows the database recorded for a write made outside the reconciler
    (BY is then the database login). --wide and --format json add the client address,
    user agent (for database rows: the client's application_name) and session.
    """
    since_at = audit.parse_since(since, now=datetime.now(UTC)) if since else None
    with connect(database_url, "audit list") as conn:
        records = audit.list_entries(
            conn,
            tenant=tenant,
            min_risk=RiskLevel(risk.upper()) if risk else None,
            since=since_at,
            limit=limit,
            run=run,
            address=address,
        )
    _emit_records(records, fmt, "No audit rows match.", wide=wide)


@audit_group.command("pending")
@click.option("--tenant", metavar="T", help="Only this tenant.")
@click.option(
    "--fail-on-rejected",
    is_flag=True,
    help="Exit 1 when any change was rejected in review (see `audit rejected`).",
)
@wide_option
@format_option
@database_url_option
@handle_errors
def pending_cmd(
    tenant: str | None, fail_on_rejected: bool, wide: bool, fmt: str, database_url: str | None
) -> None:
    """HIGH and CRITICAL changes that still await a review, oldest first."""
    with connect(database_url, "audit pending") as conn:
        records = audit.pending_reviews(conn, tenant)
        rejected = audit.rejected_reviews(conn, tenant) if fail_on_rejected else []
    _emit_records(records, fmt, "No changes await review.", wide=wide)
    if rejected:
        click.echo(
            f"{len(rejected)} change(s) were rejected in review: see `reconciler audit rejected`",
            err=True,
        )
        sys.exit(ExitCode.ERROR)


@audit_group.command("rejected")
@click.option("--tenant", metavar="T", help="Only this tenant.")
@wide_option
@format_option
@database_url_option
@handle_errors
def rejected_cmd(tenant: str | None, wide: bool, fmt: str, database_url: str | None) -> None:
    """Changes a reviewer rejected, oldest first: applied, but to be rolled back or justified."""
    with connect(database_url, "audit rejected") as conn:
        records = audit.rejected_reviews(conn, tenant)
    _emit_records(records, fmt, "No change was rejected in review.", wide=wide)


@audit_group.command("review")
@click.argument("audit_id", metavar="ID", type=int)
@click.option("--tenant", metavar="T", help="The row's tenant (checked when given).")
@click.option(
    "--decision", type=click.Choice(["approve", "reject"], case_sensitive=False), required=True
)
@click.option("--by", "reviewed_by", metavar="NAME", required=True, help="Who reviews.")
@click.option("--note", default=None, help="Why (kept with the decision).")
@format_option
@database_url_option
@handle_errors
def review_cmd(
    audit_id: int,
    tenant: str | None,
    decision: str,
    reviewed_by: str,
    note: str | None,
    fmt: str,
    database_url: str | None,
) -> None:
    """Approve or reject an audit row that requires review (once; it cannot be changed).

    \b
    The decision is appended to the audit chain as a REVIEW row signed with the audit key
    ($RECONCILER_AUDIT_KEY). Whoever performed the change cannot review it.
    """
    verdict = ReviewDecision.APPROVED if decision.lower() == "approve" else ReviewDecision.REJECTED
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
        record = audit.review_entry(
            conn,
            tenant=tenant,
            audit_id=audit_id,
            decision=verdict,
            context=context,
            note=note_text or None,
            now=datetime.now(UTC),
        )
    if fmt == "json":
        _emit_json(record.to_dict())
    else:
        click.echo(
            printable(
                f"Audit row {record.id} of tenant {record.tenant_id} ({record.entity_address}): "
                f"{record.review_decision} by {record.reviewed_by} (review row {record.review_id})."
            )
        )


@audit_group.command("summary")
@click.option("--days", type=click.IntRange(1), default=7, show_default=True)
@format_option
@database_url_option
@handle_errors
def summary_cmd(days: int, fmt: str, database_url: str | None) -> None:
    """Audit rows per day, entity type, action and risk level."""
    with connect(database_url, "audit summary") as conn:
        rows = audit.daily_summary(conn, days)
    if fmt == "json":
        _emit_json([asdict(r) for r in rows])
        return
    if not rows:
        click.echo(f"No audit rows in the last {days} day(s).")
        return
    headers = ("DATE", "ENTITY", "ACTION", "RISK", "COUNT")
    table = [(r.audit_date, r.entity_type, r.action, r.risk_level, r.count) for r in rows]
    click.echo(format_table(headers, table))


without_key_option = click.option(
    "--without-key",
    is_flag=True,
    help=f"Without ${AUDIT_KEY_ENV}: accept that keyed rows are checked for their links only.",
)
allow_unkeyed_option = click.option(
    "--allow-unkeyed",
    is_flag=True,
    help="Accept unkeyed rows (written before the keyed chain) that no keyed row or "
    "checkpoint covers yet.",
)


def _verify(
    database_url: str | None,
    tenants: tuple[str, ...],
    checkpoint: audit.Checkpoint | None,
    purpose: str,
) -> audit.ChainReport:
    target = resolve_database_url(database_url)
    key: AuditKey | None = load_audit_key(target, create=False)
    with connect(database_url, purpose, target) as conn:
        return audit.inspect_chains(conn, tenants or None, key=key, checkpoint=checkpoint)


def _unaccepted(report: audit.ChainReport, without_key: bool, allow_unkeyed: bool) -> list[str]:
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
    return gaps


def _coverage(report: audit.ChainReport) -> str:
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


@audit_group.command("verify")
@click.option("--tenant", "tenants", metavar="T", multiple=True, help="Only this tenant.")
@click.option(
    "--checkpoint",
    "checkpoint_path",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also fail unless every chain still extends the heads recorded in FILE.",
)
@without_key_option
@allow_unkeyed_option
@format_option
@database_url_option
@handle_errors
def verify_cmd(
    tenants: tuple[str, ...],
    checkpoint_path: Path | None,
    without_key: bool,
    allow_unkeyed: bool,
    fmt: str,
    database_url: str | None,
) -> None:
    """Recompute every tenant's hash chain; exit 1 when one is broken or not fully verified.

    \b
    Keyed rows are verified with $RECONCILER_AUDIT_KEY. Fail-closed: without the key the
    command exits 1 unless --without-key is given (links and unkeyed rows only); unkeyed
    rows from before the keyed chain that nothing covers yet need --allow-unkeyed.
    With --checkpoint FILE (from `reconciler audit checkpoint`), rows removed from the end
    of a chain, and a rewritten chain, are caught too.
    """
    checkpoint = _read_checkpoint(checkpoint_path) if checkpoint_path else None
    report = _verify(database_url, tenants, checkpoint, "audit verify")
    gaps = _unaccepted(report, without_key, allow_unkeyed)
    if fmt == "json":
        _emit_json(
            {
                "intact": not report.breaks,
                "verified": not report.breaks and not gaps,
                "rows": report.rows,
                "keyed_rows": report.keyed_rows,
                "keyed_unverified": report.keyed_unverified,
                "unkeyed_rows": report.unkeyed_rows,
                "unkeyed_only": report.unkeyed_only,
                "database_rows": report.database_rows,
                "database_uncovered": report.database_uncovered,
                "checkpoint": str(checkpoint_path) if checkpoint_path else None,
                "heads": report.heads,
                "breaks": [
                    {"tenant": b.tenant_id, "id": b.audit_id, "kind": b.kind, "detail": b.detail}
                    for b in report.breaks
                ],
                "unverified": gaps,
            }
        )
    else:
        for b in report.breaks:
            click.echo(f"BROKEN tenant {b.tenant_id} at row {b.audit_id} ({b.kind}): {b.detail}")
        for gap in gaps:
            click.echo(f"NOT VERIFIED: {gap}")
        tenant_count = len(report.heads) + len(report.breaks)
        state = "BROKEN" if report.breaks else "NOT VERIFIED" if gaps else "intact"
        against = f" against checkpoint {checkpoint_path}" if checkpoint_path else ""
        click.echo(
            f"Audit chain {state}{against}: {report.rows} row(s), "
            f"{tenant_count} tenant(s) checked; {_coverage(report)}."
        )
        if report.keyed_unverified and without_key:
            click.echo(
                f"WARNING: keyed verification was skipped (no ${AUDIT_KEY_ENV}): "
                "the database owner could have rewritten keyed rows undetected.",
                err=True,
            )
    if report.breaks or gaps:
        sys.exit(ExitCode.ERROR)


@audit_group.command("checkpoint")
@click.option(
    "--out",
    "out",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the checkpoint to FILE (default: standard output).",
)
@without_key_option
@allow_unkeyed_option
@database_url_option
@handle_errors
def checkpoint_cmd(
    out: Path | None, without_key: bool, allow_unkeyed: bool, database_url: str | None
) -> None:
    """Verify every chain, then record each tenant's head (id, entry_hash, row count) as JSON.

    \b
    Keep the file outside the database (commit it, or store it with the deploy logs):
    `reconciler audit verify --checkpoint FILE` then fails if rows were removed from the end
    of a chain, or a chain was rewritten, since. Nothing is written for a broken chain.
    """
    report = _verify(database_url, (), None, "audit checkpoint")
    if report.breaks:
        first = report.breaks[0]
        raise ConfigError(
            f"no checkpoint written: the chain of tenant {first.tenant_id} is broken at row "
            f"{first.audit_id} ({first.kind}); run `reconciler audit verify`"
        )
    gaps = _unaccepted(report, without_key, allow_unkeyed)
    if gaps:
        raise ConfigError(f"no checkpoint written: {gaps[0]}")
    text = json.dumps(audit.checkpoint_document(report, now=datetime.now(UTC)), indent=2) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        atomic_write(out, text)
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror}") from exc
    click.echo(f"Checkpoint of {len(report.tips)} tenant chain(s) written to {out}.", err=True)


def _read_checkpoint(path: Path) -> audit.Checkpoint:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"cannot read checkpoint {path}: {reason}") from exc
    return audit.parse_checkpoint(text, source=str(path))


def register(group: click.Group) -> None:
    """Add this module's commands to the root group."""
    group.add_command(audit_group)
