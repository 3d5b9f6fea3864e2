"""The fast path of the YAML reader: ``yaml_rs`` (a Rust parser, several times faster than
libyaml) for the files it reads exactly as the reference path does.

:mod:`reconciler.yaml_source` reads every file with libyaml and go-yaml v3's scalar typing
(the reference path). A file made only of the constructs sops writes (one block mapping
document of block mappings and sequences, plain ASCII text, plain scalars whose Go typing
the YAML 1.2 core schema shares, quoted scalars that open and close on one line, filled
``|``/``|-`` literal blocks) is read here instead. Everything else goes to libyaml: tags,
anchors, aliases and merge keys, flow collections, several documents, folded blocks,
escapes, tabs and non-ASCII text, and plain scalars that Go types otherwise than the core
schema or that ``yaml_rs`` reads differently (leading zeros and base prefixes, dates,
underscores, infinities, integers too long for 64 bits), as well as anything ``yaml_rs``
refuses or a file that is not a mapping with string keys; the reference path then reports
the problem with its line. The screen (:func:`_fast_screen`) is conservative: a file that
merely looks unusual takes the reference path, which gives the same values.
"""

from __future__ import annotations

import re
from typing import Any

import re2
import yaml_rs

_PLAIN_ASCII = bytes([10, *range(32, 127)])
"""Line feed and the printable ASCII characters: what a plain ASCII manifest is made of."""

_ODD_TOKENS = re2.compile(
    # A token starts at the beginning of the text or after a line break or a blank (in
    # block context: flow collections, where ``[{,:`` also separate tokens, are refused
    # here). RE2 runs this as one automaton over the bytes (the text is ASCII by then), in
    # time linear in the text: it has no lookaround, so each refusal below is written out as
    # what may follow (``$`` is the end of the text).
    # Several documents and directives, at column 0.
    rb"(?:^|\n)(?:---|\.\.\.|%)|(?:^|[ \n])(?:"
    # Merge keys.
    rb"<<|"
    # A sequence opened on its parent's line (``- - x``): the one way to nest deeply
    # without indenting, and yaml_rs recurses per level (a stack overflow crashes the
    # process); indentation alone bounds a 1 MiB file to about 2,000 levels.
    rb"-[ ]+-(?:[ \n]|$)"
    # Node properties and indicators: tags, anchors, aliases, flow collections (but the
    # empty ``[]`` and ``{}`` that sops writes, which are read alike), explicit and empty
    # keys, folded blocks, and literal blocks other than ``|`` and ``|-`` (a ``|`` not
    # followed by an optional ``-``, blanks, an optional comment and a line break).
    rb"|[!&*>]|\[(?:$|[^\]]|\][^ \n])|\{(?:$|[^}]|\}[^ \n])|[?:](?:[ \n]|$)"
    rb"|\|(?:$|[^-# \n]|-[ ]*(?:[^# \n]|$)|[ ]+(?:[^# \n]|$)|-?[ ]*#[^\n]*$)"
    # Plain scalars Go types otherwise than the YAML 1.2 core schema, or that are close:
    # underscores (yaml_rs drops them, even leading ones); a 0 followed by anything but a
    # fraction or the end of the scalar (leading zeros, base prefixes, "0-7"); dates; long
    # digit runs; exponents of three digits; infinities and NaNs in any spelling.
    rb"|_|[-+.0-9][-+.0-9A-Za-z]*_"
    rb"|[-+]?(?:0(?:[^. #\n]|[ ]+[^ #\n])|[0-9]{4}-|[0-9]{19}"
    rb"|\.?[0-9][0-9.]*[eE][-+]?[0-9]{3}|\.(?i:inf|nan))"
    rb")"
)
"""A match sends the file to the reference path."""

_QUOTED_LINE = re.compile(r"""[^"'\n]*(?:(?:"[^"\n]*"|'[^'\n]*')[^"'\n]*)*""")
"""A line whose quoted scalars all open and close on it."""


_BLOCK_HEADER_TAIL = re.compile(r"-?[ ]*(?:#[^\n]*)?")
_LINE_LEAD = re.compile(r"[ ]*(?:-[ ]+)*")
_SPACES = re.compile(r"[ ]*")


def _literal_blocks_filled(text: str) -> bool:
    """True when every literal block (``|`` or ``|-`` ending a line) is followed by a line
    of content indented deeper than its line's key or item: yaml_rs reads an empty block
    otherwise than libyaml (``"\n"`` for ``""``)."""
    at = text.find("|")
    while at != -1:
        end = text.find("\n", at)
        if (
            at > 0
            and text[at - 1] == " "
            and end != -1
            and _BLOCK_HEADER_TAIL.fullmatch(text, at + 1, end) is not None
        ):
            start = text.rfind("\n", 0, at) + 1
            key_column = _LINE_LEAD.match(text, start).end() - start  # type: ignore[union-attr]
            following = end + 1
            indent = _SPACES.match(text, following).end() - following  # type: ignore[union-attr]
            content = following + indent
            if indent <= key_column or content >= len(text) or text[content] == "\n":
                return False
        at = text.find("|", at + 1)
    return True


def _fast_screen(raw: bytes, text: str) -> bool:
    """True when ``text`` (``raw`` decoded) holds only constructs the fast path reads
    exactly as the reference path.

    Conservative by design: a file that merely looks unusual (an apostrophe in a comment,
    a backslash in a double-quoted file, a ``*`` after a blank) takes the reference path.
    """
    # Only ASCII: beyond it, line breaks and digits (which the Go typing's int() and
    # isdigit() accept in other scripts) are read differently.
    if not raw.isascii() or raw.translate(None, _PLAIN_ASCII):  # left: tabs, CRs, controls
        return False
    if _ODD_TOKENS.search(raw) is not None:
        return False
    if b'"' in raw and b"\\" in raw:  # escapes in double-quoted scalars
        return False
    if b"|" in raw and not _literal_blocks_filled(text):
        return False
    # A quoted scalar folded over several lines goes the other way. (It opens on a line that
    # is not a comment: lines starting with "#", like "# the app's key", are left out.)
    for quote in ("'", '"'):
        at = text.find(quote)
        while at != -1:
            start = text.rfind("\n", 0, at) + 1
            end = text.find("\n", at)
            end = len(text) if end == -1 else end
            comment = text[start:at].lstrip(" ").startswith("#")
            if not comment and _QUOTED_LINE.fullmatch(text, start, end) is None:
                return False
            at = text.find(quote, end)
    return True


def _string_keys(node: Any) -> bool:
    """True when every mapping key in ``node`` (a parsed value) is a string."""
    if type(node) is dict:
        for key, value in node.items():
            if type(key) is not str:
                return False
            if (type(value) is dict or type(value) is list) and not _string_keys(value):
                return False
    elif type(node) is list:
        for item in node:
            if (type(item) is dict or type(item) is list) and not _string_keys(item):
                return False
    return True


def parse_fast(raw: bytes, decoded: str) -> dict[str, Any] | None:
    """The single mapping document of ``decoded`` (``raw`` decoded) read by ``yaml_rs``, or
    ``None`` when the reference path must read it (screened out, refused by ``yaml_rs``, not
    a mapping, or a key that is not a string: the reference path then reports the problem
    with its line)."""
    if not _fast_screen(raw, decoded):
        return None
    try:
        doc = yaml_rs.loads(decoded, parse_datetime=False)
        if type(doc) is not dict or not _string_keys(doc):
            return None
    except (yaml_rs.YAMLDecodeError, RecursionError, ValueError, TypeError, OverflowError):
        return None
    return doc
