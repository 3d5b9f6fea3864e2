"""Open a database for one command, with an engine that is always disposed.

Two shapes, for two kinds of command:

* :func:`open_database` resolves the URL, connects and checks (or, embedded, upgrades) the
  schema revision. The :class:`Database` it returns is a context manager: leaving the
  ``with`` block disposes the engine and so closes every pooled connection, whether the block
  returned or raised. A failed open disposes the engine itself. ``plan``, ``apply``,
  ``drift``, ``history``, ``health check`` and ``import`` use it.
* :func:`connect` does the same and yields one connection inside one transaction (committed
  when the block ends without an error); driver errors raised inside the block become
  :class:`~reconciler.errors.DatabaseUnavailable` with the credentials masked. The ``audit``
  and ``report`` commands use it; :func:`transaction` is the same for a resolved target.

:class:`ClosedOnExit` is the ``with`` protocol of every object here (and of the services'
client) that holds connections until its ``close()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Self

import sqlalchemy as sa

from reconciler.progress import QUIET, Progress
from reconciler.store.database import (
    DatabaseTarget,
    check_connection,
    create_engine,
    ensure_schema_current,
    resolve_database_url,
    translate_db_errors,
)

Connection = sa.Connection
"""The connection type the layers above hand back to ``store`` (they import no SQLAlchemy)."""

Engine = sa.Engine
"""The engine type, for the same reason."""


class ClosedOnExit:
    """Mixin for an object that holds connections: a ``with`` block ends with its
    :meth:`close`, whether the block returned or raised."""

    __slots__ = ()

    def close(self) -> None:
        """Release what the object holds (subclasses say what). Safe to call more than once."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class Database(ClosedOnExit):
    """An open database: where it is and an engine for it.

    Use it in a ``with`` block (or call :meth:`close`): the engine holds pooled connections
    until it is disposed.
    """

    target: DatabaseTarget
    engine: sa.Engine

    def close(self) -> None:
        """Close every pooled connection. Safe to call more than once."""
        self.engine.dispose()


def open_database(database_url: str | None, progress: Progress = QUIET) -> Database:
    """Resolve, connect and check the schema revision (embedded databases auto-upgrade).

    Raises:
        ConfigError: the URL is malformed, or an external database's schema is not at this
            reconciler's revision.
        DatabaseUnavailable: the database cannot be reached.
    """
    target = resolve_database_url(database_url)
    progress.note(target.describe())
    engine = create_engine(target)
    try:
        check_connection(engine)
        ensure_schema_current(engine, target)
    except BaseException:
        engine.dispose()
        raise
    return Database(target, engine)


@contextmanager
def connect(
    database_url: str | None, purpose: str, target: DatabaseTarget | None = None
) -> Iterator[sa.Connection]:
    """A connection to the chosen database at the current schema; one transaction, committed.

    ``purpose`` becomes the ``application_name`` (what a lock-timeout message shows).
    """
    target = target or resolve_database_url(database_url)
    with transaction(target, application_name=f"reconciler {purpose}") as conn:
        yield conn


@contextmanager
def transaction(target: DatabaseTarget, application_name: str) -> Iterator[sa.Connection]:
    """One transaction on ``target`` (schema checked to be current), committed on success.

    The engine is disposed when the block ends, whether it returned or raised.

    Raises:
        ConfigError: the schema is not at this reconciler's revision.
        DatabaseUnavailable, PermissionDenied: as :func:`translate_db_errors` says.
    """
    engine = create_engine(target, application_name=application_name)
    try:
        check_connection(engine)
        ensure_schema_current(engine, target)
        with translate_db_errors(target.url), engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()
