"""``history``: the apply runs recorded in the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from reconciler.progress import QUIET, Progress
from reconciler.store.database import translate_db_errors
from reconciler.store.runs import ApplyRun, recent_apply_runs
from reconciler.store.session import Connection, open_database


def history(
    *, database_url: str | None = None, limit: int = 20, progress: Progress = QUIET
) -> list[ApplyRun]:
    """The most recent apply runs, newest first."""
    with reading(database_url, progress) as conn:
        return recent_apply_runs(conn, limit)


@contextmanager
def reading(database_url: str | None, progress: Progress) -> Iterator[Connection]:
    """A connection for the history views to read with; database errors become
    :class:`~reconciler.errors.ReconcilerError` and the engine is disposed on leaving."""
    with (
        open_database(database_url, progress) as db,
        translate_db_errors(),
        db.engine.connect() as conn,
    ):
        yield conn
