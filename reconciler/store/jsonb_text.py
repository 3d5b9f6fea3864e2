"""A JSON value as PostgreSQL prints it after storing it as ``jsonb`` (``value::jsonb::text``).

The audit chain hashes a row's ``changes`` and ``risk_reasons`` as the database renders them
when they are read back, so the writer needs that text before the row is inserted. Rendering
it here, instead of sending every document to the server and reading it back, is what this
module is for; the integration tests compare it with the server's rendering.

``jsonb`` prints objects with their keys ordered by length in UTF-8 bytes, then bytewise
(keeping the last value of a duplicate key), ``", "`` and ``": "`` as separators, strings
escaped like ``json`` does with ``ensure_ascii=False`` (``\\"``, ``\\\\``, ``\\b``, ``\\f``,
``\\n``, ``\\r``, ``\\t``, other control characters as ``\\u00xx``), and numbers as
``numeric`` prints the JSON text it was given (``1e-07`` becomes ``0.0000001``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any

_escape: Callable[[str], str] = encode_basestring
"""The C string encoder of ``json.dumps(..., ensure_ascii=False)``."""


class NotJson(TypeError):
    """A value that JSON cannot hold (the message says which)."""


class RenderedJson:
    """A value already rendered by :func:`jsonb_text`, placed in a larger value as it is
    (a part that many documents share is then rendered once)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"RenderedJson({self.text!r})"


def jsonb_text(value: Any, refuse: Callable[[Any], None] | None = None) -> str:
    """``value`` as PostgreSQL prints it as ``jsonb``.

    Args:
        value: dicts (string keys, or keys ``json.dumps`` would convert), lists, tuples,
            strings, integers, finite floats, booleans and None.
        refuse: called with any other value before :class:`NotJson` is raised (to raise a
            more specific error for it).

    Raises:
        NotJson: a value JSON cannot hold (NaN, an infinity, another type).
    """
    return _render(value, refuse)


def _key(text: str) -> tuple[int, bytes]:
    encoded = text.encode("utf-8")
    return len(encoded), encoded


def _key_text(key: Any) -> str:
    # As json.dumps converts keys; anything else is not JSON.
    if isinstance(key, str):
        return str.__str__(key)
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return int.__repr__(key)
    if isinstance(key, float):
        return _number(key)
    raise NotJson(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _number(value: float) -> str:
    if not math.isfinite(value):
        raise NotJson(f"Out of range float values are not JSON compliant: {value!r}")
    text = format(Decimal(float.__repr__(value)), "f")
    # numeric has no negative zero.
    return text[1:] if text.startswith("-") and value == 0 else text


_ORDERS: dict[tuple[str, ...], list[tuple[str, str]]] = {}
"""Key order and rendered ``"key": `` prefix, by a dict's keys in insertion order: the
objects of one batch (audit rows' field lists) share a handful of key sets."""
_ORDERS_MAX = 4096


def _ordered(keys: tuple[str, ...]) -> list[tuple[str, str]]:
    order = _ORDERS.get(keys)
    if order is None:
        order = [(k, _escape(k) + ": ") for k in sorted(keys, key=_key)]
        if len(_ORDERS) >= _ORDERS_MAX:
            _ORDERS.clear()
        _ORDERS[keys] = order
    return order


def _render(value: Any, refuse: Callable[[Any], None] | None) -> str:
    kind = type(value)
    if kind is str:
        return _escape(value)
    if kind is dict:
        if not value:
            return "{}"
        keys = tuple(value)
        if not all(type(k) is str for k in keys):
            return _render({_key_text(k): v for k, v in value.items()}, refuse)
        parts = []
        for key, prefix in _ordered(keys):
            item = value[key]
            # The common leaves inline: a call per leaf is most of the cost.
            if type(item) is str:
                parts.append(prefix + _escape(item))
            elif item is None:
                parts.append(prefix + "null")
            elif item is True:
                parts.append(prefix + "true")
            elif item is False:
                parts.append(prefix + "false")
            else:
                parts.append(prefix + _render(item, refuse))
        return "{" + ", ".join(parts) + "}"
    if kind is list or kind is tuple:
        if not value:
            return "[]"
        return "[" + ", ".join(_render(item, refuse) for item in value) + "]"
    if kind is RenderedJson:
        return value.text  # type: ignore[no-any-return]
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        return _number(value)
    # Subclasses, as json.dumps takes them (str and int enums, dict and list subclasses).
    if isinstance(value, str):
        return _escape(str.__str__(value))
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, dict):
        return _render(dict(value), refuse)
    if isinstance(value, list | tuple):
        return _render(list(value), refuse)
    if refuse is not None:
        refuse(value)
    raise NotJson(f"Object of type {type(value).__name__} is not JSON serializable")
