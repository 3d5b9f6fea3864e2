"""CLI commands: plan, apply."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any, TypedDict

import click

from reconciler import commands
from reconciler.cli.exit_codes import ExitCode
from reconciler.cli.options import (
    Target,
    changed_from_option,
    handle_errors,
    output_options,
    path_option,
    revision_option,
    target_options,
    use_color,
)
from reconciler.cli.plan_output import PLAN_FORMATS, render_plan_output, terminal_confirm
from reconciler.cli.verify_option import verify_connections_option, with_verify_connections
from reconciler.clock import now_utc, rfc3339
from reconciler.commands.preflight import check_manifests, check_plan_matches
from reconciler.commands.show import read_plan_file
from reconciler.context import git_dirty
from reconciler.core.policy import verdict_text
from reconciler.errors import ConfigError
from reconciler.escape import printable
from reconciler.files import atomic_write
from reconciler.gitchanges import changed_tenants
from reconciler.model.enums import RiskLevel
from reconciler.model.plan import Plan
from reconciler.model.plan_judgement import SavedPlan
from reconciler.progress import Progress
from reconciler.render.apply_summary import render_apply_summary
from reconciler.settings import load_settings, lock_timeout_option, parse_level


class Permissions(TypedDict):
    """``--allow-risk``, ``--allow-mass-deletion`` and ``--allow-mass-revocation`` as the
    keyword arguments of :func:`commands.plan` and :func:`commands.apply`."""

    allow_risk: RiskLevel | None
    allow_mass_deletion: bool
    allow_mass_revocation: bool


def policy_options(func: Any) -> Any:
    """``--allow-risk``, ``--allow-mass-deletion``, ``--allow-mass-revocation``: the same on
    plan (which records what apply would refuse) and apply (which refuses); the command gets
    them as one ``permissions`` (:class:`Permissions`)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        allow_risk = kwargs.pop("allow_risk")
        kwargs["permissions"] = Permissions(
            allow_risk=parse_level(allow_risk) if allow_risk else None,
            allow_mass_deletion=kwargs.pop("allow_mass_deletion"),
            allow_mass_revocation=kwargs.pop("allow_mass_revocation"),
        )
        return func(*args, **kwargs)

    decorated: Any = wrapper
    for option in reversed(
        [
            click.option(
                "--allow-risk",
                type=click.Choice([r.value.lower() for r in RiskLevel]),
                default=None,
                help="Highest risk level to apply (default from reconciler.yaml, else high: "
                "CRITICAL changes need --allow-risk critical).",
            ),
            click.option(
                "--allow-mass-deletion",
                is_flag=True,
                help="Apply even when the mass-deletion breaker trips.",
            ),
            click.option(
                "--allow-mass-revocation",
                is_flag=True,
                help="Apply even when the mass-revocation breaker trips (OAuth tokens of a "
                "tenant).",
            ),
        ]
    ):
        decorated = option(decorated)
    return decorated


revoke_unmanaged_option = click.option(
    "--revoke-unmanaged",
    is_flag=True,
    help="With --prune, also revoke tokens of OAuth accounts no manifest has ever declared "
    "(unmanaged: e.g. connected before adoption). Without it they are listed, never revoked.",
)


def _narrow(target: Target, manifests: Path, progress: Any) -> tuple[str, ...] | None:
    """Tenants to run for ``--changed-from`` (None: nothing changed, nothing to do)."""
    tenants, changed_from = target.tenants, target.changed_from
    if not changed_from:
        return tenants
    change = changed_tenants(manifests, changed_from)
    if change.everything:
        progress.note(f"Templates changed since {changed_from}: every tenant is planned.")
        return tenants
    chosen = sorted(change.tenants & set(tenants)) if tenants else sorted(change.tenants)
    if not chosen:
        progress.note(f"No tenant manifest changed since {changed_from}: nothing to plan.")
        return None
    shown = ", ".join(chosen[:10]) + (f" and {len(chosen) - 10} more" if len(chosen) > 10 else "")
    progress.note(f"{len(chosen)} tenant(s) changed since {changed_from}: {shown}")
    return tuple(chosen)


def _write_plan_file(plan: Plan, path: Path) -> None:
    """Write atomically: a crash never leaves half a plan file."""
    body = json.dumps(plan.to_dict(), indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, body, keep_mode=False)


def _read_plan_file(path: Path) -> SavedPlan:
    return read_plan_file(path)


