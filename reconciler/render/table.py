"""Plain text tables and timestamps for the terminal renderers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from reconciler.escape import printable


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain left-aligned table; ``None`` shows as ``-``."""
    # Cells come from the database, where any writer of the table could put a newline or an
    # escape sequence: escaped, they cannot forge a line of the table or a CI log.
    cells = [[("-" if v is None else printable(str(v))) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = [list(headers), *cells]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def utc_time(moment: datetime | None) -> str | None:
    """``YYYY-MM-DD HH:MM:SS`` in UTC, or None (a table shows ``-``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else None
