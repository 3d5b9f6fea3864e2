"""A cache of validated manifests, so repeated fleet-wide runs skip parsing and decryption.

For each manifest that loaded without any diagnostic, the cache keeps the desired objects
it declared — with every secret reduced to its keyed fingerprint, never the plaintext —
keyed by a hash of everything the result depends on:

* the reconciler's own loading code (its source files and catalogs, and its version), so a
  new rule or fix never meets an old verdict;
* the file's path and bytes, and the bytes of every template;
* the fingerprint key, through a namespace derived from it (the cache file is named after
  it and every entry is bound to it), so a cache never crosses fingerprint keys.

A hit therefore stands for a file that is byte-for-byte one that already parsed, validated
and decrypted. ``plan`` needs nothing more (the diff compares fingerprints); ``apply``
decrypts again just the files whose secrets it must write.

Format (``reconciler-load-cache/3``): one header line, then one line per manifest, a hex
HMAC-SHA256 tag, a space and a JSON array of plain values (see :func:`encode_state`).
Nothing read back can run code: it is parsed as plain JSON (by ``msgspec``, which gives what
:func:`json.loads` gives, integers of any size included, in half the time) and every field
is checked for shape and type before use. The tag covers the format, the namespace and the
line, under a key of 32 random bytes kept in ``cache.key`` next to the cache (created 0600,
atomically, on first use). That key is independent of every other key: whoever holds the
fingerprint key, or reads the database, still cannot write an entry this process accepts. An
entry whose tag does not verify (edited, truncated, from another key or namespace) or that
is not the expected shape is ignored and counted in :attr:`LoadCache.ignored`; the other
entries still hit. A cache file in another format (for example the pickle of release 2) is
never parsed: it is ignored with a notice and rewritten. A key file that is not a regular
32-byte file owned by this user and private to it (no group or other permission bits) turns
the cache off for the run, with a notice; it is never used or replaced.

It lives in ``$RECONCILER_CACHE_DIR``, else ``<data dir>/cache/`` (``.reconciler/cache`` by
default, mode 0700); ``RECONCILER_CACHE=0`` turns it off.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import itertools
import json
import operator
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any

import msgspec

import reconciler
from reconciler.model.desired import DesiredState, EncodedRows
from reconciler.model.enums import Platform
from reconciler.model.field_spec import call, compile_call, fast_constructor, item
from reconciler.model.fields import DESIRED_ENTITIES, FieldSpec, Kind, RetryPolicy
from reconciler.model.values import SecretValue, Source

FORMAT = b"reconciler-load-cache/3\n"
CACHE_ENV = "RECONCILER_CACHE"
CACHE_DIR_ENV = "RECONCILER_CACHE_DIR"
CACHE_KEY_ENV = "RECONCILER_CACHE_KEY"
KEY_FILE_NAME = "cache.key"
KEY_BYTES = 32
_TAG_HEX = 64


@dataclass(frozen=True, slots=True)
class CachedFile:
    """What one manifest contributes to a run (secrets as fingerprints only).

    Objects are kept as flat tuples of plain values (see :func:`encode_state`), which
    encode to and decode from JSON much faster than the dataclasses themselves.
    """

    tenant: str
    integrations: tuple[tuple[Any, ...], ...]
    webhooks: tuple[tuple[Any, ...], ...]
    accounts: tuple[tuple[Any, ...], ...]
    endpoints: tuple[tuple[Any, ...], ...]
    """``(platform, app_id, environment, url, path, rel, display)`` of each app endpoint."""
    chain: tuple[str, ...]


def _fp(secret: SecretValue | None) -> str | None:
    if secret is not None and secret.fingerprint is None:
        raise ValueError("only decrypted secrets (with fingerprints) can be cached")
    return None if secret is None else secret.fingerprint


def _secret(fingerprint: str | None) -> SecretValue | None:
    return None if fingerprint is None else _SECRET_VALUE(None, fingerprint)


_SECRET_VALUE = fast_constructor(SecretValue)
_RETRY_POLICY = fast_constructor(RetryPolicy)
_SOURCE = fast_constructor(Source)


@dataclass(frozen=True, slots=True)
class _Coder:
    """How one entity of the field table is flattened into cache positions and back."""

    encoders: tuple[tuple[Callable[[Any], Any], Callable[[Any], Any] | None], ...]
    """(getter from the desired object, encoder or None) per position."""
    decode_row: Callable[[tuple[Any, ...]], Any]
    """A cached row (its positions, then the source path) back into the desired object;
    each run of positions that makes one nested value becomes a retry policy."""


@cache
def _coders() -> tuple[_Coder, ...]:
    """Per entity of the field table, in cache order; checked against the desired objects."""
    out = []
    for fields, make in DESIRED_ENTITIES:
        encoders: list[tuple[Callable[[Any], Any], Callable[[Any], Any] | None]] = []
        decoders: list[tuple[int, Callable[[Any], Any]]] = []
        nested: list[tuple[int, int]] = []
        attributes: list[str] = []
        for i, spec in enumerate(fields):
            encode: Callable[[Any], Any] | None = None
            decode: Callable[[Any], Any] | None = None
            if spec.kind is Kind.SECRET:
                encode, decode = _fp, _secret
            elif spec.kind is Kind.ENUM and spec.enum is not None:
                labels = {m.value: m for m in spec.enum}
                encode = _label
                decode = labels.__getitem__ if spec.identity else partial(_member, labels)
            elif spec.kind is Kind.JSON:
                encode = dict
            encoders.append((spec.read_desired, encode))
            if decode is not None:
                decoders.append((i, decode))
            attribute, dot, _ = spec.desired_path.partition(".")
            if dot and attributes and attributes[-1] == attribute:
                nested[-1] = (nested[-1][0], i + 1)
            else:
                attributes.append(attribute)
                if dot:
                    nested.append((i, i + 1))
        if [*attributes, "source"] != [f.name for f in dataclasses.fields(make)]:
            raise AssertionError(f"the field table and {make.__name__} disagree")
        helpers: dict[str, object] = {f"decode_{i}": dec for i, dec in decoders}
        arguments = [
            call(f"decode_{i}" if f"decode_{i}" in helpers else "", item("row", i))
            for i in range(len(fields))
        ]
        for start, stop in reversed(nested):
            arguments[start:stop] = [call("RetryPolicy", ", ".join(arguments[start:stop]))]
        arguments.append(call("Source", item("row", len(fields))))
        # Fleet-scale object making: fields set without running each __init__.
        helpers.update(
            make=fast_constructor(make),
            RetryPolicy=_RETRY_POLICY,
            Source=_SOURCE,
        )
        decode_row = compile_call("make", arguments, helpers, "row")
        out.append(_Coder(tuple(encoders), decode_row))
    return tuple(out)


def _label(value: Any) -> Any:
    return value.value if value else None


def _member(labels: Mapping[Any, Any], value: Any) -> Any:
    return labels[value] if value else None


def encode_state(state: DesiredState) -> tuple[tuple[Any, ...], ...]:
    """``(integrations, webhooks, accounts)`` as flat tuples; secrets as fingerprints.

    One position per field of the field table (``model/fields.py``), then the source path.
    """
    encoded = []
    entities: tuple[Sequence[Any], ...] = (
        state.integrations,
        state.webhooks,
        state.oauth_accounts,
    )
    for objects, coder in zip(entities, _coders(), strict=True):
        steps = coder.encoders
        encoded.append(
            tuple(
                (*(enc(get(o)) if enc else get(o) for get, enc in steps), o.source.path)
                for o in objects
            )
        )
    integrations, webhooks, accounts = encoded
    return integrations, webhooks, accounts


def decode_state(hit: CachedFile, *, objects: bool = True) -> DesiredState:
    """The :class:`DesiredState` share of a cached file (secrets without plaintext).

    The positions are the field table's order, which is the order of the desired objects'
    attributes (checked once); a webhook's four retry positions make its retry policy.
    ``objects=False`` leaves the integrations and webhooks out (for :func:`decode_rows`
    later: they are :data:`~reconciler.model.desired.Row` values already).
    """
    integrations, webhooks, accounts = _coders()
    tenants = frozenset({hit.tenant}) if hit.tenant else frozenset()
    return DesiredState(
        tuple(map(integrations.decode_row, hit.integrations)) if objects else (),
        tuple(map(webhooks.decode_row, hit.webhooks)) if objects else (),
        tuple(map(accounts.decode_row, hit.accounts)),
        tenants,
    )


def decode_rows(rows: EncodedRows) -> DesiredState:
    """The integrations and webhooks of ``rows`` (cached rows) as desired objects."""
    integrations, webhooks, _ = _coders()
    return DesiredState(
        tuple(map(integrations.decode_row, rows.integrations)),
        tuple(map(webhooks.decode_row, rows.webhooks)),
    )


@cache
def code_fingerprint() -> bytes:
    """SHA-256 over the loading code and catalogs: a new release invalidates every entry."""
    package = Path(reconciler.__file__).parent
    h = hashlib.sha256(reconciler.__version__.encode())
    for folder, pattern in (
        (".", "yaml_source.py"),
        (".", "files.py"),
        ("load", "**/*.py"),
        ("sops", "*.py"),
        ("model", "*.py"),
        ("catalogs", "*.txt"),
    ):
        for path in sorted((package / folder).glob(pattern)):
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.digest()


# -- reading entries back: every field is checked, nothing is trusted for its shape ----------

_NONE = type(None)


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a row of one kind must look like, in a form that is fast to check.

    A row passes if the tuple of its field types is one of ``signatures`` (which also fixes
    its length), the values at its enum positions are an allowed combination, and the list
    at ``listed`` (if any) holds only ``item_types``.
    """

    signatures: frozenset[tuple[type, ...]]
    enums: Callable[[list[Any]], object]
    combinations: frozenset[object]
    listed: int = -1
    item_types: frozenset[type] = frozenset()

    @classmethod
    def build(
        cls,
        fields: Sequence[tuple[type, ...]],
        enums: Mapping[int, Iterable[str | None]],
        listed: int = -1,
        item_types: Iterable[type] = (),
    ) -> _Shape:
        positions = sorted(enums)
        allowed = [list(enums[i]) for i in positions]
        combinations: Iterable[object] = (
            itertools.product(*allowed) if len(allowed) > 1 else allowed[0]
        )
        return cls(
            frozenset(itertools.product(*fields)),
            operator.itemgetter(*positions),
            frozenset(combinations),
            listed,
            frozenset(item_types),
        )


