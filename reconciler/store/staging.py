"""Staging tables: rows sent with one binary ``COPY`` into a temporary table, then merged.

A write of many rows stages them first, then runs one set-based statement (``INSERT ...
SELECT``, ``UPDATE ... FROM``) reading the staging table. ``COPY`` in binary sends each value
in its wire form, encoded in C by psycopg, so nothing is rendered to text and parsed again;
the merge statement runs as the connected role, so grants, row-level security, constraints
and triggers of the real table apply exactly as to any other statement.

The staging table is created ``ON COMMIT DROP`` inside the caller's transaction: a rollback
removes it with everything else. A staging table that an ``UPDATE`` joins on gets an index on
its key and fresh statistics, so the join probes an index (or hashes) whatever the target
table's statistics say: joining thousands of rows through a nested loop over an unindexed
source costs time quadratic in the rows. On Citus a temporary table is local to the
coordinator; Citus plans it as an intermediate result sent to the workers, which ``INSERT ...
SELECT`` and ``UPDATE ... FROM`` both support.

Rows that cost real time to make (the signed audit rows) are staged and merged in batches by
:func:`stage_and_merge_in_batches`: while the database merges one batch, a helper thread
makes the next, so the client's work and the server's overlap instead of taking turns.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import psycopg
import sqlalchemy as sa

COPY_TYPES = frozenset(
    {"text", "bigint", "integer", "boolean", "double precision", "timestamptz", "uuid"}
)
"""Column types staged as themselves; any other type (enums, ``jsonb``) is staged as text
and cast by the merge statement."""

_names = itertools.count(1)


def staged_type(sql_type: str) -> str:
    """The type a column of ``sql_type`` has in a staging table."""
    return sql_type if sql_type in COPY_TYPES else "text"


def cast(expression: str, sql_type: str) -> str:
    """``expression`` (a staged column) as a value of ``sql_type``."""
    if sql_type in COPY_TYPES:
        return expression
    return f"CAST({expression} AS {sql_type})"


def stage_rows(
    conn: sa.Connection,
    columns: Sequence[tuple[str, str]],
    rows: Iterable[Sequence[Any]],
    *,
    key: Sequence[str] = (),
) -> str:
    """Create a temporary staging table, COPY ``rows`` into it, and return its name.

    Args:
        conn: a connection inside the transaction that merges the rows.
        columns: ``(name, staged type)`` of each column (see :func:`staged_type`), in the
            order of each row's values.
        rows: the values, one sequence per row (``None`` is NULL).
        key: columns a merge joins on: indexed and analyzed after the copy.
    """
    name = f"reconciler_stage_{next(_names)}"
    declared = ", ".join(f"{n} {t}" for n, t in columns)
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {name} ({declared}) ON COMMIT DROP")
    raw = conn.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    listed = ", ".join(n for n, _ in columns)
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY {name} ({listed}) FROM STDIN (FORMAT binary)") as copy,
    ):
        copy.set_types([t for _, t in columns])
        for row in rows:
            copy.write_row(row)
    if key:
        conn.exec_driver_sql(f"CREATE INDEX ON {name} ({', '.join(key)})")
        conn.exec_driver_sql(f"ANALYZE {name}")
    return name


PIPELINE_ROWS = 16_384
"""Rows per batch of :func:`stage_and_merge_in_batches`."""


def stage_and_merge_in_batches(
    conn: sa.Connection,
    columns: Sequence[tuple[str, str]],
    count: int,
    make_rows: Callable[[int, int], list[Sequence[Any]]],
    merge: Callable[[str], object],
    *,
    batch: int | None = None,
) -> None:
    """Stage and merge ``count`` rows a batch at a time, making each batch's rows while the
    database merges the batch before.

    ``make_rows(start, stop)`` makes rows ``start`` to ``stop``; it is called for the batches
    in order, one call at a time, so a row may depend on the rows made before it (an audit
    row's hash covers the previous one's). ``merge(staged)`` runs the statement that merges
    one staging table. From the second batch on, ``make_rows`` runs in a helper thread while
    this one waits for the database to merge the batch before (psycopg releases the GIL
    while it waits), so the two overlap instead of taking turns. Nothing else runs in the
    helper, and a batch is staged only once it is made: any error is raised here, in order.
    ``batch`` defaults to :data:`PIPELINE_ROWS`.
    """
    batch = batch or PIPELINE_ROWS
    if count <= batch:
        merge(stage_rows(conn, columns, make_rows(0, count)))
        return
    starts = range(0, count, batch)
    with ThreadPoolExecutor(1, thread_name_prefix="reconciler-rows") as helper:
        staged = stage_rows(conn, columns, make_rows(0, batch))
        for start in starts[1:]:
            made: Future[list[Sequence[Any]]] = helper.submit(
                make_rows, start, min(start + batch, count)
            )
            merge(staged)
            staged = stage_rows(conn, columns, made.result())
        merge(staged)
