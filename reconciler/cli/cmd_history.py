"""CLI command: ``reconciler history [show RUN | ADDRESS]``."""

from __future__ import annotations

import json

import click

from reconciler import commands
from reconciler.cli.options import (
    database_url_option,
    handle_errors,
    output_options,
    quiet_requested,
)
from reconciler.commands.history_views import address_history, show_run
from reconciler.errors import UsageProblem
from reconciler.escape import printable
from reconciler.progress import Progress
from reconciler.render.history import render_run, render_timeline


@click.command("history")
@click.argument("what", nargs=-1, metavar="[show RUN | ADDRESS]")
@click.option("--limit", type=click.IntRange(1, 10000), default=20, show_default=True)
@database_url_option
@output_options(formats=("text", "json", "markdown"))
@handle_errors
def history_cmd(what: tuple[str, ...], limit: int, fmt: str, database_url: str | None) -> None:
    """Apply history: recent runs, one run in detail, or the timeline of one object.

    \b
    reconciler history                       recent apply runs, newest first
    reconciler history show RUN              one run: its changes with risk, reasons and
                                             masked before/after, actor, commit, plan digest,
                                             approvals (or break-glass) and outcome
    reconciler history acme/stripe/production/webhook/billing-events
                                             every audit row of that object, oldest first

    A commit marked `*` had uncommitted manifest changes when it was applied.

    \b
    Examples:
      reconciler history --limit 5 --format json
      reconciler history show 3f2a
      reconciler history acme/stripe/production/webhook/billing-events --format markdown
    """
    progress = Progress(enabled=not quiet_requested())
    if what and what[0] == "show":
        if len(what) != 2:
            raise UsageProblem("usage: reconciler history show RUN")
        detail = show_run(run=what[1], database_url=database_url, progress=progress)
        click.echo(render_run(detail, fmt), nl=False)
        return
    if what:
        if len(what) != 1 or what[0].count("/") != 4:
            raise UsageProblem(
                "expected `history show RUN` or an address tenant/platform/environment/kind/name"
            )
        records = address_history(
            address=what[0], database_url=database_url, limit=limit * 10, progress=progress
        )
        click.echo(render_timeline(what[0], records, fmt), nl=False)
        return
    runs = commands.history(database_url=database_url, limit=limit, progress=progress)
    if fmt == "json":
        click.echo(json.dumps([r.to_dict() for r in runs], indent=2))
        return
    if not runs:
        click.echo("No applies yet.")
        return
    click.echo(
        f"{'STARTED':20}  {'ACTOR':16}  {'COMMIT':9} {'+':>5} {'~':>5} {'-':>5} {'!':>5}  RUN"
    )
    for r in runs:
        d = r.to_dict()
        click.echo(
            f"{d['started_at']:20}  {printable(r.actor)[:16]:16}  "
            f"{(printable(r.git_commit or '-')[:8] + ('*' if r.git_dirty else '')):9} "
            f"{r.created:>5} {r.updated:>5} {r.deleted:>5} {r.revoked:>5}  {r.id}"
        )


def register(group: click.Group) -> None:
    """Add ``history`` to the root group."""
    group.add_command(history_cmd)
