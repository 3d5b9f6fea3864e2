"""CLI commands: ``reconciler db upgrade | downgrade | current | sql`` (schema migrations) and
``reconciler db roles | grant | revoke`` (who may do what).

Each command is a thin layer over :mod:`reconciler.store.migrate` or
:mod:`reconciler.store.roles`. The database in use is announced on stderr (password masked),
so stdout stays clean for scripts.
"""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.options import database_url_option, handle_errors, output_options
from reconciler.errors import ConfigError
from reconciler.store import migrate, roles
from reconciler.store.database import (
    DatabaseTarget,
    embedded_data_dir,
    resolve_database_url,
    stop_embedded,
)


def _target(database_url: str | None) -> DatabaseTarget:
    target = resolve_database_url(database_url)
    click.echo(target.describe(), err=True)
    return target


def _revision(revision: str | None) -> str:
    return revision or "(none)"


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
    target = _target(database_url)
    before = migrate.current(target)
    archived = migrate.archived_history(target)
    migrate.upgrade(target, revision)
    after = migrate.current(target)
    if before == after:
        click.echo(f"schema already at {_revision(after)}; nothing to do", err=True)
        return
    click.echo(f"upgraded schema: {_revision(before)} -> {_revision(after)}", err=True)
    if archived is not None and migrate.archived_history(target) is None:
        click.echo(f"restored {archived.describe()} from {migrate.ARCHIVE_SCHEMA}", err=True)


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
    target = _target(database_url)
    before = migrate.current(target)
    history = migrate.history_at_stake(target, revision)
    if discard_audit_history and history is None:
        raise ConfigError(
            f"--discard-audit-history: a downgrade from {_revision(before)} to {revision} "
            "keeps the audit log and apply history; there is nothing to discard"
        )
    if discard_audit_history:
        assert history is not None
        question = (
            f"Downgrade from {_revision(before)} to {revision} and DESTROY "
            f"{history.describe()}? They are not archived and cannot be restored"
        )
    else:
        kept = (
            f"; {history.describe()} are archived in {migrate.ARCHIVE_SCHEMA}"
            if history is not None
            else ""
        )
        question = (
            f"Downgrade from {_revision(before)} to {revision}? Tables it drops lose their "
            f"data; oauth_tokens rows are kept{kept}"
        )
    if not yes:
        click.confirm(question, abort=True, err=True)
    migrate.downgrade(target, revision, discard_audit_history=discard_audit_history)
    after = migrate.current(target)
    if before == after:
        click.echo(f"schema already at {_revision(after)}; nothing to do", err=True)
        return
    click.echo(f"downgraded schema: {_revision(before)} -> {_revision(after)}", err=True)
    if history is not None and discard_audit_history:
        click.echo(f"discarded {history.describe()}", err=True)
    elif history is not None:
        click.echo(
            f"archived {history.describe()} in schema {migrate.ARCHIVE_SCHEMA}; "
            "`reconciler db upgrade` restores them",
            err=True,
        )


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
    target = _target(database_url)
    revision = migrate.current(target)
    click.echo(_revision(revision))
    head = migrate.head_revision()
    if revision != head:
        click.echo(f"behind head ({head}): run `reconciler db upgrade`", err=True)


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
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Write to FILE instead of stdout.",
)
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
    if discard_audit_history and not rollback:
        raise ConfigError("--discard-audit-history needs --rollback")
    if start is not None and rollback:
        raise ConfigError("--from is for the upgrade SQL; the rollback SQL starts at head")
    text = migrate.offline_sql(
        rollback=rollback, discard_audit_history=discard_audit_history, start=start
    )
    if discard_audit_history:
        click.echo(
            "warning: this rollback SQL DESTROYS the audit log and the apply history "
            "(no archive is kept)",
            err=True,
        )
    if out is None:
        click.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    click.echo(f"wrote {'rollback' if rollback else 'upgrade'} SQL to {out}", err=True)