def _position_types(hint: Any) -> tuple[tuple[type, ...], list[str | None]]:
    """The JSON types a cached position of a desired attribute typed ``hint`` may hold, and
    its enum labels (empty unless an enum)."""
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    nullable: tuple[type, ...] = (_NONE,) if _NONE in args else ()
    (base,) = (a for a in args if a is not _NONE)
    origin = typing.get_origin(base) or base
    labels: list[str | None] = []
    if isinstance(base, type) and issubclass(base, enum.Enum):
        labels = [*(m.value for m in base), *((None,) if nullable else ())]
    kinds: tuple[type, ...] = {
        bool: (bool,),
        int: (int,),
        float: (int, float),
        tuple: (list,),
    }.get(origin, (dict,) if origin is Mapping else (str,))  # text, enum label, fingerprint
    return kinds + nullable, labels


def _shape_of(fields: tuple[FieldSpec, ...], make: type) -> _Shape:
    """The shape of the rows :func:`encode_state` makes of ``make`` objects (one position
    per field of the table, then the source path), from the objects' own type hints."""
    hints = typing.get_type_hints(make)
    positions: list[tuple[type, ...]] = []
    enums: dict[int, Iterable[str | None]] = {}
    listed = -1
    for i, spec in enumerate(fields):
        attribute, _, member = spec.desired_path.partition(".")
        hint = hints[attribute]
        if member:
            hint = typing.get_type_hints(hint)[member]
        kinds, labels = _position_types(hint)
        positions.append(kinds)
        if labels:
            enums[i] = labels
        if spec.kind is Kind.LIST:
            listed = i
    positions.append((str,))
    return _Shape.build(positions, enums, listed, (str,) if listed >= 0 else ())


