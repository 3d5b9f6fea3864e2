"""Typed Python API over Alembic's command API: the schema migrations of the reconciler.

The Alembic configuration is built in code (no ``alembic.ini``); the scripts live in the
``reconciler.migrations`` package, so an installed reconciler carries its own migrations.
Online commands hand Alembic an open connection (see ``reconciler/migrations/env.py``), which
runs every step of one command in a single transaction under an advisory lock.

Revisions have readable ids: ``baseline`` (the pre-existing ``oauth_tokens`` table) and
``add_configuration_management``; ``head`` and ``base`` work as in Alembic.

A downgrade never drops tokens, audit rows or apply history: rolling back past
``add_configuration_management`` moves the audit log and the apply history into the schema
``reconciler_archive`` (and what the dropped ``oauth_tokens`` columns held beside them), and
the next upgrade moves them back. Only ``discard_audit_history=True`` drops them instead.

``add_configuration_management`` creates the cluster-wide NOLOGIN role ``reconciler_app`` and
``least_privilege_roles`` the roles ``reconciler_deploy`` and ``reconciler_ci``, each unless it
exists. An owner without CREATEROLE can run them only once a superuser has created those roles;
:func:`upgrade` checks this before changing anything and says so in one line.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from reconciler.errors import ConfigError, PermissionDenied, StateError
from reconciler.store.database import (
    DatabaseTarget,
    create_engine,
    mask_credentials,
    translate_db_errors,
    translate_error,
)
from reconciler.store.script_heads import chain_head
from reconciler.store.tables import APP_ROLE, CI_ROLE, DEPLOY_ROLE

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

# Alembic is imported by the functions that use it: every command imports this module (for
# the schema check), and only migrations and schema comparisons need Alembic (a tenth of a
# second of start-up).

SCRIPT_LOCATION = Path(__file__).resolve().parent.parent / "migrations"
"""Directory holding ``env.py`` and ``versions/``."""

APP_ROLE_REVISION = "add_configuration_management"
"""The revision that creates the role :data:`~reconciler.store.tables.APP_ROLE`."""

HISTORY_REVISION = APP_ROLE_REVISION
"""The revision that creates the audit log and apply history (and archives them on downgrade)."""

ARCHIVE_SCHEMA = "reconciler_archive"
"""Where a downgrade keeps the audit log and apply history until the next upgrade."""

DISCARD_AUDIT_HISTORY = "discard_audit_history"
"""Configuration attribute that lets a downgrade drop the audit log and apply history."""

ROLLBACK_REVISION = "baseline"
"""Where the rollback SQL ends: the application's ``oauth_tokens``, never dropped."""


@dataclass(frozen=True)
class AuditHistory:
    """How many audit rows and apply runs a table pair holds (live or archived)."""

    audit_rows: int
    apply_runs: int

    def describe(self) -> str:
        """E.g. ``12 audit log rows and 3 apply runs``."""
        return (
            f"{self.audit_rows} audit log row{'s' if self.audit_rows != 1 else ''} and "
            f"{self.apply_runs} apply run{'s' if self.apply_runs != 1 else ''}"
        )


ROLES_CREATED = {
    APP_ROLE_REVISION: (APP_ROLE,),
    "least_privilege_roles": (DEPLOY_ROLE, CI_ROLE),
}
"""The cluster-wide roles each revision creates unless they exist."""


def alembic_config(output: io.StringIO | None = None) -> Config:
    """Alembic's configuration for the reconciler's migrations (``output`` for offline SQL)."""
    from alembic.config import Config

    config = Config(output_buffer=output) if output is not None else Config()
    # ConfigParser interpolates "%": escape it in case the install path contains one.
    config.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    return config


def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


@functools.cache
def shipped_head() -> str | None:
    """The newest revision, read from the scripts without running them (see
    :func:`~reconciler.store.script_heads.chain_head`); ``None`` when Alembic must decide."""
    return chain_head(SCRIPT_LOCATION / "versions")


def at_shipped_head(connection: sa.Connection) -> bool:
    """True when the database records exactly the newest revision of :func:`shipped_head`
    (False also when that cannot be told without Alembic)."""
    head = shipped_head()
    if head is None:
        return False
    if connection.execute(sa.text("SELECT to_regclass('alembic_version')")).scalar() is None:
        return False
    recorded = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    return [tuple(row) for row in recorded] == [(head,)]


