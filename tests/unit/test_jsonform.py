"""json_form / json_value: the one way records turn into their JSON objects."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from reconciler.jsonform import json_form, json_value


class Colour(enum.StrEnum):
    RED = "red"


@dataclass(frozen=True)
class Inner:
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n}


@dataclass(frozen=True)
class Outer:
    colour: Colour
    when: datetime | None
    inner: tuple[Inner, ...]
    label: str


def test_keys_in_the_order_given_with_renames() -> None:
    record = Outer(Colour.RED, None, (Inner(1),), "x")
    form = json_form(record, ("label", ("hue", "colour"), "inner", "when"))
    assert list(form) == ["label", "hue", "inner", "when"]
    assert form == {"label": "x", "hue": "red", "inner": [{"n": 1}], "when": None}


def test_values() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert json_value(datetime(2026, 1, 2, 5, 4, 3, 999, tzinfo=plus_two)) == (
        "2026-01-02T03:04:03+00:00"
    )
    assert json_value(datetime(2026, 1, 2, tzinfo=UTC)) == "2026-01-02T00:00:00+00:00"
    assert json_value(("a", Colour.RED)) == ["a", "red"]
    assert json_value(1.5) == 1.5
    assert type(json_value(Colour.RED)) is str
