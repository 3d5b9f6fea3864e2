from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from reconciler.yaml_source import YamlError, locate, parse_document


def test_go_scalar_typing() -> None:
    doc = parse_document(
        "a: yes\nb: 0755\nc: 1:20\nd: 2024-01-02\ne: '1'\nf: 1.5e+3\nh: ~\ni: 0x1F\n"
        "j: 1_000\nk: on\nl: .inf\nm: True\n"
    )
    assert doc == {
        "a": "yes", "b": 493, "c": "1:20", "d": datetime(2024, 1, 2, tzinfo=UTC), "e": "1",
        "f": 1500.0, "h": None, "i": 31, "j": 1000, "k": "on", "l": math.inf, "m": True,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "fragment", "line"),
    [
        ("a: 1\na: 2\n", "duplicate key 'a'", 2),
        ("1: x\n", "mapping keys must be strings", 1),
        ("a: [1\n", "did not find expected", 2),
    ],
)
def test_errors_have_positions(text: str, fragment: str, line: int) -> None:
    with pytest.raises(YamlError) as info:
        parse_document(text)
    assert fragment in info.value.message
    assert info.value.line == line


def test_alias_bomb_fails_fast() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(8):
        prev, cur = chr(97 + i), chr(98 + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    with pytest.raises(YamlError, match="expands to more than"):
        parse_document("\n".join(lines) + "\n")


def test_locate_value_and_key() -> None:
    text = "x:\n  y:\n    - a\n    - b: 1\n      c: 2\n"
    assert locate(text, ["x", "y", 1, "c"]) == (5, 10)
    assert locate(text, ["x", "y", 1, "c"], key=True) == (5, 7)
    assert locate(text, ["x", "missing"]) == (2, 3)


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(YamlError, match="recursive alias"):
        parse_document("a: &a [*a]\n")


def test_explicit_tags_and_merge_keys() -> None:
    doc = parse_document(
        "base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\ns: !!str 123\nf: !!float 1\n"
        "bin: !!binary aGk=\n"
    )
    assert doc["d"] == {"x": 1, "y": 3}
    assert doc["s"] == "123" and doc["f"] == 1.0 and doc["bin"] == "hi"
    with pytest.raises(YamlError, match="not a valid int"):
        parse_document("a: !!int abc\n")
    with pytest.raises(YamlError, match="unsupported tag"):
        parse_document("a: !custom x\n")


@pytest.mark.parametrize("text", ["0-0", "0+7", "0 5", "-0 5", "1\u0663", "0x 1", "0o-7"])
def test_plain_scalars_go_does_not_read_as_ints_stay_strings(text: str) -> None:
    # Go's strconv.ParseInt takes no blanks, no second sign and only ASCII digits.
    assert parse_document(f"k: {text}\n") == {"k": text}