def head_revision() -> str:
    """The newest revision this reconciler knows."""
    head = _scripts().get_current_head()
    assert head is not None, "the migrations package has no revisions"
    return head


def is_known_revision(revision: str) -> bool:
    """Whether ``revision`` is one of this reconciler's migrations."""
    from alembic.util import CommandError

    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def current_revision(connection: sa.Connection) -> str | None:
    """The revision recorded in the database ``connection`` is on (``None``: no schema yet)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def current(target: DatabaseTarget) -> str | None:
    """The revision ``target`` is at, or ``None`` when it has no reconciler schema.

    Raises:
        DatabaseUnavailable: the database cannot be reached.
    """
    with _connection(target) as connection:
        return current_revision(connection)


def upgrade(target: DatabaseTarget, revision: str = "head") -> None:
    """Upgrade ``target`` to ``revision`` (default: the newest), in one transaction.

    Raises:
        ConfigError: ``revision`` is unknown or not ahead of the current one.
        PermissionDenied: the upgrade would create the role ``reconciler_app``, which does not
            exist, and the connected role may not create roles (nothing was changed).
        StateError: a migration step failed (nothing was changed).
        DatabaseUnavailable: the database cannot be reached.
    """
    from alembic import command

    with _connection(target) as connection, _translate_alembic_errors():
        check_can_create_app_role(connection, revision)
        # End the checks' read-only transaction: the migration opens its own.
        connection.rollback()
        command.upgrade(_online_config(connection), revision)


def check_can_create_app_role(connection: sa.Connection, revision: str = "head") -> None:
    """Refuse an upgrade to ``revision`` that would have to create roles but may not.

    The roles are those of :data:`ROLES_CREATED` (``reconciler_app``, ``reconciler_deploy``,
    ``reconciler_ci``). Roles are cluster-wide and creating one needs CREATEROLE (or
    superuser); the owner the reconciler migrates as often has neither. Checked before
    anything is written, so the failure is one line naming the fix instead of a rolled-back
    migration.

    Raises:
        PermissionDenied: a role is missing and the current role may not create it.
    """
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    current = current_revision(connection)
    try:
        steps = {s.revision for s in _scripts().iterate_revisions(revision, current or "base")}
    except (CommandError, RevisionError):
        return  # an unknown or relative target: Alembic reports what is wrong with it
    needed = [role for step, roles in ROLES_CREATED.items() if step in steps for role in roles]
    if not needed:
        return
    row = connection.execute(
        sa.text(
            "SELECT current_user AS role, r.rolsuper OR r.rolcreaterole AS may_create,"
            "       ARRAY(SELECT n FROM unnest(CAST(:needed AS text[])) WITH ORDINALITY AS u(n, i)"
            "              WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = n)"
            "              ORDER BY i) AS missing"
            "  FROM pg_catalog.pg_roles r WHERE r.rolname = current_user"
        ),
        {"needed": needed},
    ).one()
    missing: list[str] = list(row.missing)
    if not missing or row.may_create:
        return
    create = "; ".join(f"CREATE ROLE {role} NOLOGIN" for role in missing)
    subject = (
        f"the role {missing[0]} does not exist"
        if len(missing) == 1
        else f"the roles {', '.join(missing)} do not exist"
    )
    raise PermissionDenied(
        f"{subject} and {row.role} may not create roles: run `{create}` as a superuser, "
        f"or grant CREATEROLE to {row.role}; nothing was changed"
    )


def downgrade(
    target: DatabaseTarget, revision: str, *, discard_audit_history: bool = False
) -> None:
    """Downgrade ``target`` to ``revision``, in one transaction.

    Downgrading to ``baseline`` is the rollback of ``add_configuration_management``: every
    ``oauth_tokens`` row is kept with its baseline columns (what the other columns held is
    archived); the audit log and apply history are moved into :data:`ARCHIVE_SCHEMA`, or
    dropped when ``discard_audit_history`` is true; integration and webhook tables are
    dropped. ``base`` also forgets ``baseline`` but keeps ``oauth_tokens``.

    Raises:
        ConfigError: ``revision`` is unknown or not behind the current one.
        StateError: a migration step failed (nothing was changed).
        DatabaseUnavailable: the database cannot be reached.
    """
    from alembic import command

    with _connection(target) as connection, _translate_alembic_errors():
        config = _online_config(connection)
        config.attributes[DISCARD_AUDIT_HISTORY] = discard_audit_history
        command.downgrade(config, revision)


def history_at_stake(target: DatabaseTarget, revision: str) -> AuditHistory | None:
    """The audit rows and apply runs a downgrade of ``target`` to ``revision`` archives (or,
    with ``discard_audit_history``, destroys); ``None`` when that downgrade keeps the tables.

    Raises:
        DatabaseUnavailable: the database cannot be reached.
    """
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    with _connection(target) as connection:
        current = current_revision(connection)
        if current is None:
            return None
        try:
            removed = {s.revision for s in _scripts().iterate_revisions(current, revision)}
        except (CommandError, RevisionError):
            return None  # an unknown or relative target: the downgrade reports it
        if HISTORY_REVISION not in removed:
            return None
        return _history_counts(connection, "public")


def archived_history(target: DatabaseTarget) -> AuditHistory | None:
    """What :data:`ARCHIVE_SCHEMA` holds for the next upgrade to restore (``None``: nothing).

    Raises:
        DatabaseUnavailable: the database cannot be reached.
    """
    with _connection(target) as connection:
        return _history_counts(connection, ARCHIVE_SCHEMA)


def _history_counts(connection: sa.Connection, schema: str) -> AuditHistory | None:
    tables = ("configuration_audit_logs", "apply_runs")
    present = connection.execute(
        sa.text(
            "SELECT c.relname FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :schema AND c.relname = ANY(:tables) AND c.relkind = 'r'"
        ),
        {"schema": schema, "tables": list(tables)},
    ).scalars()
    if not set(present) >= set(tables):
        return None
    # Identifiers from the constants above, never from input.
    audit_rows, apply_runs = connection.execute(
        sa.text(
            f"SELECT (SELECT count(*) FROM {schema}.configuration_audit_logs), "
            f"(SELECT count(*) FROM {schema}.apply_runs)"
        )
    ).one()
    return AuditHistory(int(audit_rows), int(apply_runs))


def check(target: DatabaseTarget) -> None:
    """Compare ``target``'s schema with :data:`reconciler.store.tables.metadata`.

    Runs ``alembic check`` (autogenerate: tables, columns, types, nullability, server defaults,
    identity, unique constraints, index columns), then compares what autogenerate does not:
    enum labels and their order, index definitions (access method such as GIN, partial-index
    predicates), primary-key column order, and check-constraint names. Row-level security,
    grants and the audit trigger are not in the metadata; tests cover them directly.

    Raises:
        StateError: the database differs from the tables the code expects.
        DatabaseUnavailable: the database cannot be reached.
    """
    from alembic import command
    from alembic.util import AutogenerateDiffsDetected

    with _connection(target) as connection:
        config = _online_config(connection)
        config.print_stdout = lambda *args, **kw: None  # type: ignore[method-assign]
        try:
            command.check(config)
        except AutogenerateDiffsDetected as exc:
            raise StateError(" ".join(str(exc).split())) from exc
        differences = catalog_differences(connection)
    if differences:
        raise StateError("database schema differs from the code: " + "; ".join(differences))


def catalog_differences(connection: sa.Connection) -> list[str]:
    """Differences autogenerate cannot see, read from the PostgreSQL catalog (empty: none)."""
    from reconciler.store.tables import metadata

    found: list[str] = []
    enums = {
        column.type.name: tuple(column.type.enums)
        for table in metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, sa.Enum) and column.type.name
    }
    for name, labels in sorted(enums.items()):
        rows = connection.execute(
            sa.text(
                "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
                "WHERE t.typname = :name ORDER BY e.enumsortorder"
            ),
            {"name": name},
        )
        actual = tuple(row[0] for row in rows)
        if actual != labels:
            found.append(f"enum {name} has labels {list(actual)}, expected {list(labels)}")

    dialect = connection.dialect
    for table in metadata.tables.values():
        for index in table.indexes:
            assert isinstance(index.name, str)
            row = connection.execute(
                sa.text("SELECT pg_get_indexdef(to_regclass(:name))"), {"name": index.name}
            ).scalar()
            expected = str(sa.schema.CreateIndex(index).compile(dialect=dialect))
            if row is None or _normalized_ddl(row) != _normalized_ddl(expected):
                found.append(f"index {index.name} is {row!r}, expected {expected!r}")

        pk_columns = connection.execute(
            sa.text(
                "SELECT array_agg(a.attname ORDER BY k.ord) FROM pg_index i "
                "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
                "WHERE i.indrelid = to_regclass(:table) AND i.indisprimary"
            ),
            {"table": table.name},
        ).scalar()
        expected_pk = [column.name for column in table.primary_key.columns]
        if list(pk_columns or []) != expected_pk:
            found.append(f"{table.name} primary key is {pk_columns}, expected {expected_pk}")

        checks = set(
            connection.execute(
                sa.text(
                    "SELECT conname FROM pg_constraint "
                    "WHERE conrelid = to_regclass(:table) AND contype = 'c'"
                ),
                {"table": table.name},
            ).scalars()
        )
        expected_checks = {
            str(c.name) for c in table.constraints if isinstance(c, sa.CheckConstraint)
        }
        if checks != expected_checks:
            found.append(
                f"{table.name} check constraints are {sorted(checks)}, "
                f"expected {sorted(expected_checks)}"
            )
    return found


def _normalized_ddl(ddl: str) -> str:
    """CREATE INDEX text with PostgreSQL's rendering noise removed, for comparison only.

    ``pg_get_indexdef`` adds the schema, ``USING btree``, casts and parentheses around every
    sub-expression; dropping those (and all whitespace) leaves what distinguishes two indexes.
    """
    text = ddl.lower().replace("public.", "").replace(" using btree", "")
    text = re.sub(r"::[a-z_ ]+", "", text)
    return re.sub(r"[()\s]", "", text)


def offline_sql(
    rollback: bool = False,
    *,
    discard_audit_history: bool = False,
    start: str | None = None,
) -> str:
    """The SQL a DBA runs with ``psql -f``: upgrade to the newest revision, from nothing or
    from ``start`` (a database a rollback left at ``baseline``), or (``rollback=True``) the
    downgrade from the newest revision to ``baseline``.

    The rollback never goes past ``baseline``, so ``oauth_tokens`` and its rows stay; it
    archives the audit log and apply history like :func:`downgrade`, or drops them when
    ``discard_audit_history`` is true. No database is contacted; the SQL is for PostgreSQL and
    includes the ``alembic_version`` bookkeeping, so ``reconciler db current`` is right
    afterwards.

    Raises:
        ConfigError: ``start`` is not a known revision.
    """
    from alembic import command

    buffer = io.StringIO()
    config = alembic_config(buffer)
    with _translate_alembic_errors():
        if rollback:
            config.attributes[DISCARD_AUDIT_HISTORY] = discard_audit_history
            command.downgrade(config, f"{head_revision()}:{ROLLBACK_REVISION}", sql=True)
        elif start is not None:
            if not is_known_revision(start):
                raise ConfigError(f"unknown revision {start!r}")
            command.upgrade(config, f"{start}:head", sql=True)
        else:
            command.upgrade(config, "head", sql=True)
    return buffer.getvalue()


def _online_config(connection: sa.Connection) -> Config:
    config = alembic_config()
    config.attributes["connection"] = connection
    return config


@contextlib.contextmanager
def _connection(target: DatabaseTarget) -> Iterator[sa.Connection]:
    engine = create_engine(target, application_name="reconciler-migrate")
    try:
        with translate_db_errors(target.url), engine.connect() as connection:
            yield connection
            connection.commit()
    finally:
        engine.dispose()


@contextlib.contextmanager
def _translate_alembic_errors() -> Iterator[None]:
    from alembic.util import CommandError

    try:
        yield
    except CommandError as exc:
        raise ConfigError(mask_credentials(" ".join(str(exc).split()))) from exc
    except (
        sa.exc.ProgrammingError,
        sa.exc.IntegrityError,
        sa.exc.DataError,
        sa.exc.NotSupportedError,
        sa.exc.InternalError,
    ) as exc:
        # A missing privilege keeps its own class; anything else is a failed step.
        translated = translate_error(exc)
        reason = mask_credentials(" ".join(str(translated or exc.orig or exc).split()))
        error = type(translated) if translated is not None else StateError
        raise error(f"migration failed, nothing was changed: {reason}") from exc
