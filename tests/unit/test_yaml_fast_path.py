"""The fast YAML path (``yaml_rs``) reads every file exactly as the reference path (libyaml
with sops's Go typing) does, or leaves the file to it: same values, same types, same key
order, same errors."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import yaml_fast, yaml_source
from reconciler.yaml_source import YamlError, parse_documents

ROOT = Path(__file__).resolve().parents[2]


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same types, dict key order included (``nan`` equals ``nan``)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        both_nan = math.isnan(a) and math.isnan(b)
        return both_nan or (a == b and math.copysign(1, a) == math.copysign(1, b))
    return bool(a == b)


def _reference(text: str) -> list[Any] | YamlError:
    try:
        return yaml_source._parse_reference(text)
    except YamlError as exc:
        return exc


def _check(text: str) -> bool:
    """Assert both paths agree on ``text``; True when the fast path read it."""
    expected = _reference(text)
    raw = text.encode()
    fast = yaml_fast.parse_fast(raw, text)
    if fast is not None:
        assert not isinstance(expected, YamlError), f"fast path accepted a bad file: {text!r}"
        assert _same([fast], expected), f"{text!r}: {fast!r} != {expected!r}"
    try:
        got: list[Any] | YamlError = parse_documents(raw)
    except YamlError as exc:
        got = exc
    if isinstance(expected, YamlError):
        assert isinstance(got, YamlError)
        assert (got.message, got.line, got.column) == (
            expected.message,
            expected.line,
            expected.column,
        )
    else:
        assert not isinstance(got, YamlError)
        assert _same(got, expected), f"{text!r}: {got!r} != {expected!r}"
    return fast is not None


SOPS_STYLE = """\
apiVersion: reconciler/v1
tenant: acme
platform: QUICKBOOKS
environments:
    production:
        integrations:
            OAUTH:
                primary: true
                api_key: ENC[AES256_GCM,data:Pky70w==,iv:m7GYn,tag:MKE87R==,type:str]
                sync:
                    interval_minutes: 30
                    ratio: 0.5
                    direction: OUTBOUND
                features: {}
                none:
        oauth_accounts:
            - realm_id: "4000000000000001"
              note: 'it''s'
            - realm_id: '12'
sops:
    age:
        - recipient: age18cl5m37sjcx7hyj97x7ytv7qfgnma6sgz9au7r9nlfnez66qcfeq7hq0aj
          enc: |
            -----BEGIN AGE ENCRYPTED FILE-----
            YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBubkFaQlJOZXR0ODc5WERt
            -----END AGE ENCRYPTED FILE-----
    lastmodified: "2026-12-02T02:06:41Z"
    mac: ENC[AES256_GCM,data:jYqTa/f+WbOV,iv:sqqRt/9hCXIJvV==,tag:+E9kCGJ3niR4MZQxoTCZSQ==,type:str]
    encrypted_regex: ^(api_key|api_secret|signing_secret)$
    mac_only_encrypted: true
    version: 3.11.0
