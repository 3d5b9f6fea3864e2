"""CLI command: drift (report, and with --remediate repair, how the database differs from git)."""

from __future__ import annotations

import json
import sys

import click

from reconciler import commands
from reconciler.cli.exit_codes import ExitCode
from reconciler.cli.options import Target, handle_errors, output_options, target_options, use_color
from reconciler.cli.plan_output import PLAN_FORMATS, render_plan_output, terminal_confirm
from reconciler.commands.preflight import check_manifests, check_plan_matches
from reconciler.commands.remediation import RemediationResult
from reconciler.commands.remediation import remediate as remediate_drift
from reconciler.errors import UsageProblem
from reconciler.escape import printable
from reconciler.model.enums import RiskLevel
from reconciler.progress import Progress
from reconciler.render.apply_summary import render_apply_summary
from reconciler.settings import load_settings, parse_level


@click.command("drift")
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 2 when the database differs from git."
)
@click.option(
    "--remediate",
    is_flag=True,
    help="Bring drifted objects back to the manifests through apply (one transaction, lock, "
    "policy and approvals; audit rows marked as remediation).",
)
@click.option(
    "--max-risk",
    type=click.Choice([r.value.lower() for r in RiskLevel]),
    default=None,
    help="With --remediate: only tenants whose drift is at most this risk (default: "
    "apply.allow_risk); the rest is reported and notified.",
)
@click.option("--auto-approve", is_flag=True, help="With --remediate: do not ask (scheduled jobs).")
@click.option("--actor", metavar="NAME", help="With --remediate: who remediates.")
@target_options
@output_options(formats=PLAN_FORMATS)
@handle_errors
def drift_cmd(
    fmt: str,
    detailed_exitcode: bool,
    remediate: bool,
    max_risk: str | None,
    auto_approve: bool,
    actor: str | None,
    target: Target,
    quiet: bool,
    no_color: bool,
) -> None:
    """Report how the database differs from git (read-only), for scheduled jobs.

    Shows rows edited outside the reconciler (as updates back to the manifest's values),
    objects git does not declare (as deletions) and undeclared connected accounts.
    With --remediate, applies the manifests to the tenants whose drift is at most
    --max-risk (self-healing); exit 2 with --detailed-exitcode when drift is left.

    \b
    Example (cron / scheduled CI):
      reconciler drift --detailed-exitcode --format json > drift.json || alert
      reconciler drift --remediate --max-risk medium --auto-approve --actor drift-bot
    """
    settings = load_settings()
    selectors = target.selectors()
    manifests = target.manifests(settings)
    not_on_disk = check_manifests(manifests, selectors, prune=True)
    progress = Progress(enabled=not quiet)
    if not remediate:
        if max_risk or auto_approve or actor:
            raise UsageProblem("--max-risk, --auto-approve and --actor go with --remediate")
        result = commands.drift(
            manifests_dir=manifests,
            settings=settings,
            selectors=selectors,
            database_url=target.database_url,
            progress=progress,
        )
        click.echo(render_plan_output(result, fmt, color=use_color(no_color)), nl=False)
        check_plan_matches(result, not_on_disk, manifests)
        if detailed_exitcode and result.has_changes:
            sys.exit(ExitCode.CHANGES_PRESENT)
        return
    confirm = None
    if not auto_approve:
        confirm = terminal_confirm(
            "Remediate",
            color=use_color(no_color),
            no_terminal="no terminal to confirm on: pass --auto-approve to remediate",
        )
    fixed = remediate_drift(
        manifests_dir=manifests,
        settings=settings,
        selectors=selectors,
        max_risk=parse_level(max_risk) if max_risk else None,
        actor=actor,
        database_url=target.database_url,
        confirm=confirm,
        progress=progress,
    )
    _echo_remediation(fixed, fmt, use_color(no_color))
    if detailed_exitcode and fixed.left:
        sys.exit(ExitCode.CHANGES_PRESENT)


def _echo_remediation(fixed: RemediationResult, fmt: str, color: bool) -> None:
    applied = fixed.applied
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "drift": fixed.drift.to_dict(),
                    "remediated_tenants": list(fixed.tenants),
                    "outcome": applied.outcome.value if applied else None,
                    "run_id": str(applied.run_id) if applied and applied.run_id else None,
                    "counts": dict(applied.counts) if applied else {},
                    "left": [c.to_dict() for c in fixed.left],
                },
                indent=2,
            )
        )
        return
    if not fixed.drift.has_changes:
        click.echo("No drift: the database matches git.")
        return
    if applied is not None:
        if applied.plan.has_changes:
            click.echo(render_plan_output(applied.plan, "text", color=color), nl=False)
        click.echo(
            render_apply_summary(applied.outcome, applied.counts, applied.run_id)
            + f" (remediation of {', '.join(fixed.tenants)})"
        )
    if fixed.left:
        click.echo(f"{len(fixed.left)} drifted change(s) above --max-risk left for review:")
        for c in fixed.left:
            click.echo(printable(f"  {c.action.symbol} {c.address} [{c.risk.level.value}]"))


def register(group: click.Group) -> None:
    """Add drift to the root group."""
    group.add_command(drift_cmd)
