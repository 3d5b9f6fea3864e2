"""The JSON form of a record (``--format json``, saved plans), declared as a list of keys.

A record's ``to_dict`` names its keys in output order with :func:`json_form`; each value is
made JSON-able by :func:`json_value` the same way everywhere: an enum member as its value,
a time as ISO 8601 in UTC to the second, a tuple or list as a list, a record as its own
``to_dict()``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

Key = str | tuple[str, str]
"""A key that is also the attribute's name, or ``(key, attribute)``."""


def json_form(record: object, keys: Iterable[Key]) -> dict[str, Any]:
    """``record``'s attributes named by ``keys`` as a JSON object, in the order of ``keys``."""
    out: dict[str, Any] = {}
    for key in keys:
        name, attribute = (key, key) if isinstance(key, str) else key
        out[name] = json_value(getattr(record, attribute))
    return out


def json_value(value: Any) -> Any:
    """``value`` as JSON holds it (see the module docstring); other values unchanged."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds")
    if isinstance(value, tuple | list):
        return [json_value(item) for item in value]
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else value