_INTEGRATION, _WEBHOOK, _ACCOUNT = (_shape_of(*entity) for entity in DESIRED_ENTITIES)
# An app endpoint a file declares (CachedFile.endpoints), one entry per position.
_S, _L = (str,), (list,)
_ENDPOINT = _Shape.build(
    (_S, _S, _S, _S, _L, _S, _S),
    {0: [p.value for p in Platform]},
    listed=4,  # the field path of the endpoint in its manifest
    item_types=[str, int],
)


_JSON = msgspec.json.Decoder()
"""Plain JSON into lists, dicts, text and numbers: what :func:`json.loads` gives."""


class _Malformed(ValueError):
    """An entry that authenticated but is not the shape this release writes."""


def _rows(value: object, shape: _Shape) -> tuple[tuple[Any, ...], ...]:
    """Checked rows as tuples (the list inside a row becomes a tuple too)."""
    if type(value) is not list:
        raise _Malformed
    rows = []
    for row in value:
        if (
            type(row) is not list
            or tuple(map(type, row)) not in shape.signatures
            or shape.enums(row) not in shape.combinations
        ):
            raise _Malformed
        if shape.listed >= 0:
            items = row[shape.listed]
            if not shape.item_types.issuperset(map(type, items)):
                raise _Malformed
            row[shape.listed] = tuple(items)
        rows.append(tuple(row))
    return tuple(rows)


