"""The newest migration revision, read from the scripts' text (:func:`chain_head`).

Alembic learns its revisions by running every script, a tenth of a second at the start of a
command; the schema check of a command that does not migrate needs only the newest name.
"""

from __future__ import annotations

import re
from pathlib import Path

_REVISION_LINE = re.compile(
    r"""^(revision|down_revision): str(?: \| None)? = (None|"[^"\n]+"|'[^'\n]+')$""", re.M
)
"""How every script declares itself and its predecessor (see ``script.py.mako``)."""

_BRANCHING = re.compile(r"^(branch_labels|depends_on)\b", re.M)
"""What only a script outside one plain chain declares."""


def chain_head(versions: Path) -> str | None:
    """The newest revision of the scripts in ``versions``, from their ``revision`` and
    ``down_revision`` lines, without running them; ``None`` unless they form one plain chain
    (Alembic then decides)."""
    previous: dict[str, str | None] = {}
    for path in sorted(versions.glob("*.py")):
        if path.name == "__init__.py":
            continue
        text = path.read_text()
        found = _REVISION_LINE.findall(text)
        lines = {name: None if value == "None" else value[1:-1] for name, value in found}
        if (
            len(found) != 2
            or set(lines) != {"revision", "down_revision"}
            or _BRANCHING.search(text)
        ):
            return None
        revision = lines["revision"]
        if revision is None or revision in previous:
            return None
        previous[revision] = lines["down_revision"]
    heads = set(previous) - set(previous.values())
    if len(heads) != 1:
        return None
    (head,) = heads
    chain: list[str] = []
    step: str | None = head
    while step is not None and step in previous and len(chain) <= len(previous):
        chain.append(step)
        step = previous[step]
    return head if step is None and len(chain) == len(previous) else None
