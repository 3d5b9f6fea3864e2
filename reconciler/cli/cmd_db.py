"""CLI commands: ``reconciler db upgrade | downgrade | current | sql`` (schema migrations).

Each command is a thin layer over :mod:`reconciler.store.migrate`. The database in use is
announced on stderr (password masked), so stdout stays clean for scripts.
"""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.options import database_url_option, handle_errors
from reconciler.store import migrate
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
    """Manage the database schema (Alembic migrations shipped with the reconciler).

    \b
    Revisions, oldest first:
      baseline                      the oauth_tokens table as it was before the reconciler
      add_configuration_management  integration, webhook, audit and apply-run tables, RLS
    \b
    The embedded database (no URL given) is upgraded automatically; an external database
    only by `reconciler db upgrade`, or by a DBA running the SQL from `reconciler db sql`.
    """


@db.command("upgrade")
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
    migrate.upgrade(target, revision)
    after = migrate.current(target)
    if before == after:
        click.echo(f"schema already at {_revision(after)}; nothing to do", err=True)
    else:
        click.echo(f"upgraded schema: {_revision(before)} -> {_revision(after)}", err=True)


@db.command("downgrade")
@click.argument("revision", metavar="REV")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@database_url_option
@handle_errors
def downgrade(revision: str, yes: bool, database_url: str | None) -> None:
    """Downgrade the schema to REV (asks first).

    Drops what later revisions added. `baseline` is the rollback of the
    configuration-management schema: integration, webhook, audit and apply-run tables are
    dropped with their data; every oauth_tokens row is kept with its baseline columns.
    `base` drops everything, tokens included.

    \b
    Examples:
      reconciler db downgrade baseline
      reconciler db downgrade base --yes --database-url postgresql://admin@db:5432/config
    """
    target = _target(database_url)
    before = migrate.current(target)
    if not yes:
        click.confirm(
            f"Downgrade from {_revision(before)} to {revision}? Data in the tables "
            "it drops is lost",
            abort=True,
            err=True,
        )
    migrate.downgrade(target, revision)
    after = migrate.current(target)
    if before == after:
        click.echo(f"schema already at {_revision(after)}; nothing to do", err=True)
    else:
        click.echo(f"downgraded schema: {_revision(before)} -> {_revision(after)}", err=True)


@db.command("current")
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
@click.option(
    "--rollback", is_flag=True, help="The downgrade SQL (head -> nothing) instead of the upgrade."
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
def sql(rollback: bool, out: Path | None) -> None:
    """Print the migration SQL for a DBA (no database needed).

    The SQL is for review and for `psql -f`.

    The upgrade SQL creates the whole schema from nothing (or, on a database that already has
    the oauth_tokens table, adopts it); the rollback SQL undoes it. Both run in one
    transaction and record the revision, so `reconciler db current` agrees afterwards.

    \b
    Examples:
      reconciler db sql > upgrade.sql && psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f upgrade.sql
      reconciler db sql --rollback --out migrations/sql/rollback.sql
    """
    text = migrate.offline_sql(rollback=rollback)
    if out is None:
        click.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    click.echo(f"wrote {'rollback' if rollback else 'upgrade'} SQL to {out}", err=True)


@db.command("stop")
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


def register(group: click.Group) -> None:
    """Add this module's commands to the root group."""
    group.add_command(db)