"""


def test_a_sops_written_file_takes_the_fast_path() -> None:
    assert _check(SOPS_STYLE)


# Each is a value that the reference path types by Go's rules; the fast path must either
# type it the same or leave the file to the reference path.
SCALARS = [
    "010", "-010", "08", "0o17", "0O17", "0o19", "0x1F", "0X1f", "+0x1F", "0xG", "0x_1F",
    "0b101", "-0b1", "0b2", "1_000", "1__0", "1_0.5", ".1_0", "1e1_0", "+5", "-5", "+0", "-0",
    "00", "0", "0.", "0.0", "-0.0", "1.", "1.5", ".5", "-.5", "+.5", "+1.5", "1e3", "1E3",
    "1e+3", "1e-3", "1e308", "1e400", "-1e400", "12e", "1.2.3", "1:20", "190:20:30",
    "9223372036854775807", "9223372036854775808", "-9223372036854775808",
    "-9223372036854775809", "18446744073709551615", "18446744073709551616",
    "true", "True", "TRUE", "tRue", "false", "False", "FALSE", "yes", "no", "on", "off",
    "y", "n", "Yes", "~", "null", "Null", "NULL", "nULL", "", ".inf", ".Inf", ".INF",
    ".INf", "+.inf", "-.inf", "-.Inf", ".nan", ".NaN", ".NAN", ".Nan", "NaN", "inf",
    "2001-12-14", "2001-1-4", "2001-12-14T21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5",
    "2001-12-14t21:59:43Z", "2001-12-14T21:59:43", "20011214", "12:30:45", "=", "-", "+",
    ".", "a b", "x#y", "x # comment", "'1'", '"1"', "'true'", '"0x1F"', "'2001-12-14'",
    '"a\\tb"', '"\\u00e9"', '"\\x41"', "'it''s'", '"it\'s"', "!!str 1", "!!int '3'",
    "!!float 1", "!!binary aGk=", "&a 1", "*a", "[1, 2]", "{a: 1}", "[]", "{}", "|\n  x\n",
    "|-\n  x\n  y\n", "|+\n  x\n\n", "|2\n   x\n", ">\n  x\n  y\n", ">-\n  x\n\n  y\n",
    "a\n  continued", "'multi\n  line'", '"multi\n  line"', "é", "ünïcode: ok", "x: y",
    "@x", "`x", "%x", "? x", "a - b", "- x", "-x", "--- x", "...", "0-0", "0+7", "0 5",
    "-0 5", "0 # zero", "0.5 6", "1 5", "_0", "_1_", "+_1", "1\u0663", "\u0661", "1e_5",
]  # fmt: skip


@pytest.mark.parametrize("scalar", SCALARS)
def test_scalar_as_value_key_and_item(scalar: str) -> None:
    _check(f"k: {scalar}\n")
    _check(f"list:\n  - {scalar}\n  - other\n")
    _check(f"outer:\n    {scalar}: 1\n")
    _check(f"{scalar}\n")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment\n",
        "a: 1\na: 2\n",
        "a: 1\n'a': 2\n",
        'a: 1\n"a": 2\n',
        "1: x\n",
        "true: x\n",
        "~: x\n",
        ": x\n",
        "a: 1\n---\nb: 2\n",
        "---\na: 1\n",
        "a: 1\n...\n",
        "%YAML 1.2\n---\na: 1\n",
        "a: &x 1\nb: *x\n",
        "base: &b\n  x: 1\nderived:\n  <<: *b\n  y: 2\n",
        "a:\n\t- x\n",
        "a: 1\r\nb: 2\r\n",
        "\ufeffa: 1\n",
        "a: b: c\n",
        "a: [1\n",
        "- a\n- b\n",
        "- - - x\n",
        "a:\n  - - x\n",
        "a:\n  - b: 1\n    c:\n      - d\n",
        "a: x\u2028y\n",
        "a: x\x85y\n",
        "b: 1\na: 2\nc: 3\n",
        "a:\n  b:\n    c:\n      d: [x]\n",
        "a: 'x\ny'\n",
        'a: "x\\\ny"\n',
        "a: x\n\n  y\n",
        "a: |\n  x\n\n  y\n\n\nb: 1\n",
        "a: |\n",
        "a: |-\n",
        "a: |\nb: 1\n",
        "a: |\n\n  x\n",
        "a:\n  b: |\n  c: 1\n",
        "a:\n  - b: |\n     x\n",
        "- |\n  x\n- |\n",
        "a: x |\n  y\n",
        "a: |  # comment\n  x\n",
        "a: |-\n\n  x\n",
        'a: "it\'s"\nb: \'say "x"\'\n',
        "a: it's\n",
        "a: x\n# it's\n",
        "a: 'x' # it's\n",
    ],
)
def test_documents(text: str) -> None:
    _check(text)


@pytest.mark.parametrize(
    "text",
    [
        "# the app's key\na: 1\n",
        "a: 1\n    # it's here\nb: 'x'\n",
        "a: |\n  # it's\n  y\nb: 2\n",
    ],
)
def test_apostrophes_in_comments_keep_the_fast_path(text: str) -> None:
    assert _check(text)


@pytest.mark.parametrize(
    "text",
    [
        "a: 'x\n  # y'\n",
        'a: "x\n# y"\n',
        "a: |\n  it's\n",
        "a: x # it's\n",
    ],
)
def test_quotes_open_across_lines_leave_the_fast_path(text: str) -> None:
    assert not _check(text)


def test_deep_compact_nesting_stays_on_the_reference_path() -> None:
    # yaml_rs recurses once per level and would overflow the stack (a crash, not an error).
    with pytest.raises(YamlError, match="nest"):
        parse_documents("- " * 200_000 + "x\n")


def test_deep_indented_nesting_agrees() -> None:
    _check("".join(" " * i + "k:\n" for i in range(1200)) + " " * 1200 + "k: 1\n")


def _fixture_files() -> list[Path]:
    found = [p for d in ("tests/fixtures", "examples", "manifests") for p in (ROOT / d).rglob("*")]
    return sorted(p for p in found if p.suffix in (".yaml", ".yml") and p.is_file())


def test_every_fixture_and_example_reads_the_same() -> None:
    files = _fixture_files()
    assert len(files) > 40
    fast = 0
    for path in files:
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        fast += _check(text)
    assert fast > len(files) // 2  # the fast path is taken by the ordinary files


_PLAIN = st.sampled_from([s for s in SCALARS if "\n" not in s and not s.startswith(("|", ">"))])
_WORD = st.text(alphabet="abcxyz01239_-.:'\" #!&*[]{}<>?|%@`,", min_size=0, max_size=8)
_SCALAR = st.one_of(_PLAIN, _WORD)
_KEY = st.one_of(st.sampled_from(["a", "b", "a b", "'q'", '"d"', "1", "x_y", "true"]), _WORD)


def _block(node: Any, indent: int) -> str:
    pad = " " * indent
    if isinstance(node, dict):
        out = ""
        for key, value in node.items():
            if isinstance(value, dict | list) and value:
                out += f"{pad}{key}:\n{_block(value, indent + 2)}"
            else:
                out += f"{pad}{key}: {value if not isinstance(value, dict | list) else '{}'}\n"
        return out
    out = ""
    for item in node:
        if isinstance(item, dict | list) and item:
            out += f"{pad}-\n{_block(item, indent + 2)}"
        else:
            out += f"{pad}- {item if not isinstance(item, dict | list) else '[]'}\n"
    return out


_TREE = st.recursive(
    _SCALAR,
    lambda children: st.one_of(
        st.dictionaries(_KEY, children, min_size=1, max_size=4),
        st.lists(children, min_size=1, max_size=3),
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_KEY, _TREE, min_size=1, max_size=4))
def test_generated_documents_read_the_same(doc: dict[str, Any]) -> None:
    _check(_block(doc, 0))


# Documents most of which the fast path reads: words of number-like characters, literal
# blocks, quoted scalars.
_NUMBERISH = st.text(alphabet="abeEnx0179-+.", min_size=0, max_size=6)
_BLOCKS = st.sampled_from(
    ["|", "|-", "|\n  x", "|-\n  x\n  y", "|\n\n  x", "|\n   x\n  y", "'a''b'", '"q x"']
)
_FAST_TREE = st.recursive(
    st.one_of(_NUMBERISH, _BLOCKS, _PLAIN),
    lambda children: st.one_of(
        st.dictionaries(st.text(alphabet="abx01", min_size=1, max_size=4), children, max_size=4),
        st.lists(children, min_size=1, max_size=3),
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b", "c d", "'q'"]), _FAST_TREE, min_size=1))
def test_generated_plain_documents_read_the_same(doc: dict[str, Any]) -> None:
    _check(_block(doc, 0))


# The screen's token search as Python's ``re`` wrote it before RE2, with lookarounds, over
# the text with each indentation shortened to one blank: the RE2 automaton must refuse
# exactly the same texts.
_INDENT = re.compile(r"\n +")
_LOOKAROUND_SCREEN = re.compile(
    r"[ \n](?=[-+._0-9!&*\[{>?:|<%])(?:"
    r"(?<=\n)(?:---|\.\.\.|%)|<<|"
    r"-[ ]+-(?:[ \n]|$)"
    r"|[!&*>]|\[(?!\](?:[ \n]|$))|\{(?!\}(?:[ \n]|$))|[?:](?:[ \n]|$)"
    r"|\|(?!-?[ ]*(?:#[^\n]*)?\n)"
    r"|(?=[-+._0-9])[-+.0-9A-Za-z]*_"
    r"|[-+]?(?:0(?!\.|[ ]*(?:#|\n|$))|[0-9]{4}-|[0-9]{19}"
    r"|\.?[0-9][0-9.]*[eE][-+]?[0-9]{3}|\.(?i:inf|nan))"
    r")"
)


def _refused_by_lookarounds(text: str) -> bool:
    return _LOOKAROUND_SCREEN.search(_INDENT.sub("\n ", "\n" + text)) is not None


def _refused_by_re2(text: str) -> bool:
    return yaml_fast._ODD_TOKENS.search(text.encode()) is not None


# Token soup: every character either search looks at, in runs the alternatives care about.
_SOUP = st.lists(
    st.sampled_from(
        [
            " ",
            "  ",
            "\n",
            "\n  ",
            "-",
            "- ",
            "--",
            "---",
            "...",
            "%",
            "<<",
            "<",
            "!",
            "&",
            "*",
            ">",
            "[",
            "]",
            "[]",
            "{",
            "}",
            "{}",
            "?",
            ":",
            ": ",
            "|",
            "|-",
            "| ",
            "#",
            "# c",
            "_",
            "0",
            "00",
            "0.",
            "0 ",
            "0x1",
            "1",
            "1e",
            "1e100",
            "1234-",
            "9" * 19,
            ".",
            ".inf",
            ".NaN",
            "+",
            "+0",
            "a",
            "key",
            "'",
            '"',
            "\\",
        ]
    ),
    max_size=14,
).map("".join)


@settings(max_examples=3000, deadline=None)
@given(_SOUP)
def test_the_re2_screen_refuses_what_the_lookaround_screen_refused(text: str) -> None:
    assert _refused_by_re2(text) == _refused_by_lookarounds(text), repr(text)


@pytest.mark.parametrize(
    "text",
    [
        "a: [\n",
        "a: []",
        "a: [] ",
        "a: []x",
        "a: {}\n",
        "a: |",
        "a: |\n",
        "a: |-  # c\n",
        "a: |  #c",
        "a: |x\n",
        "a: | -\n",
        "a: 0",
        "a: 0 \n",
        "a: 0 # c\n",
        "a: 0 x\n",
        "a: 0.5\n",
        "---\na: 1\n",
        "  ---\n",
        "a:\n  - - x\n",
        "a: 1e100\n",
        "a: .Inf\n",
    ],
)
def test_the_re2_screen_on_edges(text: str) -> None:
    assert _refused_by_re2(text) == _refused_by_lookarounds(text)
