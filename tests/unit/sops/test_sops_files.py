"""YAML/JSON/dotenv reading and writing: sops's layout, faithful types, atomic writes."""

from __future__ import annotations

import math
import os
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.errors import ConfigError
from reconciler.files import atomic_write
from reconciler.sops.files import dump, dump_yaml, parse_dotenv, parse_json
from reconciler.yaml_source import parse_documents
from tests.unit.sops.helpers import VECTORS

GENERATED = VECTORS / "generated-sops-3.11.0" / "enc"


@pytest.mark.parametrize("path", sorted(GENERATED.glob("*.yaml")), ids=lambda p: p.name)
def test_yaml_layout_is_the_one_sops_writes(path: Path) -> None:
    text = path.read_text()
    without_comments = "".join(
        line for line in text.splitlines(keepends=True) if not line.lstrip().startswith("#")
    )
    assert dump_yaml(parse_documents(text)) == without_comments


def test_json_layout_is_the_one_sops_writes() -> None:
    text = (GENERATED / "json-basic.enc.json").read_text()
    assert dump([parse_json(text, source="f")], "json", source="f") == text


@pytest.mark.parametrize(
    "value",
    [
        "yes", "on", "y", "true", "NULL", "~", "", "017", "0o17", "0x1F", "1_000", "+1", "1e3",
        ".5", ".inf", "1:20", "2024-01-02", "<<", "- x", "a: b", "#c", "x #y", " lead", "trail ",
        "multi\nline\n", "no newline\nat end", "keep\n\n", "\nleading blank", "  indented\nx\n",
        "tab\there", "cr\r\n", "nel\x85", "ls\u2028", "bom\ufeff", "bell\a", "quote\"'",
        "ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]", "päß ✓", "trailing \nspace",
    ],
)  # fmt: skip
def test_strings_read_back_as_the_same_string(value: str) -> None:
    document = {"k": value, value or "empty": [value]}
    assert parse_documents(dump_yaml([document])) == [document]


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.datetimes(
        min_value=datetime(1000, 1, 1),
        max_value=datetime(9999, 12, 31),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=9, minutes=30))]
        ),
    )
)
_trees = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(min_size=0, max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=12), _trees, max_size=5), min_size=1, max_size=3))
def test_any_documents_round_trip_with_their_types(documents: list[dict[str, Any]]) -> None:
    parsed = parse_documents(dump_yaml(documents))
    assert parsed == [d or {} for d in documents]
    _assert_same_types(parsed, documents)


def _assert_same_types(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    if isinstance(a, dict):
        for key in a:
            _assert_same_types(a[key], b[key])
    elif isinstance(a, list):
        for x, y in zip(a, b, strict=True):
            _assert_same_types(x, y)


def test_special_floats_and_whole_floats_stay_floats() -> None:
    parsed = parse_documents(dump_yaml([{"a": 10.0, "b": math.inf, "c": -math.inf, "d": 1e21}]))
    assert parsed == [{"a": 10.0, "b": math.inf, "c": -math.inf, "d": 1e21}]
    assert math.isnan(parse_documents(dump_yaml([{"n": math.nan}]))[0]["n"])


def test_json_reading_is_strict() -> None:
    with pytest.raises(ConfigError, match="duplicate key 'a'"):
        parse_json('{"a": 1, "a": 2}', source="f")
    with pytest.raises(ConfigError, match="NaN is not valid JSON"):
        parse_json('{"a": NaN}', source="f")
    assert parse_json('{"big": 12345678901234567890}', source="f") == {"big": 1.2345678901234567e19}
    with pytest.raises(ConfigError, match="cannot be written as json"):
        dump([{}, {}], "json", source="f")


def test_dotenv_metadata_is_unflattened() -> None:
    document = parse_dotenv(
        "# comment\nA=1\nsops_age__list_0__map_enc=x\\ny\nsops_age__list_0__map_recipient=r\n"
        "sops_mac_only_encrypted=true\nsops_version=3.8.1\n",
        source="f",
    )
    assert document == {
        "A": "1",
        "sops": {
            "age": [{"enc": "x\ny", "recipient": "r"}],
            "mac_only_encrypted": True,
            "version": "3.8.1",
        },
    }
    assert dump([{"A": "a\nb", "B": 2}], "dotenv", source="f") == "A=a\\nb\nB=2\n"


def test_atomic_write_keeps_permissions_and_leaves_no_temp_file(tmp_path: Path) -> None:
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    target = tmp_path / "f.yaml"
    target.write_text("old")
    os.chmod(target, 0o640)
    atomic_write(target, "new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert os.listdir(tmp_path) == ["f.yaml"]
    with pytest.raises(IsADirectoryError):  # the temp file next to it is cleaned up
        atomic_write(tmp_path, "x")
    assert sorted(os.listdir(tmp_path.parent)) == ["home", "out"]
    created = tmp_path / "g.yaml"
    atomic_write(created, "x", mode=0o600)
    assert stat.S_IMODE(created.stat().st_mode) == 0o600
