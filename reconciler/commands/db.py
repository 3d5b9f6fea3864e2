"""``db``: schema migrations (upgrade, downgrade, current, offline SQL), the embedded server,
and the group roles (roles, grant, revoke).

Each verb announces the database it works on through ``progress`` (password masked) before
it touches it, so a script's stdout stays clean.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NotRequired, TypedDict, Unpack

from reconciler.errors import ConfigError
from reconciler.progress import QUIET, Progress
from reconciler.store import migrate, roles
from reconciler.store.database import (
    DatabaseTarget,
    embedded_data_dir,
    resolve_database_url,
    stop_embedded,
)
from reconciler.store.migrate import ARCHIVE_SCHEMA, AuditHistory
from reconciler.store.roles import GrantResult, RoleKind, RolesReport
from reconciler.store.session import Connection

__all__ = [
    "ARCHIVE_SCHEMA",
    "AuditHistory",
    "EmbeddedStop",
    "GrantResult",
    "Membership",
    "MigrationSql",
    "RoleKind",
    "RolesReport",
    "SchemaChange",
    "SchemaRevision",
    "current",
    "downgrade",
    "grant",
    "list_roles",
    "migration_sql",
    "revoke",
    "stop_database",
    "upgrade",
]


@dataclass(frozen=True, slots=True)
class SchemaChange:
    """What an :func:`upgrade` or :func:`downgrade` did.

    Attributes:
        before: the revision before (None: no reconciler schema).
        after: the revision after.
        restored: audit history an upgrade brought back from :data:`ARCHIVE_SCHEMA`.
        history: audit history a downgrade archived (or, with ``discarded``, destroyed).
        discarded: the downgrade destroyed ``history`` instead of archiving it.
    """

    before: str | None
    after: str | None
    restored: AuditHistory | None = None
    history: AuditHistory | None = None
    discarded: bool = False

    @property
    def changed(self) -> bool:
        """The schema revision moved."""
        return self.before != self.after


@dataclass(frozen=True, slots=True)
class SchemaRevision:
    """The database's schema revision and the newest one this reconciler ships."""

    revision: str | None
    head: str

    @property
    def current(self) -> bool:
        """The database is at the newest revision."""
        return self.revision == self.head


@dataclass(frozen=True, slots=True)
class MigrationSql:
    """The offline migration SQL, and the file it was written to (None: not written)."""

    text: str
    rollback: bool
    out: Path | None


@dataclass(frozen=True, slots=True)
class EmbeddedStop:
    """The embedded server's data directory and whether a running server was stopped."""

    pgdata: Path
    stopped: bool


def revision_name(revision: str | None) -> str:
    """A revision as messages show it: ``(none)`` for no reconciler schema."""
    return revision or "(none)"


def _target(database_url: str | None, progress: Progress) -> DatabaseTarget:
    target = resolve_database_url(database_url)
    progress.note(target.describe())
    return target


def upgrade(
    *, revision: str = "head", database_url: str | None = None, progress: Progress = QUIET
) -> SchemaChange:
    """Upgrade the schema to ``revision``, in one transaction (on error nothing changes).

    Audit history a rollback archived is restored when the upgrade passes the revision that
    created it.
    """
    target = _target(database_url, progress)
    before = migrate.current(target)
    archived = migrate.archived_history(target)
    migrate.upgrade(target, revision)
    after = migrate.current(target)
    restored = archived if archived is not None and before != after else None
    if restored is not None and migrate.archived_history(target) is not None:
        restored = None
    return SchemaChange(before, after, restored=restored)


def downgrade(
    *,
    revision: str,
    discard_audit_history: bool = False,
    database_url: str | None = None,
    confirm: Callable[[str], None] | None = None,
    progress: Progress = QUIET,
) -> SchemaChange:
    """Downgrade the schema to ``revision``, in one transaction.

    Args:
        revision: the target revision.
        discard_audit_history: destroy the audit log and apply history instead of archiving
            them in :data:`ARCHIVE_SCHEMA`.
        database_url: as for every command.
        confirm: called with the question (what is dropped, archived or destroyed) before
            anything changes; it raises to stop. None: no confirmation.
        progress: where the database in use is announced.

    Raises:
        ConfigError: ``discard_audit_history`` but the downgrade keeps the history; an
            unknown revision.
    """
    target = _target(database_url, progress)
    before = migrate.current(target)
    history = migrate.history_at_stake(target, revision)
    if discard_audit_history and history is None:
        raise ConfigError(
            f"--discard-audit-history: a downgrade from {revision_name(before)} to {revision} "
            "keeps the audit log and apply history; there is nothing to discard"
        )
    if confirm is not None:
        confirm(_downgrade_question(before, revision, history, discard_audit_history))
    migrate.downgrade(target, revision, discard_audit_history=discard_audit_history)
    after = migrate.current(target)
    return SchemaChange(before, after, history=history, discarded=discard_audit_history)


