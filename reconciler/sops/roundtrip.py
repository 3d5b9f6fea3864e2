"""Writing SOPS YAML files by changing only what has to change in the file's own text.

Re-encrypting, re-keying or rotating a file replaces some values and the ``sops:`` block;
everything else in the file (comments, the ``# yaml-language-server: $schema=...`` modeline,
blank lines, key order, indentation and the quoting of untouched values) is part of what the
author wrote and stays byte for byte. So instead of serializing the documents again, these
functions patch the original text:

* an ``ENC[...]`` value is a unique token (its IV is random), so swapping one ciphertext for
  another is a plain text substitution;
* a plaintext value that becomes encrypted is replaced at its exact position, found with
  PyYAML's composer (which records where every scalar starts and ends);
* the ``sops:`` block (always a top-level key, written last) is replaced as a whole.

Every patched text is parsed again and compared with the documents it must hold; when they
differ (a layout these rules do not cover: flow collections, anchors, several documents),
the caller falls back to serializing the documents (:func:`reconciler.sops.files.dump_yaml`),
which is always correct but drops comments. Correctness therefore never depends on the
patching, only the preservation of the layout does.

Why not a round-trip YAML library (ruamel.yaml) here: it re-indents the whole file to one
configured style, types plain scalars by YAML 1.2 rather than go-yaml v3 (what sops hashes
into its MAC), and is several times slower than libyaml, which matters when rotating
thousands of files. It is used by ``reconciler fmt``, whose job is to change the layout.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any, Final

import yaml

from reconciler.sops.codec import Comment
from reconciler.sops.files import _double_quoted, _scalar, dump_yaml
from reconciler.yaml_source import YamlError, parse_documents

ENC_PREFIX: Final = "ENC["
_SOPS_LINE: Final = re.compile(r"^sops[ \t]*:[ \t]*(?:#.*)?$", re.MULTILINE)
_TOP_LEVEL_LINE: Final = re.compile(r"^[^ \t\r\n]", re.MULTILINE)


def block_regions(text: str) -> list[tuple[int, int]]:
    """Character ranges of every top-level ``sops:`` key with its indented body.

    A region starts at a line ``sops:`` in column 0 and ends after the last following line
    that is indented (blank lines inside are included, trailing ones are not).
    """
    regions: list[tuple[int, int]] = []
    for match in _SOPS_LINE.finditer(text):
        start = match.start()
        following = _TOP_LEVEL_LINE.search(text, match.end())
        stop = following.start() if following is not None else len(text)
        body = text[start:stop]
        end = start + len(body.rstrip(" \t\r\n"))
        newline = text.find("\n", end)
        regions.append((start, stop if newline < 0 or newline >= stop else newline + 1))
    return regions


def block_text(block: dict[str, Any]) -> str:
    """The ``sops:`` block as sops lays it out (4-space indentation)."""
    return dump_yaml([{"sops": block}])


def strip_blocks(text: str) -> str:
    """The text without its ``sops:`` block(s)."""
    for start, end in reversed(block_regions(text)):
        text = text[:start] + text[end:]
    return text


def replace_block(text: str, block: dict[str, Any]) -> str | None:
    """Replace the single ``sops:`` block; None when there is not exactly one."""
    regions = block_regions(text)
    if len(regions) != 1:
        return None
    start, end = regions[0]
    return text[:start] + block_text(block) + text[end:]


def append_block(text: str, block: dict[str, Any]) -> str:
    """Add the ``sops:`` block at the end of a one-document text."""
    body = text if not text or text.endswith("\n") else text + "\n"
    return body + block_text(block)


def substitute_tokens(text: str, pairs: Sequence[tuple[str, str]]) -> str | None:
    """Replace each ``old`` token by ``new``; None unless every ``old`` occurs exactly once."""
    out = text
    for old, new in pairs:
        if old == new:
            continue
        if out.count(old) != 1:
            return None
        out = out.replace(old, new, 1)
    return out


def leaf_pairs(before: Any, after: Any) -> Iterator[tuple[Any, Any]]:
    """Pairs of corresponding leaves of two documents of the same shape.

    Raises:
        ValueError: the shapes differ (different keys, list lengths or node kinds).
    """
    if isinstance(before, dict):
        if not isinstance(after, dict) or list(before) != list(after):
            raise ValueError("shape")
        for key, value in before.items():
            yield from leaf_pairs(value, after[key])
    elif isinstance(before, list):
        if not isinstance(after, list) or len(before) != len(after):
            raise ValueError("shape")
        for item, other in zip(before, after, strict=True):
            yield from leaf_pairs(item, other)
    else:
        if isinstance(after, dict | list):
            raise ValueError("shape")
        yield before, after


def token_pairs(before: Sequence[Any], after: Sequence[Any]) -> list[tuple[str, str]] | None:
    """``(old ENC, new ENC)`` for every encrypted value of ``before``, in document order.

    ``after`` must be ``before`` with its ciphertexts replaced (same shape, same clear
    values): the pairs are matched by position. None when the counts differ (an encrypted
    list comment, which decryption drops).
    """
    old: list[str] = []
    new: list[str] = []
    for document in before:
        _enc_values(document, old)
    for document in after:
        _enc_values(document, new)
    if len(old) != len(new):
        return None
    return list(zip(old, new, strict=True))


def _enc_values(node: Any, out: list[str]) -> None:
    if isinstance(node, dict):
        for value in node.values():
            _enc_values(value, out)
    elif isinstance(node, list):
        for item in node:
            _enc_values(item, out)
    elif isinstance(node, str) and node.startswith(ENC_PREFIX):
        out.append(node)


def seal_positions(text: str, encrypted: Sequence[Any]) -> list[tuple[int, int, str]] | None:
    """Where ``text`` (its documents without ``sops``) must change to hold ``encrypted``.

    Returns ``(start, end, ENC string)`` for every scalar of the text whose value is now an
    encrypted string, or None when the text's structure does not match (then the caller
    serializes instead).
    """
    try:
        nodes = [n for n in yaml.compose_all(text, Loader=yaml.SafeLoader) if n is not None]
    except yaml.YAMLError:
        return None
    if len(nodes) != len(encrypted):
        return None
    edits: list[tuple[int, int, str]] = []
    seen: set[int] = set()

    def walk(node: yaml.Node, value: Any, flow: bool = False) -> bool:
        if id(node) in seen:  # an alias: the text has one value where the result has two
            return False
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            if not isinstance(value, dict) or [k.value for k, _ in node.value] != list(value):
                return False
            inner = flow or bool(node.flow_style)
            return all(walk(v, value[k.value], inner) for k, v in node.value)
        if isinstance(node, yaml.SequenceNode):
            if not isinstance(value, list) or len(node.value) != len(value):
                return False
            inner = flow or bool(node.flow_style)
            return all(walk(n, v, inner) for n, v in zip(node.value, value, strict=True))
        if isinstance(value, dict | list | Comment):
            return False
        if isinstance(value, str) and value.startswith(ENC_PREFIX) and node.value != value:
            start, end = node.start_mark.index, node.end_mark.index
            if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
                end = start + len(text[start:end].rstrip("\n"))
            # Inside [...] or {...} the commas and brackets of ENC[...] need quotes.
            edits.append((start, end, f'"{value}"' if flow else value))
        return True

    for node, document in zip(nodes, encrypted, strict=True):
        if not walk(node, document):
            return None
    return edits


def apply_edits(text: str, edits: Sequence[tuple[int, int, str]]) -> str:
    """Apply non-overlapping ``(start, end, replacement)`` edits."""
    out = text
    for start, end, replacement in sorted(edits, reverse=True):
        out = out[:start] + replacement + out[end:]
    return out


def matches(text: str, documents: Sequence[Any]) -> bool:
    """True when ``text`` parses to exactly ``documents`` (values, types and order)."""
    try:
        parsed = parse_documents(text)
    except YamlError:
        return False
    return _same(parsed, list(documents))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and list(a) == list(b)
            and all(_same(value, b[key]) for key, value in a.items())
        )
    if isinstance(a, list):
        return (
            isinstance(b, list)
            and len(a) == len(b)
            and all(_same(x, y) for x, y in zip(a, b, strict=True))
        )
    return type(a) is type(b) and bool(a == b)


def sealed_text(
    text: str, encrypted: Sequence[Any], block: dict[str, Any] | None = None
) -> str | None:
    """``text`` (a plaintext or encrypted YAML file) rewritten to hold ``encrypted``.

    ``encrypted`` are the documents to write, each with its ``sops`` block. Values that
    ``encrypted`` holds as ``ENC[...]`` but the text in clear are replaced where they stand;
    the ``sops`` block is replaced (or added at the end). Returns None when the file's
    layout cannot be kept (the caller serializes instead).
    """
    if len(encrypted) != 1 or not isinstance(encrypted[0], dict):
        return None
    metadata = block if block is not None else encrypted[0].get("sops")
    if not isinstance(metadata, dict):
        return None
    body = strip_blocks(text)
    edits = seal_positions(body, [{k: v for k, v in encrypted[0].items() if k != "sops"}])
    if edits is None:
        return None
    patched = append_block(apply_edits(body, edits), metadata)
    return patched if matches(patched, encrypted) else None


def block_is_last(text: str, documents: Sequence[Any]) -> bool:
    """True for the layout sops writes: one document whose last key is ``sops``, its block
    running to the end of the text.

    Then replacing the block and swapping ``ENC[...]`` tokens for tokens of the same form
    cannot change anything else, and the check by parsing again can be skipped (it costs
    as much as the rest of a key rotation).
    """
    if len(documents) != 1 or not isinstance(documents[0], dict) or not documents[0]:
        return False
    if list(documents[0])[-1] != "sops":
        return False
    regions = block_regions(text)
    return len(regions) == 1 and not text[regions[0][1] :].strip()


def swapped_text(
    text: str,
    before: Sequence[Any],
    after: Sequence[Any],
    block: dict[str, Any],
    *,
    verify: bool = True,
) -> str | None:
    """``text`` with each ciphertext of ``before`` swapped for ``after``'s and a new block.

    ``before``/``after`` are the documents without ``sops``. None when the layout cannot be
    kept. ``verify=False`` only when :func:`block_is_last` holds for the original.
    """
    if len(after) != 1:
        return None
    pairs = token_pairs(before, after)
    if pairs is None:
        return None
    swapped = substitute_tokens(text, pairs)
    if swapped is None:
        return None
    patched = replace_block(swapped, block)
    if patched is None:
        return None
    if not verify:
        return patched
    return patched if matches(patched, [{**after[0], "sops": block}]) else None


def rekeyed_text(text: str, documents: Sequence[Any], *, verify: bool = True) -> str | None:
    """``text`` with only its ``sops:`` block replaced by the one of ``documents``.

    ``verify=False`` only when :func:`block_is_last` holds for the original.
    """
    if len(documents) != 1 or not isinstance(documents[0].get("sops"), dict):
        return None
    patched = replace_block(text, documents[0]["sops"])
    if patched is None:
        return None
    if not verify:
        return patched
    return patched if matches(patched, documents) else None


def plaintext_view(text: str, encrypted: Sequence[Any], plain: Sequence[Any]) -> str | None:
    """The decrypted text of an encrypted file for editing, keeping its comments and layout.

    ``encrypted`` are the file's documents without ``sops``; ``plain`` their decryption.
    Each ``ENC[...]`` token is replaced by its value written as YAML (a multi-line string as a
    ``|`` block indented under its line); the ``sops:`` block is removed.
    """
    pairs: list[tuple[str, Any]] = []
    try:
        for enc_doc, plain_doc in zip(encrypted, plain, strict=True):
            for old, new in leaf_pairs(enc_doc, plain_doc):
                if isinstance(old, str) and old.startswith(ENC_PREFIX):
                    pairs.append((old, new))
                elif old != new:
                    return None
    except ValueError:
        return None
    body = strip_blocks(text)
    for blocks in (True, False):
        view = _render(body, pairs, blocks=blocks)
        if view is not None and matches(view, plain):
            return view
    return None


def _render(body: str, pairs: Sequence[tuple[str, Any]], *, blocks: bool) -> str | None:
    out = body
    for token, value in pairs:
        position = out.find(token)
        if position < 0 or out.find(token, position + 1) >= 0:
            return None
        end = position + len(token)
        quote = out[position - 1 : position] if position else ""
        quoted = quote in ("'", '"') and out[end : end + 1] == quote
        if quoted:  # inside [...] or {...}: the quotes go with the token
            position, end = position - 1, end + 1
        line_start = out.rfind("\n", 0, position) + 1
        lead = len(out[line_start:position]) - len(out[line_start:position].lstrip(" "))
        head, lines = _scalar(value, lead + 4)
        if (lines and not blocks) or quoted:
            head, lines = _scalar_inline(value), []
        rendered = head + "".join("\n" + line for line in lines)
        out = out[:position] + rendered + out[end:]
    return out


def _scalar_inline(value: Any) -> str:
    """A value on one line that is valid in any context (quoted when a string)."""
    return _double_quoted(value) if isinstance(value, str) else _scalar(value, 0)[0]
