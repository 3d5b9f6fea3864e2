"""Open a connection for one command: the engine's whole life in one ``with`` block.

:func:`connect` resolves the database (or takes an already resolved target), checks that it
answers and that its schema is current, yields one connection inside one transaction
(committed when the block ends without an error) and always disposes of the engine.
Driver errors raised inside the block become
:class:`~reconciler.errors.DatabaseUnavailable` with the credentials masked.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from .database import (
    DatabaseTarget,
    check_connection,
    create_engine,
    ensure_schema_current,
    resolve_database_url,
    translate_db_errors,
)


@contextmanager
def connect(
    database_url: str | None, purpose: str, target: DatabaseTarget | None = None
) -> Iterator[sa.Connection]:
    """A connection to the chosen database at the current schema; one transaction, committed.

    ``purpose`` becomes the ``application_name`` (what a lock-timeout message shows).
    """
    target = target or resolve_database_url(database_url)
    engine = create_engine(target, application_name=f"reconciler {purpose}")
    try:
        check_connection(engine)
        ensure_schema_current(engine, target)
        with translate_db_errors(engine.url), engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()
