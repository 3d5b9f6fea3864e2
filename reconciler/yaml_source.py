"""Strict, fast YAML reading with the scalar typing that sops (go-yaml v3) uses.

Why not ``yaml.safe_load``: PyYAML resolves plain scalars with YAML 1.1 rules (``yes`` and
``on`` become booleans, ``0755`` an octal, ``1:20`` base-60). sops hashes unencrypted values
into its MAC after typing them the way go-yaml v3 does, so a reader that types differently
computes a different MAC; and users are surprised when ``country: no`` becomes ``False``.

What this module guarantees:

* Go/YAML 1.2 scalar typing (see :func:`resolve_plain`): only ``true``/``false`` (three
  spellings each) are booleans; ``null``/``~``/empty are null; integers as Go's
  ``strconv.ParseInt(s, 0, 64)``; floats by the YAML 1.2 core pattern plus ``.inf``/``.nan``;
  plain ``YYYY-M-D[Th:m:s[.f][zone]]`` are timestamps (aware :class:`datetime`, UTC when no
  zone is given). Quoted and block scalars are always strings.
* Duplicate mapping keys are errors; mapping keys must be strings.
* Anchors and aliases are bounded: a document whose alias-expanded size exceeds
  :data:`MAX_EXPANDED_NODES` fails fast (billion laughs), and recursive aliases are refused.
* A size limit per file (:data:`MAX_FILE_BYTES`).
* Messages quote the file's own text only in short excerpts, with anything secret-shaped
  cut out (:func:`reconciler.redaction.redact`): a syntax error never prints a credential.
* Speed: a file made only of the constructs sops writes (block mappings and sequences,
  plain scalars whose Go typing the YAML 1.2 core schema shares, simple quoted scalars,
  literal blocks) is parsed by ``yaml_rs`` (a Rust parser, several times faster); anything
  else, and anything ``yaml_rs`` refuses, is parsed by libyaml (``CParser``) with the typing
  above. :mod:`reconciler.yaml_fast` decides, before parsing, from the text; both paths give
  the same values and types (tests compare them on tricky inputs). No positions are kept:
  they are found lazily with :func:`locate`, which re-composes only a file that has a
  problem to report.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import yaml

# libyaml's parser, which every PyYAML wheel ships, is required: without it the import fails
# here rather than every run silently becoming many times slower.
from yaml import CSafeLoader as _BaseLoader

from reconciler.redaction import redact
from reconciler.yaml_fast import parse_fast

MAX_FILE_BYTES = 1024 * 1024
"""Largest manifest accepted (1 MiB); real manifests are a few KB."""

MAX_EXPANDED_NODES = 100_000
"""Largest document size after alias expansion, counted in nodes."""

PathElement = str | int
"""A mapping key or a sequence index."""


@dataclass(frozen=True, slots=True)
class YamlError(Exception):
    """A YAML document could not be read. ``line``/``column`` are 1-based where known.

    ``message`` is safe to print: secret-shaped text in it is redacted when the error is made.
    """

    message: str
    line: int | None = None
    column: int | None = None

    def __post_init__(self) -> None:
        # Every message passes here, whoever builds it (our checks or libyaml's problems).
        object.__setattr__(self, "message", redact(self.message))
        object.__setattr__(self, "args", (self.message, self.line, self.column))  # for pickle

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        return f"line {self.line}, column {self.column}: {self.message}"


_STR_TAG = "tag:yaml.org,2002:str"
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUES = frozenset({"true", "True", "TRUE"})
_FALSES = frozenset({"false", "False", "FALSE"})
_FLOAT_RE = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_INF_NAN = {
    ".inf": math.inf, ".Inf": math.inf, ".INF": math.inf,
    "+.inf": math.inf, "+.Inf": math.inf, "+.INF": math.inf,
    "-.inf": -math.inf, "-.Inf": -math.inf, "-.INF": -math.inf,
    ".nan": math.nan, ".NaN": math.nan, ".NAN": math.nan,
}  # fmt: skip
_MISSING = object()
_SPECIAL_PLAIN: dict[str, Any] = {
    **dict.fromkeys(_NULLS),
    **dict.fromkeys(_TRUES, True),
    **dict.fromkeys(_FALSES, False),
    **_INF_NAN,
}
"""Every plain scalar typed by its exact spelling, for one lookup instead of four."""
_INT_START = re.compile(r"^[-+]?[0-9]")
_TIMESTAMP_RE = re.compile(
    r"^(?P<y>[0-9]{4})-(?P<m>[0-9]{1,2})-(?P<d>[0-9]{1,2})"
    r"(?:(?:[Tt]|[ \t]+)(?P<H>[0-9]{1,2}):(?P<M>[0-9]{1,2}):(?P<S>[0-9]{1,2})"
    r"(?:\.(?P<f>[0-9]*))?"
    r"(?:[ \t]*(?P<tz>Z|[-+][0-9]{1,2}(?::?[0-9]{2})?))?)?$"
)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_BASES = {"x": 16, "o": 8, "b": 2}
_DIGITS = {
    16: re.compile(r"[0-9a-fA-F]+"),
    10: re.compile(r"[0-9]+"),
    8: re.compile(r"[0-7]+"),
    2: re.compile(r"[01]+"),
}


def _go_parse_int(text: str) -> int | None:
    """Go ``strconv.ParseInt(s, 0, 64)`` after removing underscores; None if not an int."""
    s = text.replace("_", "")
    if not _INT_START.match(s):
        return None
    sign = 1
    body = s
    if body[0] in "+-":
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    lower = body.lower()
    if lower.startswith(("0x", "0o", "0b")):
        digits, base = body[2:], _BASES[lower[1]]
    elif len(body) > 1 and body[0] == "0":
        digits, base = body[1:], 8  # Go keeps the C-style leading-zero octal
    else:
        digits, base = body, 10
    # Only the base's ASCII digits: Python's int() would also take blanks, a second sign
    # and other scripts' digits ("0 5", "0-7", "1\u0663"), which Go refuses (a string).
    if not _DIGITS[base].fullmatch(digits):
        return None
    value = sign * int(digits, base)
    if value < _INT64_MIN or value > 2**64 - 1:
        return None
    return value


def _parse_timestamp(text: str) -> datetime | None:
    m = _TIMESTAMP_RE.match(text)
    if not m:
        return None
    try:
        year, month, day = int(m["y"]), int(m["m"]), int(m["d"])
        if m["H"] is None:
            return datetime(year, month, day, tzinfo=UTC)
        frac = (m["f"] or "")[:6].ljust(6, "0")
        tz = UTC
        if m["tz"] and m["tz"] != "Z":
            raw = m["tz"]
            sign = -1 if raw[0] == "-" else 1
            digits = raw[1:].replace(":", "")
            hours = int(digits[:-2] if len(digits) > 2 else digits)
            minutes = int(digits[-2:]) if len(digits) > 2 else 0
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        return datetime(
            year, month, day, int(m["H"]), int(m["M"]), int(m["S"]), int(frac), tzinfo=tz
        )
    except ValueError:
        return None


def resolve_plain(text: str) -> Any:
    """Type a plain (unquoted, non-block) scalar the way go-yaml v3 does."""
    special = _SPECIAL_PLAIN.get(text, _MISSING)
    if special is not _MISSING:
        return special
    if text[:1] in "+-.0123456789":
        as_int = _go_parse_int(text)
        if as_int is not None:
            return as_int
        if _FLOAT_RE.match(text.replace("_", "")) and "_" not in text:
            return float(text)
        ts = _parse_timestamp(text)
        if ts is not None:
            return ts
    return text


_IMPLICIT_TAG = "tag:reconciler,2026:implicit"
"""Tag given to every scalar whose type comes from resolution (not from an explicit tag)."""
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


class _Composer(_BaseLoader):
    """libyaml parser and composer; tags every implicit scalar for :func:`_convert`."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode:
            if implicit[0] and value == "<<":
                return _MERGE_TAG
            # Plain scalars are typed by Go's rules in _scalar; quoted ones stay strings.
            return _IMPLICIT_TAG
        return _MAP_TAG if kind is yaml.MappingNode else _SEQ_TAG