@click.command("plan")
@path_option(
    "--out",
    "out",
    "Also save the plan (no secrets in it) for `reconciler apply PLAN`.",
    metavar="PLAN",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there are no changes, 2 when there are, 1 on error.",
)
@click.option(
    "--prune",
    is_flag=True,
    help="Plan deletion of objects the manifests no longer declare (soft delete) and "
    "revocation of OAuth accounts they no longer declare.",
)
@revoke_unmanaged_option
@policy_options
@click.option(
    "--show-notices",
    is_flag=True,
    help="List every notice (accounts waiting for a connection, kept objects, ...); by "
    "default text and markdown count them by kind.",
)
@click.option(
    "--actor",
    metavar="NAME",
    help="Who makes the plan, recorded in it: approvals must come from someone else "
    "(default: $RECONCILER_ACTOR, the CI actor, the OS user).",
)
@revision_option
@changed_from_option
@target_options
@output_options(formats=PLAN_FORMATS)
@handle_errors
def plan_cmd(
    out: Path | None,
    fmt: str,
    detailed_exitcode: bool,
    prune: bool,
    revoke_unmanaged: bool,
    permissions: Permissions,
    show_notices: bool,
    actor: str | None,
    target: Target,
    quiet: bool,
    no_color: bool,
) -> None:
    """Show what apply would change, with a risk level for every change.

    Reads the manifests (decrypting secrets with your age key) and the database; writes
    nothing to the database.

    \b
    Examples:
      reconciler plan
      reconciler plan --tenant acme-robotics --platform stripe
      reconciler plan --format markdown > plan.md       # for a pull-request comment
      reconciler plan --out plan.json --detailed-exitcode
      reconciler plan --changed-from origin/main        # only what a pull request touches
    """
    _check_revoke_unmanaged(prune, revoke_unmanaged)
    _check_revision(target)
    settings = load_settings()
    progress = Progress(enabled=not quiet)
    manifests = target.manifests(settings)
    # Before git, the database or a key: a wrong directory or a selector typo costs nothing.
    not_on_disk = check_manifests(manifests, target.selectors(), prune=prune)
    narrowed = _narrow(target, manifests, progress)
    if narrowed is None:
        empty = Plan(
            created_at=rfc3339(now_utc()),
            manifests_digest="",
            actual_fingerprint="",
            prune=prune,
        )
        click.echo(render_plan_output(empty, fmt, color=use_color(no_color)), nl=False)
        return
    result = commands.plan(
        manifests_dir=manifests,
        settings=settings,
        selectors=target.selectors(narrowed),
        prune=prune,
        database_url=target.database_url,
        progress=progress,
        revoke_unmanaged=revoke_unmanaged,
        **permissions,
        actor=actor,
        revision=target.revision,
    )
    check_plan_matches(result.plan, not_on_disk, manifests)
    if out is not None:
        _write_plan_file(result.plan, out)
        progress.note(f"Saved the plan to {out}; apply it with: reconciler apply {out}")
    if result.plan.policy is not None and result.plan.policy.blocked:
        progress.note(verdict_text(result.plan.policy))
    click.echo(
        render_plan_output(result.plan, fmt, color=use_color(no_color), show_notices=show_notices),
        nl=False,
    )
    if detailed_exitcode and result.plan.has_changes:
        sys.exit(ExitCode.CHANGES_PRESENT)


def _check_revision(target: Target) -> None:
    if target.revision and target.changed_from:
        raise ConfigError(
            "--changed-from compares the working tree; it does not combine with --revision"
        )


def _check_revoke_unmanaged(prune: bool, revoke_unmanaged: bool) -> None:
    if revoke_unmanaged and not prune:
        raise ConfigError("--revoke-unmanaged revokes only together with --prune; pass both")