def _downgrade_question(
    before: str | None, revision: str, history: AuditHistory | None, discard: bool
) -> str:
    if discard:
        assert history is not None
        return (
            f"Downgrade from {revision_name(before)} to {revision} and DESTROY "
            f"{history.describe()}? They are not archived and cannot be restored"
        )
    kept = f"; {history.describe()} are archived in {ARCHIVE_SCHEMA}" if history else ""
    return (
        f"Downgrade from {revision_name(before)} to {revision}? Tables it drops lose their "
        f"data; oauth_tokens rows are kept{kept}"
    )


def current(*, database_url: str | None = None, progress: Progress = QUIET) -> SchemaRevision:
    """The database's schema revision (None for a database without the reconciler's)."""
    target = _target(database_url, progress)
    return SchemaRevision(migrate.current(target), migrate.head_revision())


def migration_sql(
    *,
    rollback: bool = False,
    discard_audit_history: bool = False,
    start: str | None = None,
    out: Path | None = None,
) -> MigrationSql:
    """The migration SQL for a DBA (no database needed), written to ``out`` when given.

    Raises:
        ConfigError: ``discard_audit_history`` without ``rollback``, or ``start`` with it.
    """
    if discard_audit_history and not rollback:
        raise ConfigError("--discard-audit-history needs --rollback")
    if start is not None and rollback:
        raise ConfigError("--from is for the upgrade SQL; the rollback SQL starts at head")
    text = migrate.offline_sql(
        rollback=rollback, discard_audit_history=discard_audit_history, start=start
    )
    if out is not None:
        out.write_text(text, encoding="utf-8")
    return MigrationSql(text, rollback, out)


def stop_database() -> EmbeddedStop:
    """Stop the embedded PostgreSQL if it runs (its data stays)."""
    pgdata = embedded_data_dir()
    return EmbeddedStop(pgdata, stop_embedded(pgdata))


def list_roles(*, database_url: str | None = None, progress: Progress = QUIET) -> RolesReport:
    """The reconciler's group roles, their members and the services' tenant grants."""
    target = _target(database_url, progress)
    with roles.transaction(target) as conn:
        return roles.list_roles(conn)


class Membership(TypedDict):
    """The keyword arguments of :func:`grant` and :func:`revoke`.

    Attributes:
        role: the group role.
        login: an existing LOGIN role.
        tenants: for the service role, the tenants it may act for (default none).
        database_url: the database (default: the configured one).
        progress: where the database worked on is announced (default quiet).
    """

    role: RoleKind
    login: str
    tenants: NotRequired[Sequence[str]]
    database_url: NotRequired[str | None]
    progress: NotRequired[Progress]


def grant(**membership: Unpack[Membership]) -> GrantResult:
    """Grant an existing LOGIN role a group role (and, for services, tenants). Idempotent."""
    return _change_membership(roles.grant, **membership)


def revoke(**membership: Unpack[Membership]) -> GrantResult:
    """Revoke what :func:`grant` granted (only the tenants, when some are named)."""
    return _change_membership(roles.revoke, **membership)


def _change_membership(
    change: Callable[[Connection, RoleKind, str, tuple[str, ...]], GrantResult],
    *,
    role: RoleKind,
    login: str,
    tenants: Sequence[str] = (),
    database_url: str | None = None,
    progress: Progress = QUIET,
) -> GrantResult:
    """Grant or revoke (``change``) in one transaction, after checking the login name."""
    _check_login(login)
    with roles.transaction(_target(database_url, progress)) as conn:
        return change(conn, role, login, tuple(tenants))


def _check_login(login: str) -> None:
    if not login.strip():
        raise ConfigError("LOGIN must be a role name")
