"""CLI commands: ``reconciler audit list | pending | review | summary | verify | checkpoint``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from reconciler.cli.exit_codes import ExitCode
from reconciler.cli.options import (
    database_url_option,
    handle_errors,
    output_options,
    path_option,
    quiet_requested,
    text_or_json_option,
)
from reconciler.commands import audit as api
from reconciler.commands.audit import AUDIT_KEY_ENV, AuditRecord
from reconciler.model.enums import ReviewDecision, RiskLevel
from reconciler.render.audit import (
    KEY_SKIPPED_WARNING,
    render_records,
    render_review,
    render_summary,
    render_verification,
    summary_records,
    verification_record,
)
from reconciler.render.table import format_table as format_table  # for sibling modules


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _emit_records(records: list[AuditRecord], fmt: str, empty: str, *, wide: bool = False) -> None:
    if fmt == "json":
        _emit_json([r.to_dict() for r in records])
    elif not records:
        click.echo(empty)
    else:
        click.echo(render_records(records, wide=wide))


wide_option = click.option(
    "--wide",
    is_flag=True,
    help="Also show the security context: client address, user agent, session.",
)


@click.group("audit")
def audit_group() -> None:
    """Read, review and verify the hash-chained audit log."""


@audit_group.command("list")
@output_options()
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
@text_or_json_option
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

    \b
    Examples:
      reconciler audit list --tenant acme-robotics --since 7d
      reconciler audit list --risk high --limit 200 --format json
      reconciler audit list --address acme-robotics/stripe/production/webhook/billing-events
    """
    records = api.list_audit(
        tenant=tenant,
        min_risk=RiskLevel(risk.upper()) if risk else None,
        since=since,
        limit=limit,
        run=run,
        address=address,
        database_url=database_url,
    )
    _emit_records(records, fmt, "No audit rows match.", wide=wide)


@audit_group.command("pending")
@output_options()
@click.option("--tenant", metavar="T", help="Only this tenant.")
@click.option(
    "--fail-on-rejected",
    is_flag=True,
    help="Exit 1 when any change was rejected in review (see `audit rejected`).",
)
@wide_option
@text_or_json_option
@database_url_option
@handle_errors
def pending_cmd(
    tenant: str | None, fail_on_rejected: bool, wide: bool, fmt: str, database_url: str | None
) -> None:
    """HIGH and CRITICAL changes that still await a review, oldest first.

    \b
    Example (a scheduled compliance job):
      reconciler audit pending --fail-on-rejected
    """
    records = api.pending_reviews(tenant=tenant, database_url=database_url)
    rejected = (
        api.rejected_reviews(tenant=tenant, database_url=database_url) if fail_on_rejected else []
    )
    _emit_records(records, fmt, "No changes await review.", wide=wide)
    if rejected:
        click.echo(
            f"{len(rejected)} change(s) were rejected in review: see `reconciler audit rejected`",
            err=True,
        )
        sys.exit(ExitCode.ERROR)


@audit_group.command("rejected")
@output_options()
@click.option("--tenant", metavar="T", help="Only this tenant.")
@wide_option
@text_or_json_option
@database_url_option
@handle_errors
def rejected_cmd(tenant: str | None, wide: bool, fmt: str, database_url: str | None) -> None:
    """Changes a reviewer rejected, oldest first: applied, but to be rolled back or justified.

    \b
    Examples:
      reconciler audit rejected
      reconciler audit rejected --tenant acme-robotics --format json
    """
    records = api.rejected_reviews(tenant=tenant, database_url=database_url)
    _emit_records(records, fmt, "No change was rejected in review.", wide=wide)


@audit_group.command("review")
@output_options()
@click.argument("audit_id", metavar="ID", type=int)
@click.option("--tenant", metavar="T", help="The row's tenant (checked when given).")
@click.option(
    "--decision", type=click.Choice(["approve", "reject"], case_sensitive=False), required=True
)
@click.option("--by", "reviewed_by", metavar="NAME", required=True, help="Who reviews.")
@click.option("--note", default=None, help="Why (kept with the decision).")
@text_or_json_option
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

    \b
    Examples:
      reconciler audit review 4711 --decision approve --by alice --note "ticket OPS-12"
      reconciler audit review 4712 --tenant acme-robotics --decision reject --by alice
    """
    verdict = ReviewDecision.APPROVED if decision.lower() == "approve" else ReviewDecision.REJECTED
    record = api.review(
        audit_id=audit_id,
        decision=verdict,
        reviewed_by=reviewed_by,
        tenant=tenant,
        note=note,
        database_url=database_url,
    )
    if fmt == "json":
        _emit_json(record.to_dict())
    else:
        click.echo(render_review(record))


@audit_group.command("summary")
@output_options()
@click.option("--days", type=click.IntRange(1), default=7, show_default=True)
@text_or_json_option
@database_url_option
@handle_errors
def summary_cmd(days: int, fmt: str, database_url: str | None) -> None:
    """Audit rows per day, entity type, action and risk level.

    \b
    Examples:
      reconciler audit summary
      reconciler audit summary --days 30 --format json
    """
    rows = api.audit_summary(days=days, database_url=database_url)
    if fmt == "json":
        _emit_json(summary_records(rows))
    elif not rows:
        click.echo(f"No audit rows in the last {days} day(s).")
    else:
        click.echo(render_summary(rows))


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


@audit_group.command("verify")
@output_options()
@click.option("--tenant", "tenants", metavar="T", multiple=True, help="Only this tenant.")
@path_option(
    "--checkpoint",
    "checkpoint_path",
    "Also fail unless every chain still extends the heads recorded in FILE.",
)
@without_key_option
@allow_unkeyed_option
@text_or_json_option
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

    \b
    Examples:
      reconciler audit verify
      reconciler audit verify --tenant acme-robotics --checkpoint audit-checkpoint.json
    """
    result = api.verify_audit(
        tenants=tenants,
        checkpoint=checkpoint_path,
        without_key=without_key,
        allow_unkeyed=allow_unkeyed,
        database_url=database_url,
    )
    report = result.report
    if fmt == "json":
        _emit_json(verification_record(report, result.gaps, checkpoint_path))
    else:
        click.echo(render_verification(report, result.gaps, checkpoint_path), nl=False)
        if report.keyed_unverified and without_key:
            click.echo(KEY_SKIPPED_WARNING, err=True)
    if not result.verified:
        sys.exit(ExitCode.ERROR)


@audit_group.command("checkpoint")
@output_options()
@path_option("--out", "out", "Write the checkpoint to FILE (default: standard output).")
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

    \b
    Examples:
      reconciler audit checkpoint --out audit-checkpoint.json
      reconciler audit verify --checkpoint audit-checkpoint.json     # later
    """
    result = api.audit_checkpoint(
        out=out, without_key=without_key, allow_unkeyed=allow_unkeyed, database_url=database_url
    )
    if out is None:
        click.echo(result.text, nl=False)
        return
    if not quiet_requested():
        click.echo(f"Checkpoint of {result.tenants} tenant chain(s) written to {out}.", err=True)


def register(group: click.Group) -> None:
    """Add this module's commands to the root group."""
    group.add_command(audit_group)
