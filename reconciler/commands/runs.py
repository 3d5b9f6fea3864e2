"""``history``: the apply runs recorded in the database."""

from __future__ import annotations

from reconciler.progress import QUIET, Progress
from reconciler.store.database import (
    translate_db_errors,
)
from reconciler.store.runs import ApplyRun, recent_apply_runs
from reconciler.store.session import open_database


def history(
    *, database_url: str | None = None, limit: int = 20, progress: Progress = QUIET
) -> list[ApplyRun]:
    """The most recent apply runs, newest first."""
    with (
        open_database(database_url, progress) as db,
        translate_db_errors(),
        db.engine.connect() as conn,
    ):
        return recent_apply_runs(conn, limit)