def _excerpt(value: Any) -> str:
    """A short quotation of the file's own text for a message (secrets redacted)."""
    text = redact(value if isinstance(value, str) else repr(value))
    short = text if len(text) <= 40 else text[:37] + "..."
    return repr(short) if isinstance(value, str) else short


def _error(message: str, node: yaml.Node) -> YamlError:
    mark = node.start_mark
    return YamlError(message, mark.line + 1, mark.column + 1)


def _scalar(node: yaml.ScalarNode) -> Any:
    tag, value = node.tag, node.value
    if tag == _IMPLICIT_TAG:
        return value if node.style else resolve_plain(value)
    if tag == _STR_TAG:
        return value
    if tag == "tag:yaml.org,2002:binary":
        # sops turns !!binary into a string of the decoded bytes.
        try:
            raw = base64.b64decode("".join(value.split()), validate=True)
        except ValueError:
            raise _error("invalid !!binary value", node) from None
        return raw.decode("utf-8", errors="replace")
    typed = resolve_plain(value)
    expected = {
        "tag:yaml.org,2002:int": int,
        "tag:yaml.org,2002:float": float,
        "tag:yaml.org,2002:bool": bool,
        "tag:yaml.org,2002:null": type(None),
        "tag:yaml.org,2002:timestamp": datetime,
    }.get(tag)
    if expected is None:
        raise _error(f"unsupported tag {_excerpt(tag)}", node)
    if expected is float and isinstance(typed, int) and not isinstance(typed, bool):
        typed = float(typed)
    if not isinstance(typed, expected) or (expected is int and isinstance(typed, bool)):
        raise _error(f"{_excerpt(value)} is not a valid {tag.rsplit(':', 1)[-1]}", node)
    return typed


