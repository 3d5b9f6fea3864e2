"""``reconciler fmt``: one canonical layout for manifests and templates.

The layout is the one sops writes, so encrypted files are already in it:

* 4-space indentation; list items indented under their key (``key:`` / ``    - item``);
* block style for every non-empty mapping and list (flow ``{a: 1}`` / ``[1, 2]`` become
  blocks; empty ``{}`` and ``[]`` stay);
* strings unquoted when that reads back as the same string (under go-yaml v3 typing, what
  sops and the loader use, and under YAML 1.1, what other tools use), otherwise in double
  quotes; multi-line strings as ``|`` literal blocks; plain scalars (numbers, booleans,
  dates, unquoted words) are kept exactly as written;
* no line wrapping; comments and blank lines kept; one ``---`` between documents.

Formatting never changes meaning: every result is parsed again and compared with the
original, value by value, type by type and in order, and a file where they would differ is
reported and left alone. So values and key order never move, and an encrypted file stays
valid without the key: its ``ENC[...]`` values, ``sops`` block and MAC are values like any
other, untouched.

Uses ruamel.yaml's round-trip mode (it keeps comments), with implicit typing switched off so
that it never reinterprets a plain scalar; quoting decisions are made here, with the same
rules as the SOPS writer (:mod:`reconciler.sops.files`).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.compat import ordereddict
from ruamel.yaml.error import YAMLError as RuamelError
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    ScalarString,
)

from reconciler.errors import ConfigError
from reconciler.files import expand_paths, read_text
from reconciler.sops.files import _literal, _plain_ok
from reconciler.sops.roundtrip import _same
from reconciler.yaml_source import YamlError, parse_documents

SUFFIXES: Final = (".yaml", ".yml")
_SKIP_DIRS: Final = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".ci-venv"})
_SKIP_FILES: Final = frozenset({".sops.yaml", ".sops.yml", ".pre-commit-hooks.yaml"})


class _Untyped(VersionedResolver):
    """No implicit typing: every plain scalar is loaded as the string it is written as."""

    @property
    def versioned_resolver(self) -> Any:
        return {}


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.Resolver = _Untyped
    yaml.preserve_quotes = True
    yaml.indent(mapping=4, sequence=6, offset=4)
    yaml.width = 1_000_000
    yaml.allow_unicode = True
    # A null is written as it is most often written in manifests: nothing (``key:``).
    yaml.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:str", "")
    )
    return yaml


@dataclass(frozen=True, slots=True)
class Formatted:
    """One file's result: ``changed`` when ``text`` differs from the file."""

    path: Path
    changed: bool
    text: str


def format_text(text: str, *, source: str) -> str:
    """The canonical layout of a YAML text (see the module docstring).

    Raises:
        ConfigError: the text is not valid YAML, or formatting it would change its meaning.
    """
    try:
        expected = parse_documents(text)
    except YamlError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    yaml = _yaml()
    try:
        documents = list(yaml.load_all(text))
    except RuamelError as exc:
        raise ConfigError(f"{source}: cannot format: {exc}") from None
    for document in documents:
        _canonical(document)
    yaml.explicit_start = len(documents) > 1
    out = io.StringIO()
    try:
        yaml.dump_all(documents, out)
    except RuamelError as exc:
        raise ConfigError(f"{source}: cannot format: {exc}") from None
    result = _item_blocks_like_sops(out.getvalue())
    if len(documents) > 1 and result.startswith("---\n"):
        result = result[len("---\n") :]
    try:
        same = _same(parse_documents(result), expected)
    except YamlError:
        same = False
    if not same:
        raise ConfigError(
            f"{source}: cannot be formatted without changing its meaning; left as it is"
        )
    return result


_KEY_LINE: Final = re.compile(
    r"^(?P<dash>(?:- )*)[^#\s][^#]*?:(?P<block>\s*[|>][-+0-9]*)?\s*(?:#.*)?$"
)


