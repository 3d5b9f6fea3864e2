"""An open database for one command: where it is, and an engine that is always disposed.

:func:`open_database` resolves the URL, connects and checks (or, embedded, upgrades) the schema
revision. The :class:`Database` it returns is a context manager: leaving the ``with`` block
disposes the engine and so closes every pooled connection, whether the block returned or
raised. A failed open disposes the engine itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

import sqlalchemy as sa

from reconciler.progress import QUIET, Progress
from reconciler.store.database import (
    DatabaseTarget,
    check_connection,
    create_engine,
    ensure_schema_current,
    resolve_database_url,
)


@dataclass(frozen=True, slots=True)
class Database:
    """An open database: where it is and an engine for it.

    Use it in a ``with`` block (or call :meth:`close`): the engine holds pooled connections
    until it is disposed.
    """

    target: DatabaseTarget
    engine: sa.Engine

    def close(self) -> None:
        """Close every pooled connection. Safe to call more than once."""
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


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