_ALIAS_SEEN = -1
"""Memo key (no node has id -1) set when an alias was followed."""


_ScalarNode = yaml.ScalarNode


def _convert(node: yaml.Node, memo: dict[int, Any]) -> Any:
    """Node tree -> Python values. Aliases (the same node twice) become shared objects."""
    # Hot loop (every node of every file): implicit scalars, by far the most common nodes,
    # are typed inline rather than through _scalar.
    if type(node) is _ScalarNode:
        if node.tag == _IMPLICIT_TAG:
            return node.value if node.style else resolve_plain(node.value)
        return _scalar(node)
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node)
    key = id(node)
    if key in memo:
        memo[_ALIAS_SEEN] = True
        return memo[key]
    if isinstance(node, yaml.SequenceNode):
        items: list[Any] = []
        memo[key] = items
        items.extend(
            (child.value if child.style else resolve_plain(child.value))
            if type(child) is _ScalarNode and child.tag == _IMPLICIT_TAG
            else _convert(child, memo)
            for child in node.value
        )
        return items
    mapping: dict[str, Any] = {}
    memo[key] = mapping
    merged: dict[str, Any] = {}
    for key_node, value_node in node.value:
        if type(key_node) is _ScalarNode and key_node.tag == _IMPLICIT_TAG:
            name = key_node.value if key_node.style else resolve_plain(key_node.value)
        elif key_node.tag == _MERGE_TAG:
            sources = (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
            for source in sources:
                value = _convert(source, memo)
                if not isinstance(value, dict):
                    raise _error("a merge key (<<) needs a mapping or a list of mappings", source)
                for k, v in value.items():
                    merged.setdefault(k, v)
            continue
        else:
            name = _convert(key_node, memo)
        if type(name) is not str and not isinstance(name, str):
            raise _error(f"mapping keys must be strings, found {_excerpt(name)}", key_node)
        # Only this loop fills ``mapping`` (merged keys come after), so it holds the keys seen.
        if name in mapping:
            raise _error(f"duplicate key {_excerpt(name)}", key_node)
        if type(value_node) is _ScalarNode and value_node.tag == _IMPLICIT_TAG:
            mapping[name] = (
                value_node.value if value_node.style else resolve_plain(value_node.value)
            )
        else:
            mapping[name] = _convert(value_node, memo)
    for k, v in merged.items():
        mapping.setdefault(k, v)
    return mapping


def _check_expansion(doc: Any) -> None:
    """Refuse recursive aliases and documents that expand past MAX_EXPANDED_NODES."""
    memo: dict[int, int] = {}
    active: set[int] = set()

    def size(obj: Any) -> int:
        if not isinstance(obj, dict | list):
            return 1
        key = id(obj)
        if key in memo:
            return memo[key]
        if key in active:
            raise YamlError("recursive alias: a node refers to itself")
        active.add(key)
        children = obj.values() if isinstance(obj, dict) else obj
        total = 1
        for child in children:
            total += size(child)
            if total > MAX_EXPANDED_NODES:
                raise YamlError(
                    f"document expands to more than {MAX_EXPANDED_NODES} nodes through aliases"
                )
        active.discard(key)
        memo[key] = total
        return total

    size(doc)


def _mark_error(exc: yaml.YAMLError) -> YamlError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    message = f"{context}: {problem}" if context and "duplicate" not in str(problem) else problem
    if mark is None:
        return YamlError(str(message))
    return YamlError(str(message), mark.line + 1, mark.column + 1)


def parse_documents(text: str | bytes) -> list[Any]:
    """Parse every document of a YAML stream with Go typing; raise :class:`YamlError`."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    if len(raw) > MAX_FILE_BYTES:
        # Readers stop at MAX_FILE_BYTES + 1 bytes, so the true size is not known here.
        raise YamlError(f"file is larger than 1 MiB; the limit is {MAX_FILE_BYTES} bytes")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    fast = parse_fast(raw, decoded)
    if fast is not None:
        return [fast]
    return _parse_reference(decoded)


def _parse_reference(decoded: str) -> list[Any]:
    """Every document of ``decoded`` through libyaml with the Go typing (the reference)."""
    composer = _Composer(decoded)
    try:
        docs: list[Any] = []
        aliased: list[Any] = []
        while composer.check_node():
            node = composer.get_node()
            memo: dict[int, Any] = {}
            docs.append(None if node is None else _convert(node, memo))
            if memo.get(_ALIAS_SEEN):
                aliased.append(docs[-1])
    except yaml.YAMLError as exc:
        raise _mark_error(exc) from None
    except RecursionError:
        raise YamlError("document is nested too deeply") from None
    finally:
        composer.dispose()
    # Without aliases a document is a tree no larger than the file: only aliased ones can
    # expand (billion laughs) or loop.
    for doc in aliased:
        _check_expansion(doc)
    return docs


def parse_document(text: str | bytes) -> Any:
    """Parse a single-document YAML file (empty file -> ``None``)."""
    docs = parse_documents(text)
    if len(docs) > 1:
        raise YamlError(f"expected one YAML document, found {len(docs)}")
    return docs[0] if docs else None


def locate(
    text: str | bytes, path: Sequence[PathElement], *, key: bool = False, document: int = 0
) -> tuple[int, int] | None:
    """1-based (line, column) of the node at ``path`` in ``document``.

    With ``key=True`` the position of the mapping *key* is returned (for "unknown field"
    errors). When the path does not exist the deepest existing ancestor's position is
    returned, which is where a missing field belongs. ``None`` if the text does not parse.
    """
    decoded = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
    try:
        nodes = list(yaml.compose_all(decoded, Loader=_BaseLoader))
    except yaml.YAMLError:
        return None
    if document >= len(nodes) or nodes[document] is None:
        return None
    node: yaml.Node = nodes[document]
    mark = node.start_mark
    for element in path:
        nxt: yaml.Node | None = None
        key_mark = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(element):
                    nxt, key_mark = v, k.start_mark
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(element, int)
            and 0 <= element < len(node.value)
        ):
            nxt = node.value[element]
        if nxt is None:
            break
        node = nxt
        mark = key_mark if key and key_mark is not None else node.start_mark
        if key and key_mark is not None and element is path[-1]:
            mark = key_mark
        elif element is not path[-1] or not key:
            mark = node.start_mark
    return mark.line + 1, mark.column + 1


def format_path(path: Sequence[PathElement]) -> str:
    """``environments.production.webhooks.billing.events[2]`` from a path tuple."""
    out = ""
    for element in path:
        if isinstance(element, int):
            out += f"[{element}]"
        else:
            out += f".{element}" if out else str(element)
    return out