def _is_strings(value: object) -> bool:
    return type(value) is list and all(type(item) is str for item in value)


def _decode_entry(payload: bytes) -> tuple[str, bytes, CachedFile]:
    """``(rel, lookup key, value)`` of one line; ValueError if it is not the expected shape."""
    raw = _JSON.decode(payload)  # msgspec's errors are ValueErrors too
    if type(raw) is not list or len(raw) != 8:
        raise _Malformed
    rel, lookup, tenant, integrations, webhooks, accounts, endpoints, chain = raw
    if not (type(rel) is str and type(lookup) is str and type(tenant) is str):
        raise _Malformed
    if not _is_strings(chain):
        raise _Malformed
    key = bytes.fromhex(lookup)
    if len(key) != hashlib.sha256().digest_size:
        raise _Malformed
    value = CachedFile(
        tenant,
        _rows(integrations, _INTEGRATION),
        _rows(webhooks, _WEBHOOK),
        _rows(accounts, _ACCOUNT),
        _rows(endpoints, _ENDPOINT),
        tuple(chain),
    )
    return rel, key, value


def _encode_entry(rel: str, key: bytes, value: CachedFile) -> bytes:
    row = [
        rel,
        key.hex(),
        value.tenant,
        value.integrations,
        value.webhooks,
        value.accounts,
        value.endpoints,
        value.chain,
    ]
    return json.dumps(row, separators=(",", ":"), allow_nan=False).encode("ascii")


def entry_key(display: str, file_hash: bytes, templates_digest: bytes) -> bytes:
    """The key of one file's entry (see the module docstring); ``file_hash``: the SHA-256
    of the file's bytes (which the manifests digest takes too)."""
    h = hashlib.sha256(code_fingerprint())
    h.update(display.encode() + b"\0" + file_hash + templates_digest)
    return h.digest()


def templates_digest(templates: Mapping[str, bytes]) -> bytes:
    h = hashlib.sha256()
    for name in sorted(templates):
        h.update(name.encode() + b"\0" + hashlib.sha256(templates[name]).digest())
    return h.digest()


def enabled(environ: Mapping[str, str]) -> bool:
    return environ.get(CACHE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")
