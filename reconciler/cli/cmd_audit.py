"""CLI commands: ``reconciler audit list | pending | review | summary | verify``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import click
import sqlalchemy as sa

from reconciler.cli.exit_codes import ExitCode
from reconciler.cli.options import database_url_option, handle_errors
from reconciler.model.enums import ReviewDecision, RiskLevel
from reconciler.store import audit
from reconciler.store.database import (
    check_connection,
    create_engine,
    ensure_schema_current,
    resolve_database_url,
    translate_db_errors,
)

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for machines.",
)


@contextmanager
def connect(database_url: str | None, purpose: str) -> Iterator[sa.Connection]:
    """A connection to the chosen database at the current schema; one transaction, committed.

    ``purpose`` becomes the ``application_name`` (what a lock-timeout message shows).
    """
    target = resolve_database_url(database_url)
    engine = create_engine(target, application_name=f"reconciler {purpose}")
    try:
        check_connection(engine)
        ensure_schema_current(engine, target)
        with translate_db_errors(engine.url), engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain left-aligned table; ``None`` shows as ``-``."""
    cells = [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = [list(headers), *cells]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _emit_records(records: list[audit.AuditRecord], fmt: str, empty: str) -> None:
    if fmt == "json":
        _emit_json([r.to_dict() for r in records])
        return
    if not records:
        click.echo(empty)
        return
    headers = ("ID", "TIME (UTC)", "TENANT", "ACTION", "RISK", "REVIEW", "BY", "ADDRESS")
    rows = [
        (
            r.id,
            _when(r.created_at),
            r.tenant_id,
            r.action,
            r.risk_level,
            r.review_status,
            r.performed_by,
            r.entity_address,
        )
        for r in records
    ]
    click.echo(format_table(headers, rows))


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
@format_option
@database_url_option
@handle_errors
def list_cmd(
    tenant: str | None,
    risk: str | None,
    since: str | None,
    limit: int,
    fmt: str,
    database_url: str | None,
) -> None:
    """Newest audit rows first."""
    since_at = audit.parse_since(since, now=datetime.now(UTC)) if since else None
    with connect(database_url, "audit list") as conn:
        records = audit.list_entries(
            conn,
            tenant=tenant,
            min_risk=RiskLevel(risk.upper()) if risk else None,
            since=since_at,
            limit=limit,
        )
    _emit_records(records, fmt, "No audit rows match.")


@audit_group.command("pending")
@click.option("--tenant", metavar="T", help="Only this tenant.")
@format_option
@database_url_option
@handle_errors
def pending_cmd(tenant: str | None, fmt: str, database_url: str | None) -> None:
    """HIGH and CRITICAL changes that still await a review, oldest first."""
    with connect(database_url, "audit pending") as conn:
        records = audit.pending_reviews(conn, tenant)
    _emit_records(records, fmt, "No changes await review.")


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
    """Approve or reject an audit row that requires review (once; it cannot be changed)."""
    verdict = ReviewDecision.APPROVED if decision.lower() == "approve" else ReviewDecision.REJECTED
    with connect(database_url, "audit review") as conn:
        record = audit.review_entry(
            conn,
            tenant=tenant,
            audit_id=audit_id,
            decision=verdict,
            reviewed_by=reviewed_by,
            note=note,
            now=datetime.now(UTC),
        )
    if fmt == "json":
        _emit_json(record.to_dict())
    else:
        click.echo(
            f"Audit row {record.id} of tenant {record.tenant_id} ({record.entity_address}): "
            f"{record.review_decision} by {record.reviewed_by}."
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


@audit_group.command("verify")
@click.option("--tenant", "tenants", metavar="T", multiple=True, help="Only this tenant.")
@format_option
@database_url_option
@handle_errors
def verify_cmd(tenants: tuple[str, ...], fmt: str, database_url: str | None) -> None:
    """Recompute every tenant's hash chain; exit 1 when one is broken."""
    with connect(database_url, "audit verify") as conn:
        report = audit.inspect_chains(conn, tenants or None)
    if fmt == "json":
        _emit_json(
            {
                "intact": not report.breaks,
                "rows": report.rows,
                "heads": report.heads,
                "breaks": [
                    {"tenant": b.tenant_id, "id": b.audit_id, "kind": b.kind, "detail": b.detail}
                    for b in report.breaks
                ],
            }
        )
    else:
        for b in report.breaks:
            click.echo(f"BROKEN tenant {b.tenant_id} at row {b.audit_id} ({b.kind}): {b.detail}")
        tenant_count = len(report.heads) + len(report.breaks)
        state = "BROKEN" if report.breaks else "intact"
        click.echo(f"Audit chain {state}: {report.rows} row(s), {tenant_count} tenant(s) checked.")
    if report.breaks:
        sys.exit(ExitCode.ERROR)


def register(group: click.Group) -> None:
    """Add this module's commands to the root group."""
    group.add_command(audit_group)