@click.command("apply")
@click.argument(
    "plan_file", required=False, type=click.Path(dir_okay=False, path_type=Path), metavar="[PLAN]"
)
@click.option(
    "--auto-approve", is_flag=True, help="Apply without asking (required without a terminal)."
)
@click.option(
    "--prune", is_flag=True, help="Delete undeclared objects and revoke undeclared accounts."
)
@revoke_unmanaged_option
@policy_options
@click.option(
    "--actor",
    metavar="NAME",
    help="Who is applying (default: $RECONCILER_ACTOR, the CI actor, the OS user).",
)
@click.option(
    "--lock-timeout",
    type=float,
    metavar="S",
    default=None,
    help="Seconds to wait for another apply to finish, 0.001 to 86400 (default 60).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Run the whole apply (lock, stale check, writes, audit rows) in its transaction, "
    "then roll it back: proves the database accepts it; writes nothing. Needs no approval.",
)
@click.option(
    "--require-clean",
    is_flag=True,
    help="Refuse when the manifests have uncommitted changes (for deploy jobs); without it "
    "such an apply warns and is recorded as dirty.",
)
@verify_connections_option
@revision_option
@changed_from_option
@target_options
@output_options(formats=("text", "json"))
@handle_errors
def apply_cmd(
    plan_file: Path | None,
    auto_approve: bool,
    prune: bool,
    revoke_unmanaged: bool,
    permissions: Permissions,
    actor: str | None,
    lock_timeout: float | None,
    fmt: str,
    dry_run: bool,
    require_clean: bool,
    verify_connections: bool | None,
    target: Target,
    quiet: bool,
    no_color: bool,
) -> None:
    """Apply the manifests to the database in ONE transaction, with an audit row per change.

    With PLAN (a file from `reconciler plan --out`), applies exactly that plan and refuses
    (exit 3) if the database or the manifests changed since. Without it, plans and applies.

    \b
    Exit codes: 0 applied or nothing to do, 1 error (nothing written), 3 stale plan,
    4 blocked by policy (risk above --allow-risk, a mass deletion or mass revocation, or
    changes at or above approval.level without `reconciler approve` by someone else;
    --allow-risk then breaks glass, recorded in the audit rows).
    \b
    Examples:
      reconciler apply                                   # shows the plan, asks
      reconciler apply --auto-approve --actor deploy-bot
      reconciler plan --out plan.json && reconciler apply plan.json --auto-approve
      reconciler apply --dry-run                         # everything but the COMMIT
      reconciler apply --prune --revoke-unmanaged        # also revoke never-declared accounts
    """
    _check_revoke_unmanaged(prune, revoke_unmanaged)
    _check_revision(target)
    settings = with_verify_connections(load_settings(), verify_connections)
    lock_timeout = lock_timeout_option(lock_timeout)
    progress = Progress(enabled=not quiet)
    color = use_color(no_color)
    saved = _read_plan_file(plan_file) if plan_file else None
    if saved is not None and (target.selecting or prune or revoke_unmanaged or target.changed_from):
        raise ConfigError(
            "a saved plan carries its own selectors, --prune and --revoke-unmanaged; do not "
            "pass them again"
        )
    manifests = target.manifests(settings)
    check_manifests(
        manifests, saved.plan.selectors if saved else target.selectors(), prune=bool(saved) or prune
    )
    if not require_clean and git_dirty(manifests):
        # A warning, not progress: shown under --quiet too.
        click.echo(
            f"warning: {manifests} has uncommitted changes; the run is recorded as the HEAD "
            "commit marked dirty (--require-clean refuses this)",
            err=True,
        )
    narrowed = _narrow(target, manifests, progress)
    if narrowed is None:
        click.echo(f"No tenant manifest changed since {target.changed_from}: nothing to apply.")
        return
    confirm = None
    if not auto_approve and not dry_run:
        confirm = terminal_confirm(
            "Apply",
            color=color,
            no_terminal="no terminal to confirm on: review with `reconciler plan`, then pass "
            "--auto-approve",
        )
    result = commands.apply(
        manifests_dir=manifests,
        settings=settings,
        saved_plan=saved,
        selectors=target.selectors(narrowed),
        prune=prune,
        **permissions,
        revoke_unmanaged=revoke_unmanaged,
        actor=actor,
        lock_timeout_seconds=lock_timeout,
        database_url=target.database_url,
        confirm=confirm,
        progress=progress,
        dry_run=dry_run,
        require_clean=require_clean,
        revision=target.revision,
    )
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "outcome": result.outcome.value,
                    "run_id": str(result.run_id) if result.run_id else None,
                    "counts": dict(result.counts),
                    "replanned": result.replanned,
                    "dry_run": result.dry_run,
                    "authorization": result.authorization.to_dict()
                    if result.authorization
                    else None,
                    "plan": result.plan.to_dict(),
                },
                indent=2,
            )
        )
        return
    if (auto_approve or dry_run) and result.plan.has_changes:
        click.echo(render_plan_output(result.plan, "text", color=color), nl=False)
    click.echo(
        render_apply_summary(result.outcome, result.counts, result.run_id, dry_run=result.dry_run)
    )
    _echo_authorization(result)


def _echo_authorization(result: commands.ApplyResult) -> None:
    auth = result.authorization
    if auth is None or not auth.needed or result.run_id is None:
        return
    if auth.break_glass:
        click.echo(
            "BREAK-GLASS: applied without the required approval(s), by --allow-risk; "
            "recorded in the audit rows.",
            err=True,
        )
    else:
        click.echo(printable(f"Approved by: {', '.join(auth.approvers)}"))


def register(group: click.Group) -> None:
    """Add plan and apply to the root group (drift: cmd_drift; history: cmd_history)."""
    group.add_command(plan_cmd)
    group.add_command(apply_cmd)
