"""Settings of the current transaction that the verbs rely on."""

from __future__ import annotations

import sqlalchemy as sa


def begin_read_snapshot(conn: sa.Connection) -> None:
    """Make the just-begun transaction one read-only snapshot (every read sees one moment)."""
    conn.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))


def set_statement_timeout(conn: sa.Connection, seconds: float) -> None:
    """Bound every statement of the current transaction (``SET LOCAL``: ends with it)."""
    timeout_ms = int(seconds * 1000)
    conn.execute(sa.text(f"SET LOCAL statement_timeout = {timeout_ms}"))