@db.command("stop")
@output_options()
@handle_errors
def stop() -> None:
    """Stop the embedded PostgreSQL (its data in .reconciler/pgdata stays).

    The embedded server keeps running between commands so each one starts fast; stop it
    when you are done. The next command that needs it starts it again.
    """
    pgdata = embedded_data_dir()
    if stop_embedded(pgdata):
        click.echo(f"Stopped the embedded PostgreSQL at {pgdata}.")
    else:
        click.echo(f"The embedded PostgreSQL at {pgdata} is not running.")


ROLE_CHOICE = click.Choice([kind.value for kind in roles.RoleKind])


def _login_and_tenants(
    role: str, login: str, tenants: tuple[str, ...]
) -> tuple[roles.RoleKind, str, tuple[str, ...]]:
    if not login.strip():
        raise ConfigError("LOGIN must be a role name")
    return roles.RoleKind(role), login, tenants


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
    target = _target(database_url)
    with roles.transaction(target) as conn:
        report = roles.list_roles(conn)
    click.echo(f"owner: {report.owner} (owns the tables: every row, DDL, grants)")
    for group in report.groups:
        status = "" if group.exists else " (missing: run `reconciler db upgrade`)"
        click.echo(f"{group.kind.group} [--role {group.kind.value}]{status}")
        click.echo(f"  {group.kind.purpose}")
        if group.kind is roles.RoleKind.SERVICE:
            for login in group.members:
                tenants = report.tenant_grants.get(login, ())
                click.echo(f"  {login}: {', '.join(tenants) if tenants else '(no tenants)'}")
            for login in sorted(set(report.tenant_grants) - set(group.members)):
                listed = ", ".join(report.tenant_grants[login])
                click.echo(f"  {login}: {listed} (not a member: these grants do nothing)")
        else:
            members = ", ".join(group.members) if group.members else "(none)"
            click.echo(f"  members: {members}")
    if report.bypass:
        click.echo(
            f"bypass row-level security (superuser or BYPASSRLS): {', '.join(report.bypass)}"
        )


_ROLE_HELP = "deploy (apply), ci (plan, drift) or service (its granted tenants only)."


@db.command("grant")
@output_options()
@click.option("--role", "role", type=ROLE_CHOICE, required=True, help=_ROLE_HELP)
@click.argument("login", metavar="LOGIN")
@click.option(
    "--tenant",
    "tenants",
    multiple=True,
    metavar="T",
    help="For --role service: a tenant LOGIN may act for (repeat for more).",
)
@database_url_option
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
    kind, login, tenants = _login_and_tenants(role, login, tenants)
    target = _target(database_url)
    with roles.transaction(target) as conn:
        result = roles.grant(conn, kind, login, tenants)
    what = "granted" if result.membership_changed else "already a member of"
    click.echo(f"{login}: {what} {result.group}", err=True)
    if result.tenants_changed:
        click.echo(f"{login}: tenants granted: {', '.join(result.tenants_changed)}", err=True)
    if result.tenants_unchanged:
        click.echo(
            f"{login}: tenants already granted: {', '.join(result.tenants_unchanged)}", err=True
        )


@db.command("revoke")
@output_options()
@click.option("--role", "role", type=ROLE_CHOICE, required=True, help=_ROLE_HELP)
@click.argument("login", metavar="LOGIN")
@click.option(
    "--tenant",
    "tenants",
    multiple=True,
    metavar="T",
    help="For --role service: revoke only this tenant (repeat for more); the login stays.",
)
@database_url_option
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
    kind, login, tenants = _login_and_tenants(role, login, tenants)
    target = _target(database_url)
    with roles.transaction(target) as conn:
        result = roles.revoke(conn, kind, login, tenants)
    if not tenants:
        what = "revoked" if result.membership_changed else "not a member of"
        click.echo(f"{login}: {what} {result.group}", err=True)
    if result.tenants_changed:
        click.echo(f"{login}: tenants revoked: {', '.join(result.tenants_changed)}", err=True)
    if result.tenants_unchanged:
        click.echo(f"{login}: tenants not granted: {', '.join(result.tenants_unchanged)}", err=True)


def register(group: click.Group) -> None:
    """Add this module's commands to the root group."""
    group.add_command(db)
