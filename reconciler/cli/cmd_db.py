"""CLI commands: ``reconciler db upgrade | downgrade | current | sql`` (schema migrations) and
``reconciler db roles | grant | revoke`` (who may do what).

Each command is a thin layer over :mod:`reconciler.commands.db`. The database in use is
announced on stderr (password masked), so stdout stays clean for scripts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from reconciler.cli.options import (
    F,
    database_url_option,
    handle_errors,
    output_options,
    path_option,
    quiet_requested,
)
from reconciler.commands import db as api
from reconciler.commands.db import ARCHIVE_SCHEMA, GrantResult, RoleKind, SchemaChange
from reconciler.commands.db import revision_name as _revision
from reconciler.progress import Progress
from reconciler.render.db import grant_lines, render_roles_text, revoke_lines


def _announce() -> Progress:
    """Where the database in use is announced: stderr, so stdout stays clean for scripts;
    nothing with ``--quiet``."""
    return Progress(enabled=not quiet_requested())


def _report_change(change: SchemaChange, verb: str) -> bool:
    """Say whether the schema moved; False when there was nothing to do."""
    if not change.changed:
        if not quiet_requested():
            click.echo(f"schema already at {_revision(change.after)}; nothing to do", err=True)
        return False
    if not quiet_requested():
        click.echo(
            f"{verb} schema: {_revision(change.before)} -> {_revision(change.after)}", err=True
        )
    return True


@click.group("db")
def db() -> None:
    """Manage the database: schema migrations (shipped with the reconciler) and roles.

    \b
    Revisions, oldest first:
      baseline                      the oauth_tokens table as it was before the reconciler
      add_configuration_management  integration, webhook, audit and apply-run tables, RLS
      keyed_audit_chain             reviews as chained audit rows
      least_privilege_roles         deploy and CI roles, FORCEd RLS, tenant grants
    \b
    The embedded database (no URL given) is upgraded automatically; an external database
    only by `reconciler db upgrade`, or by a DBA running the SQL from `reconciler db sql`.
    \b
    Roles: each job logs in as its own LOGIN role, granted by the owner:
      reconciler db grant --role ci github_ci          plan, drift: read-only, every tenant
      reconciler db grant --role deploy deploy_job     apply
      reconciler db grant --role service svc --tenant acme   a service, its tenants only
      reconciler db roles                              who has what
    """


@db.command("upgrade")
@output_options()
@click.argument("revision", default="head", metavar="[REV]")
@database_url_option
@handle_errors
def upgrade(revision: str, database_url: str | None) -> None:
    """Upgrade the schema to REV (default: head).

    All steps run in one transaction: on error, nothing changes.

    \b
    Examples:
      reconciler db upgrade
      reconciler db upgrade --database-url postgresql://admin@db:5432/config
      RECONCILER_DATABASE_URL=postgresql://... reconciler db upgrade baseline
    """
    change = api.upgrade(revision=revision, database_url=database_url, progress=_announce())
    if _report_change(change, "upgraded") and change.restored is not None:
        click.echo(f"restored {change.restored.describe()} from {ARCHIVE_SCHEMA}", err=True)


@db.command("downgrade")
@output_options()
@click.argument("revision", metavar="REV")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--discard-audit-history",
    is_flag=True,
    help="DESTROY the audit log and apply history instead of archiving them (asks first, "
    "naming the row counts).",
)
@database_url_option
@handle_errors
def downgrade(
    revision: str, yes: bool, discard_audit_history: bool, database_url: str | None
) -> None:
    """Downgrade the schema to REV (asks first).

    Drops what later revisions added, except records. `baseline` is the rollback of the
    configuration-management schema: every oauth_tokens row is kept with its baseline
    columns (what the other columns held is archived); the audit log and the apply history
    are moved, rows and all, into the schema reconciler_archive, and the next `db upgrade`
    brings them back; integration and webhook tables are dropped (apply re-creates them from
    the manifests). `base` also forgets the baseline revision; oauth_tokens stays.

    --discard-audit-history drops the audit log and apply history instead of archiving them.

    \b
    Examples:
      reconciler db downgrade baseline
      reconciler db downgrade baseline --yes --database-url postgresql://admin@db:5432/config
      reconciler db downgrade baseline --discard-audit-history
    """
    change = api.downgrade(
        revision=revision,
        discard_audit_history=discard_audit_history,
        database_url=database_url,
        confirm=None if yes else _confirm,
        progress=_announce(),
    )
    if not _report_change(change, "downgraded"):
        return
    history = change.history
    if history is not None and change.discarded:
        click.echo(f"discarded {history.describe()}", err=True)
    elif history is not None:
        click.echo(
            f"archived {history.describe()} in schema {ARCHIVE_SCHEMA}; "
            "`reconciler db upgrade` restores them",
            err=True,
        )


def _confirm(question: str) -> None:
    click.confirm(question, abort=True, err=True)


@db.command("current")
@output_options()
@database_url_option
@handle_errors
def current(database_url: str | None) -> None:
    """Print the database's schema revision.

    Prints `(none)` for a database without the reconciler's schema.

    \b
    Examples:
      reconciler db current
      test "$(reconciler db current 2>/dev/null)" = add_configuration_management
    """
    found = api.current(database_url=database_url, progress=_announce())
    click.echo(_revision(found.revision))
    if not found.current:
        click.echo(f"behind head ({found.head}): run `reconciler db upgrade`", err=True)


@db.command("sql")
@output_options()
@click.option(
    "--rollback",
    is_flag=True,
    help="The rollback SQL (head -> baseline) instead of the upgrade.",
)
@click.option(
    "--discard-audit-history",
    is_flag=True,
    help="With --rollback: SQL that DESTROYS the audit log and apply history instead of "
    "archiving them.",
)
@click.option(
    "--from",
    "start",
    default=None,
    metavar="REV",
    help="The upgrade SQL from REV (e.g. baseline, after a rollback) instead of from nothing.",
)
@path_option("--out", "out", "Write to FILE instead of stdout.")
@handle_errors
def sql(rollback: bool, discard_audit_history: bool, start: str | None, out: Path | None) -> None:
    """Print the migration SQL for a DBA (no database needed).

    The SQL is for review and for `psql -f`.

    The upgrade SQL creates the whole schema from nothing (or, on a database that already has
    the oauth_tokens table, adopts it); with `--from baseline` it upgrades a database the
    rollback left at baseline and brings back what the rollback archived.

    The rollback SQL ends at `baseline`: oauth_tokens and its rows stay, and the audit log
    and apply history are moved into the schema reconciler_archive (with
    --discard-audit-history: dropped, with a WARNING giving the row counts as it runs).

    Both run in one transaction and record the revision, so `reconciler db current` agrees
    afterwards.

    \b
    Examples:
      reconciler db sql > upgrade.sql && psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f upgrade.sql
      reconciler db sql --rollback --out migrations/sql/rollback.sql
      reconciler db sql --from baseline > reupgrade.sql
    """
    result = api.migration_sql(
        rollback=rollback, discard_audit_history=discard_audit_history, start=start, out=out
    )
    if discard_audit_history:
        click.echo(
            "warning: this rollback SQL DESTROYS the audit log and the apply history "
            "(no archive is kept)",
            err=True,
        )
    if out is None:
        click.echo(result.text, nl=False)
        return
    click.echo(f"wrote {'rollback' if rollback else 'upgrade'} SQL to {out}", err=True)


@db.command("stop")
@output_options()
@handle_errors
def stop() -> None:
    """Stop the embedded PostgreSQL (its data in .reconciler/pgdata stays).

    The embedded server keeps running between commands so each one starts fast; stop it
    when you are done. The next command that needs it starts it again.

    \b
    Examples:
      reconciler db stop
      RECONCILER_DATA_DIR=/tmp/rc reconciler db stop     # the server of another data dir
    """
    result = api.stop_database()
    if result.stopped:
        click.echo(f"Stopped the embedded PostgreSQL at {result.pgdata}.")
    else:
        click.echo(f"The embedded PostgreSQL at {result.pgdata} is not running.")


ROLE_CHOICE = click.Choice([kind.value for kind in RoleKind])


@db.command("roles")
@output_options()
@database_url_option
@handle_errors
def show_roles(database_url: str | None) -> None:
    """Show the reconciler's group roles, their members and services' tenant grants.

    \b
    Examples:
      reconciler db roles
      reconciler db roles --database-url postgresql://owner@db:5432/config
    """
    report = api.list_roles(database_url=database_url, progress=_announce())
    click.echo(render_roles_text(report), nl=False)


_ROLE_HELP = "deploy (apply), ci (plan, drift) or service (its granted tenants only)."


def _membership_options(tenant_help: str) -> Callable[[F], F]:
    """``--role``, ``LOGIN``, ``--tenant`` (helped by ``tenant_help``) and ``--database-url``."""

    def decorate(func: F) -> F:
        for option in (
            database_url_option,
            click.option("--tenant", "tenants", multiple=True, metavar="T", help=tenant_help),
            click.argument("login", metavar="LOGIN"),
            click.option("--role", "role", type=ROLE_CHOICE, required=True, help=_ROLE_HELP),
        ):
            func = option(func)
        return func

    return decorate


def _change_membership(
    change: Callable[..., GrantResult],
    role: str,
    login: str,
    tenants: tuple[str, ...],
    database_url: str | None,
) -> GrantResult:
    """Call ``change`` (:func:`api.grant` or :func:`api.revoke`) with the parsed options."""
    return change(
        role=RoleKind(role),
        login=login,
        tenants=tenants,
        database_url=database_url,
        progress=_announce(),
    )


@db.command("grant")
@output_options()
@_membership_options("For --role service: a tenant LOGIN may act for (repeat for more).")
@handle_errors
def grant(role: str, login: str, tenants: tuple[str, ...], database_url: str | None) -> None:
    """Grant an existing LOGIN role the deploy, ci or service group role.

    Run as the table owner. Granting again changes nothing. A service login sees and writes
    only rows of the tenant named in app.tenant_id, and only if that tenant is granted to it
    here (by login name: SET ROLE does not change it).

    \b
    Examples:
      reconciler db grant --role deploy deploy_job
      reconciler db grant --role ci github_ci
      reconciler db grant --role service billing_service --tenant acme --tenant globex
    \b
    The login must exist first, e.g. as a superuser or CREATEROLE role:
      CREATE ROLE github_ci LOGIN PASSWORD '...';
    """
    result = _change_membership(api.grant, role, login, tenants, database_url)
    for line in grant_lines(result):
        click.echo(line, err=True)


@db.command("revoke")
@output_options()
@_membership_options(
    "For --role service: revoke only this tenant (repeat for more); the login stays."
)
@handle_errors
def revoke(role: str, login: str, tenants: tuple[str, ...], database_url: str | None) -> None:
    """Revoke what `reconciler db grant` granted.

    Without --tenant, LOGIN leaves the group role (and, for services, loses every tenant
    grant). Revoking what is not granted changes nothing.

    \b
    Examples:
      reconciler db revoke --role ci github_ci
      reconciler db revoke --role service billing_service --tenant globex
      reconciler db revoke --role service billing_service
    """
    result = _change_membership(api.revoke, role, login, tenants, database_url)
    for line in revoke_lines(result, tenants_named=bool(tenants)):
        click.echo(line, err=True)


def register(group: click.Group) -> None:
    """Add this module's commands to the root group."""
    group.add_command(db)