def _item_blocks_like_sops(text: str) -> str:
    """Indent what is under a key of a list-item mapping as sops (go-yaml) does.

    ruamel indents a key's nested mapping, list or ``|`` block 4 columns past the key;
    go-yaml indents it 4 past the mapping's own indentation, which for a mapping that is a
    list item (``- key:``) is the dash's column: 2 columns less. Without this every encrypted
    file would change under ``fmt`` (its ``enc: |`` age blocks are in such items) and back
    again under sops.
    """
    lines = text.split("\n")
    out: list[str] = []
    comments: list[int] = []  # indexes in out of whole-line comments (not block content)
    shifted: list[int] = []  # key columns (as ruamel wrote them) whose subtree moves left by 2
    block_from: int | None = None  # inside a block scalar: its lines are indented this far
    for number, line in enumerate(lines):
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        if not stripped:
            out.append(line)
            continue
        if block_from is not None:
            if indent >= block_from:
                out.append(line[2 * len(shifted) :])
                continue
            block_from = None
        if stripped.startswith("#"):
            comments.append(len(out))
            out.append(stripped)
            continue
        while shifted and shifted[-1] >= indent:
            shifted.pop()
        out.append(line[2 * len(shifted) :])
        match = _KEY_LINE.match(stripped)
        if match is None:
            continue
        key_column = indent + len(match["dash"])
        if match["block"]:
            block_from = key_column + 1
        if match["dash"] or _in_item(lines[:number], key_column):
            shifted.append(key_column)
    _align_comments(out, comments)
    return "\n".join(out)


def _align_comments(lines: list[str], comments: list[int]) -> None:
    """Indent each whole-line comment like the line it precedes (ruamel keeps the column
    the comment had, which no longer fits once the lines around it moved)."""
    is_comment = set(comments)
    for index in reversed(comments):
        following = next(
            (
                line
                for number, line in enumerate(lines[index + 1 :], start=index + 1)
                if line.strip() and number not in is_comment
            ),
            "",
        )
        indent = len(following) - len(following.lstrip(" "))
        lines[index] = " " * indent + lines[index]


def _in_item(previous: list[str], column: int) -> bool:
    """True when the key at ``column`` belongs to a mapping that starts on a ``- `` line."""
    for line in reversed(previous):
        stripped = line.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(stripped)
        if indent > column:
            continue  # deeper: a sibling's value
        if indent == column:
            continue  # a sibling key of the same mapping
        rest = stripped
        position = indent
        while rest.startswith("- "):
            rest = rest[2:]
            position += 2
        return position == column and position != indent
    return False


def _canonical(node: Any) -> Any:
    """Set the canonical style of ``node`` and everything under it, in place."""
    if isinstance(node, CommentedMap):
        if len(node):
            node.fa.set_block_style()
        for key in list(node):
            # not node[key] = ...: ruamel would keep the old quoting of a string value
            ordereddict.__setitem__(node, key, _canonical(node[key]))
        return node
    if isinstance(node, CommentedSeq):
        if len(node):
            node.fa.set_block_style()
        for index, item in enumerate(node):
            list.__setitem__(node, index, _canonical(item))
        return node
    if isinstance(node, ScalarString):
        return _string_style(str(node), quoted=True, anchor=node)
    if isinstance(node, str):
        # plain in the file: kept as written; an empty plain scalar is a null, not ""
        return None if node == "" else node
    return node


def _string_style(text: str, *, quoted: bool, anchor: Any) -> Any:
    """A quoted or block string in its canonical style: plain if safe, else ``|``, else ``"``."""
    if isinstance(anchor, LiteralScalarString | FoldedScalarString) or quoted:
        if "\n" not in text and _plain_ok(text):
            return text
        if "\n" in text and _literal(text, 4) is not None:
            return LiteralScalarString(text)
        return DoubleQuotedScalarString(text)
    return text


def format_file(path: Path) -> Formatted:
    """Format one file (not written).

    Raises:
        ConfigError: unreadable, invalid, or cannot be formatted safely.
    """
    text = read_text(path)
    result = format_text(text, source=str(path))
    return Formatted(path, result != text, result)


def expand(paths: Iterable[Path]) -> list[Path]:
    """The YAML files named, and those under the directories named (hidden directories and
    ``.sops.yaml`` skipped), in a stable order.

    Raises:
        ConfigError: a path does not exist.
    """
    return expand_paths(paths, _walk)


def _walk(root: Path) -> Iterator[Path]:
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if d not in _SKIP_DIRS and not d.startswith(".")]
        for name in files:
            if name.endswith(SUFFIXES) and name not in _SKIP_FILES:
                yield Path(directory, name)
