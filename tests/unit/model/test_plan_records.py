"""The plan's records turn into the dicts that plan files, digests and audit rows hold."""

from __future__ import annotations

import dataclasses
import json

import pytest

from reconciler.model.plan import FieldChange


@pytest.mark.parametrize(
    "change",
    [
        FieldChange("api_key", None, "(sensitive)", True),
        FieldChange("features", {"deals": True}, {"deals": False}),
        FieldChange("sync_interval", 30, 60),
    ],
)
def test_field_change_to_dict_is_every_field_in_declaration_order(change: FieldChange) -> None:
    # Key order shows in unsorted JSON (plan files): it must stay the declaration's.
    expected = {f.name: getattr(change, f.name) for f in dataclasses.fields(change)}
    assert json.dumps(change.to_dict()) == json.dumps(expected)
    assert FieldChange.from_dict(change.to_dict()) == change
