"""The JSON-able form of the records :mod:`reconciler.store` returns (``--json`` output)."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from reconciler.clock import rfc3339

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


def json_form(record: DataclassInstance) -> dict[str, Any]:
    """Every field of ``record`` by name, in declaration order: timestamps in RFC 3339 (as
    :func:`reconciler.clock.rfc3339` prints them), lists copied, anything else as it is."""
    return {f.name: _json_value(getattr(record, f.name)) for f in fields(record)}


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, list):
        return list(value)
    return value
