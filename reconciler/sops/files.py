"""Reading and writing the file formats SOPS stores: YAML, JSON, and dotenv (read only).

YAML is read with :func:`reconciler.yaml_source.parse_documents`, whose go-yaml v3
scalar typing is what sops hashes into its MAC. YAML is written by a small block emitter
that lays files out as sops does (4-space indentation, list items indented under their key,
``sops:`` last, multi-line strings as literal blocks) and quotes every string that a Go or a
YAML 1.1 reader would otherwise type as something else, so values read back with the type
they were written with. Floats are written so that they read back as floats (``10.0``, not
``10`` as ``sops decrypt`` prints). YAML comments are not preserved: PyYAML drops them.

JSON is written with tab indentation like sops. Files are written with
:func:`reconciler.files.atomic_write`.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import math
import os
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal

import yaml

from reconciler.errors import ConfigError
from reconciler.sops.codec import Comment, format_time, to_bytes
from reconciler.yaml_source import YamlError, parse_documents, resolve_plain

FileFormat = Literal["yaml", "json", "dotenv"]
FORMATS: Final[tuple[FileFormat, ...]] = ("yaml", "json", "dotenv")
INDENT: Final = 4

_EXTENSIONS: Final[dict[str, FileFormat]] = {
    ".yaml": "yaml",
    ".yml": "yaml",
    ".json": "json",
    ".env": "dotenv",
}


def detect_format(path: str | os.PathLike[str], explicit: str | None = None) -> FileFormat:
    """The format of a file: ``explicit`` if given, else from the extension (YAML otherwise)."""
    if explicit:
        if explicit not in FORMATS:
            raise ConfigError(f"unknown file type {explicit!r}; use one of {', '.join(FORMATS)}")
        return explicit
    return _EXTENSIONS.get(Path(path).suffix.lower(), "yaml")


# --- reading ---------------------------------------------------------------------------


def parse_text(text: str | bytes, fmt: FileFormat, *, source: str) -> list[Any]:
    """Parse a file's text into its documents (a JSON or dotenv file has one).

    Raises:
        ConfigError: the text is not valid in that format.
    """
    if fmt == "yaml":
        try:
            return parse_documents(text)
        except YamlError as exc:
            raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    decoded = text.decode("utf-8") if isinstance(text, bytes) else text
    if fmt == "json":
        return [parse_json(decoded, source=source)]
    return [parse_dotenv(decoded, source=source)]


def parse_json(text: str, *, source: str) -> Any:
    """Parse JSON strictly: no duplicate keys, no NaN/Infinity.

    Integers beyond 2**53 become floats, as Go's ``encoding/json`` reads them into a
    ``float64``; that keeps the MAC of sops-written files right.
    """

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise ConfigError(f"{source}: duplicate key {key!r}")
            out[key] = value
        return out

    def constant(name: str) -> Any:
        raise ConfigError(f"{source}: {name} is not valid JSON")

    def integer(digits: str) -> int | float:
        number = int(digits)
        return number if abs(number) <= 2**53 else float(number)

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant, parse_int=integer)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: invalid JSON: line {exc.lineno}: {exc.msg}") from None


def parse_dotenv(text: str, *, source: str) -> dict[str, Any]:
    """Parse a sops dotenv file: ``KEY=VALUE`` lines, metadata flattened into ``sops_*`` keys."""
    data: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = raw.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{source}: line {number} is not KEY=VALUE")
        key = key.strip()
        if key.startswith("sops_"):
            _unflatten(metadata, key[len("sops_") :], value.replace("\\n", "\n"), source)
        else:
            data[key] = value
    if metadata:
        for name in ("shamir_threshold",):
            if isinstance(metadata.get(name), str) and metadata[name].isdigit():
                metadata[name] = int(metadata[name])
        if "mac_only_encrypted" in metadata:
            metadata["mac_only_encrypted"] = metadata["mac_only_encrypted"] == "true"
        data["sops"] = metadata
    return data


_FLAT_STEP: Final = re.compile(r"^(list|map)_(.+)$")


def _unflatten(root: dict[str, Any], flat_key: str, value: str, source: str) -> None:
    """Set ``age__list_0__map_enc`` (sops ``stores/flatten.go``) inside ``root``."""
    first, *steps = flat_key.split("__")
    path: list[str | int] = [first]
    for step in steps:
        match = _FLAT_STEP.match(step)
        if match is None or (match[1] == "list" and not match[2].isdigit()):
            raise ConfigError(f"{source}: cannot read metadata key sops_{flat_key}")
        path.append(int(match[2]) if match[1] == "list" else match[2])
    node: Any = root
    for element, following in zip(path, [*path[1:], None], strict=True):
        container: Any = value if following is None else ([] if isinstance(following, int) else {})
        if isinstance(element, int):
            while len(node) <= element:
                node.append(None)
            if node[element] is None:
                node[element] = container
            node = node[element]
        else:
            node = node.setdefault(element, container)


# --- writing ---------------------------------------------------------------------------


def dump(documents: list[Any], fmt: FileFormat, *, source: str) -> str:
    """Serialize documents in a format.

    Raises:
        ConfigError: the content cannot be written in that format (several documents in
            JSON, non-finite floats in JSON, nested values in dotenv).
    """
    if fmt == "yaml":
        return dump_yaml(documents)
    if len(documents) != 1:
        raise ConfigError(f"{source}: {len(documents)} YAML documents cannot be written as {fmt}")
    if fmt == "json":
        return dump_json(documents[0], source=source)
    return dump_dotenv(documents[0], source=source)


def dump_json(document: Any, *, source: str) -> str:
    """JSON with tab indentation and a final newline, as sops writes it."""

    def default(value: Any) -> Any:
        if isinstance(value, datetime):
            return format_time(value)
        if isinstance(value, bytes):
            return base64.b64encode(value).decode("ascii")
        raise TypeError(type(value).__name__)

    try:
        return (
            json.dumps(document, indent="\t", ensure_ascii=False, allow_nan=False, default=default)
            + "\n"
        )
    except ValueError:
        raise ConfigError(f"{source}: NaN and infinite numbers cannot be written as JSON") from None


def dump_dotenv(document: Any, *, source: str) -> str:
    """``KEY=value`` lines; newlines in values are written as ``\\n``."""
    lines = []
    for key, value in document.items():
        if isinstance(value, dict | list):
            raise ConfigError(f"{source}: {key} is nested and cannot be written as dotenv")
        text = "" if value is None else to_bytes(value).decode("utf-8", errors="replace")
        lines.append(f"{key}={text}".replace("\n", "\\n"))
    return "".join(line + "\n" for line in lines)


def dump_yaml(documents: Iterable[Any]) -> str:
    """YAML the way sops lays it out; several documents are separated by ``---``."""
    parts = []
    for document in documents:
        lines: list[str] = []
        if isinstance(document, dict) and document:
            _mapping(document, 0, 0, lines, None)
        elif isinstance(document, list) and document:
            _sequence(document, 0, lines)
        else:
            head, block = _scalar(document, INDENT)
            lines.append(head)
            lines.extend(block)
        parts.append("".join(line + "\n" for line in lines))
    return "---\n".join(parts)


def _mapping(
    node: dict[str, Any], indent: int, column: int, out: list[str], lead: str | None
) -> None:
    """Keys at ``column``; children at ``indent + 4`` (go-yaml's layout for compact items)."""
    for key, value in node.items():
        start = lead if lead is not None else " " * column
        lead = None
        name = _key(key)
        if isinstance(value, dict) and value:
            out.append(f"{start}{name}:")
            _mapping(value, indent + INDENT, indent + INDENT, out, None)
        elif isinstance(value, list) and value:
            out.append(f"{start}{name}:")
            _sequence(value, indent + INDENT, out)
        else:
            head, block = _scalar(value, indent + INDENT)
            out.append(f"{start}{name}: {head}")
            out.extend(block)


def _sequence(node: list[Any], indent: int, out: list[str]) -> None:
    for item in node:
        lead = " " * indent + "- "
        if isinstance(item, dict) and item:
            _mapping(item, indent, indent + 2, out, lead)
        elif isinstance(item, list) and item:
            inner: list[str] = []
            _sequence(item, indent + 2, inner)
            inner[0] = lead + inner[0][indent + 2 :]
            out.extend(inner)
        else:
            head, block = _scalar(item, indent + INDENT)
            out.append(f"{lead}{head}")
            out.extend(block)


_ANALYZER = yaml.emitter.Emitter(io.StringIO(), allow_unicode=True)
_RESOLVER = yaml.resolver.Resolver()
_STR_TAG: Final = "tag:yaml.org,2002:str"
# go-yaml quotes every YAML 1.1 boolean spelling, including y/n, which PyYAML's resolver lacks.
_YAML11_BOOLS: Final = frozenset(
    [
        "y",
        "Y",
        "yes",
        "Yes",
        "YES",
        "n",
        "N",
        "no",
        "No",
        "NO",
        "true",
        "True",
        "TRUE",
        "false",
        "False",
        "FALSE",
        "on",
        "On",
        "ON",
        "off",
        "Off",
        "OFF",
    ]
)
_ESCAPES: Final = {
    "\0": "\\0", "\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v",
    "\f": "\\f", "\r": "\\r", "\x1b": "\\e", '"': '\\"', "\\": "\\\\", "\x85": "\\N",
    "\xa0": "\\_", "\u2028": "\\L", "\u2029": "\\P",
}  # fmt: skip


# An ENC[...] value (base64 fields only) is always a plain scalar; checking it with the
# emitter's analysis is the slowest part of writing a file, so it is recognized directly.
_ENC_PLAIN: Final = re.compile(
    r"ENC\[AES256_GCM,data:[A-Za-z0-9+/=]*,iv:[A-Za-z0-9+/=]+,tag:[A-Za-z0-9+/=]+,type:[a-z]+\]"
)


def _plain_ok(text: str) -> bool:
    """True when ``text`` can be written unquoted and reads back as the same string."""
    if "\n" in text:
        return False  # a multi-line plain scalar would be folded into one line
    if _ENC_PLAIN.fullmatch(text):
        return True
    return _plain_ok_cached(text) if len(text) <= 200 else _plain_ok_uncached(text)


def _plain_ok_uncached(text: str) -> bool:
    if not text or text == "<<" or text in _YAML11_BOOLS:
        return False
    if not isinstance(resolve_plain(text), str):  # Go typing (what sops and we read)
        return False
    resolved = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    if resolved != _STR_TAG:  # a YAML 1.1 reader would type it otherwise
        return False
    analysis = _ANALYZER.analyze_scalar(text)
    return bool(analysis.allow_block_plain and not analysis.multiline)


_plain_ok_cached = functools.lru_cache(maxsize=8192)(_plain_ok_uncached)


def _double_quoted(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char.isprintable() and char not in "\ufeff":
            out.append(char)
        elif ord(char) <= 0xFF:
            out.append(f"\\x{ord(char):02X}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(f"\\U{ord(char):08X}")
    return '"' + "".join(out) + '"'


def _literal(text: str, indent: int) -> tuple[str, list[str]] | None:
    """A ``|`` block for a multi-line string, or None when a block could not hold it."""
    if "\r" in text or not text.replace("\n", "").replace("\t", "").isprintable():
        return None
    if text.endswith("\n\n"):
        chomp, body = "+", text[:-1]
    elif text.endswith("\n"):
        chomp, body = "", text[:-1]
    else:
        chomp, body = "-", text
    lines = body.split("\n")
    first = next((line for line in lines if line), "")
    if not first or first[0] in " \t" or any(line != line.rstrip(" \t") for line in lines):
        return None
    pad = " " * indent
    return "|" + chomp, [pad + line if line else "" for line in lines]


def _string(text: str, indent: int) -> tuple[str, list[str]]:
    if _plain_ok(text):
        return text, []
    if "\n" in text:
        block = _literal(text, indent)
        if block is not None:
            return block
    return _double_quoted(text), []


def _key(key: Any) -> str:
    text = str(key)
    return text if _plain_ok(text) else _double_quoted(text)


def _scalar(value: Any, indent: int) -> tuple[str, list[str]]:
    """The text of a scalar (or empty collection) and any block lines that follow it."""
    if value is None:
        return "null", []
    if isinstance(value, bool):
        return ("true" if value else "false"), []
    if isinstance(value, int):
        return str(value), []
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan", []
        if math.isinf(value):
            return (".inf" if value > 0 else "-.inf"), []
        return repr(value), []  # shortest round-trip; always reads back as a float
    if isinstance(value, datetime):
        return format_time(value), []
    if isinstance(value, str):
        return _string(value, indent)
    if isinstance(value, bytes):
        return "!!binary " + base64.b64encode(value).decode("ascii"), []
    if isinstance(value, Comment):
        return _string(value.text, indent)
    if isinstance(value, dict):
        return "{}", []
    if isinstance(value, list):
        return "[]", []
    raise ConfigError(f"cannot write a value of type {type(value).__name__} as YAML")
