"""CLI command: ``reconciler approve PLAN --by NAME [--note TEXT]``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from reconciler.cli.cmd_plan import _read_plan_file
from reconciler.cli.options import database_url_option, handle_errors, output_options
from reconciler.commands.approvals import approve
from reconciler.context import MAX_NOTE_LENGTH, checked_name
from reconciler.escape import printable
from reconciler.settings import load_settings


@click.command("approve")
@output_options()
@click.argument("plan_file", type=click.Path(dir_okay=False, path_type=Path), metavar="PLAN")
@click.option(
    "--by",
    "approved_by",
    metavar="NAME",
    help="Who approves (default: $RECONCILER_ACTOR, the CI actor, the OS user). Not the "
    "plan's author.",
)
@click.option("--note", default=None, help="Why (kept with the approval and in the audit log).")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@database_url_option
@handle_errors
def approve_cmd(
    plan_file: Path,
    approved_by: str | None,
    note: str | None,
    fmt: str,
    database_url: str | None,
) -> None:
    """Approve a saved plan (from `reconciler plan --out`) so that `apply PLAN` may write it.

    The approval is bound to the digest of the plan's changes: apply counts it only when the
    changes it derives itself are exactly those. It is recorded in the database and in the
    audit log (a REVIEW row per change needing approval, signed with $RECONCILER_AUDIT_KEY).
    The plan's author cannot approve it, and neither approval counts for its own applier.
    reconciler.yaml `approval:` sets the level that needs approval (default critical) and
    how many approvals (default 1).

    \b
    Examples:
      reconciler plan --out plan.json                      # the author
      reconciler approve plan.json --by alice --note "reviewed in PR 42"
      reconciler apply plan.json --auto-approve            # the deploy job
    """
    by = checked_name(approved_by, "--by") if approved_by is not None else None
    note_text = checked_name(note, "--note", kind="a note", limit=MAX_NOTE_LENGTH) if note else None
    result = approve(
        saved_plan=_read_plan_file(plan_file),
        settings=load_settings(),
        approved_by=by,
        note=note_text,
        database_url=database_url,
    )
    a = result.approval
    if fmt == "json":
        click.echo(json.dumps({**a.to_dict(), "audit_rows": result.audit_rows}, indent=2))
        return
    click.echo(
        printable(
            f"Approved plan {a.plan_digest[:12]} ({result.gated_changes} change(s), up to "
            f"{a.max_risk}) by {a.approved_by}; approval {a.id}, {result.audit_rows} audit row(s)."
        )
    )


def register(group: click.Group) -> None:
    """Add ``approve`` to the root group."""
    group.add_command(approve_cmd)
