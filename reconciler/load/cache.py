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

Format (``reconciler-load-cache/3``): one header line, then one line per manifest, a
hex HMAC-SHA256 tag, a space and a JSON array of plain values (see :func:`encode_state`).
Nothing read back can run code: it is parsed with :func:`json.loads` and every field is
checked for shape and type before use. The tag covers the format, the namespace and the
line, under a key of 32 random bytes kept in ``cache.key`` next to the cache (created 0600,
atomically, on first use). That key is independent of every other key: whoever holds the
fingerprint key, or reads the database, still cannot write an entry this process accepts.
An entry whose tag does not verify (edited, truncated, from another key or namespace) or
that is not the expected shape is ignored and counted in :attr:`LoadCache.ignored`; the
other entries still hit. A cache file in another format (for example the pickle of
release 2) is never parsed: it is ignored with a notice and rewritten. A key file that is
not a regular 32-byte file owned by this user and private to it (no group or other
permission bits) turns the cache off for the run, with a notice; it is never used or
replaced.

It lives in ``$RECONCILER_CACHE_DIR``, else ``<data dir>/cache/`` (``.reconciler/cache`` by
default, mode 0700); ``RECONCILER_CACHE=0`` turns it off.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import itertools
import json
import operator
import os
import secrets
import stat
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import Any

import reconciler
from reconciler.crypto.key_text import decode_key
from reconciler.files import atomic_write
from reconciler.model.desired import (
    DesiredIntegration,
    DesiredOAuthAccount,
    DesiredState,
    DesiredWebhook,
    RetryPolicy,
    SecretValue,
    Source,
)
from reconciler.model.enums import (
    AuthType,
    ConfigType,
    Environment,
    Platform,
    SyncDirection,
    WebhookType,
)
from reconciler.model.fields import (
    INTEGRATION_FIELDS,
    OAUTH_ACCOUNT_FIELDS,
    WEBHOOK_FIELDS,
    Kind,
)

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
    """``(platform, app_id, environment, endpoint_url, path, rel, display)``."""
    chain: tuple[str, ...]


_PLATFORMS = {p.value: p for p in Platform}
_ENVIRONMENTS = {e.value: e for e in Environment}
_CONFIG_TYPES = {c.value: c for c in ConfigType}
_DIRECTIONS = {d.value: d for d in SyncDirection}
_WEBHOOK_TYPES = {w.value: w for w in WebhookType}
_AUTH_TYPES = {a.value: a for a in AuthType}


def _fp(secret: SecretValue | None) -> str | None:
    if secret is not None and secret.fingerprint is None:
        raise ValueError("only decrypted secrets (with fingerprints) can be cached")
    return None if secret is None else secret.fingerprint


def _secret(fingerprint: str | None) -> SecretValue | None:
    return None if fingerprint is None else SecretValue(None, fingerprint)


@dataclass(frozen=True, slots=True)
class _Coder:
    """How one entity of the field table is flattened into cache positions and back."""

    encoders: tuple[tuple[Callable[[Any], Any], Callable[[Any], Any] | None], ...]
    """(getter from the desired object, encoder or None) per position."""
    decoders: tuple[tuple[int, Callable[[Any], Any]], ...]
    """(position, decoder) of the positions that need one."""
    nested: tuple[tuple[int, int], ...]
    """(start, stop) of each run of positions that make one nested value (a retry policy)."""


@cache
def _coders() -> tuple[_Coder, ...]:
    """Per entity of the field table, in cache order; checked against the desired objects."""
    out = []
    entities = (
        (INTEGRATION_FIELDS, DesiredIntegration),
        (WEBHOOK_FIELDS, DesiredWebhook),
        (OAUTH_ACCOUNT_FIELDS, DesiredOAuthAccount),
    )
    for fields, make in entities:
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
        out.append(_Coder(tuple(encoders), tuple(decoders), tuple(nested)))
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


def decode_state(hit: CachedFile) -> DesiredState:
    """The :class:`DesiredState` share of a cached file (secrets without plaintext).

    The positions are the field table's order, which is the order of the desired objects'
    attributes (checked once); a webhook's four retry positions make its retry policy.
    """
    made: list[tuple[Any, ...]] = []
    for rows, coder, make in zip(
        (hit.integrations, hit.webhooks, hit.accounts),
        _coders(),
        (DesiredIntegration, DesiredWebhook, DesiredOAuthAccount),
        strict=True,
    ):
        decoders, nested = coder.decoders, coder.nested[::-1]
        objects = []
        for row in rows:
            values = list(row)
            for i, dec in decoders:
                values[i] = dec(values[i])
            source = Source(values.pop())
            for start, stop in nested:
                values[start:stop] = [RetryPolicy(*values[start:stop])]
            objects.append(make(*values, source))
        made.append(tuple(objects))
    integrations, webhooks, accounts = made
    tenants = frozenset({hit.tenant}) if hit.tenant else frozenset()
    return DesiredState(integrations, webhooks, accounts, tenants)


@cache
def code_fingerprint() -> bytes:
    """SHA-256 over the loading code and catalogs: a new release invalidates every entry."""
    package = Path(reconciler.__file__).parent
    h = hashlib.sha256(reconciler.__version__.encode())
    for folder, pattern in (
        (".", "yaml_source.py"),
        (".", "files.py"),
        ("load", "*.py"),
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


_S, _B, _I, _F, _D, _L = (str,), (bool,), (int,), (int, float), (dict,), (list,)
_OPT_S, _OPT_B, _OPT_I = (str, _NONE), (bool, _NONE), (int, _NONE)
_ENUMS_BY_ROW: dict[int, Iterable[str | None]] = {1: _PLATFORMS, 2: _ENVIRONMENTS}

# One entry per position of the tuples built by encode_state and validate._cacheable.
_INTEGRATION = _Shape.build(
    (_S, _S, _S, _S, _B, _B, _OPT_S, _OPT_S, _OPT_I, _OPT_S, _D, _D, _D, _D, _S),
    {**_ENUMS_BY_ROW, 3: _CONFIG_TYPES, 9: [*_DIRECTIONS, None]},
)
_WEBHOOK = _Shape.build(
    (_S, _S, _S, _S, _S, _S, _S, _OPT_S, _OPT_S, _OPT_S, _L, _I, _I, _F, _I, _I, _I, _B, _S),
    {**_ENUMS_BY_ROW, 4: _WEBHOOK_TYPES, 6: _AUTH_TYPES},
    listed=10,  # subscribed_events
    item_types=[str],
)
_ACCOUNT = _Shape.build(
    (_S, _S, _S, _S, _OPT_B, _OPT_S, _OPT_S, _OPT_S, _S),
    _ENUMS_BY_ROW,
)
_ENDPOINT = _Shape.build(
    (_S, _S, _S, _S, _L, _S, _S),
    {0: _PLATFORMS},
    listed=4,  # the field path of the endpoint in its manifest
    item_types=[str, int],
)


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
    raw = json.loads(payload)
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


# -- the key ------------------------------------------------------------------------------------


class _UnusableKey(Exception):
    """The key file exists but must not be used (the message says why)."""


def cache_key_from_env(value: str) -> bytes:
    """The cache key given as ``$RECONCILER_CACHE_KEY`` (base64 of 32 or more random bytes).

    Raises:
        ConfigError: not base64, or shorter than 32 bytes (the value is never echoed).
    """
    return decode_key(value, source=f"${CACHE_KEY_ENV}", min_bytes=KEY_BYTES)


def _cache_key(directory: Path, path: Path) -> tuple[bytes | None, str | None]:
    """The MAC key in ``path``, created on first use; else ``None`` and why the cache is off."""
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            return _read_key(path), None
        except FileNotFoundError:
            _create_key(path)
        return _read_key(path), None
    except _UnusableKey as exc:
        return None, (
            f"manifest cache off for this run: {path} {exc}; it is not used: delete "
            f"{directory} to start over"
        )
    except OSError as exc:
        return None, f"manifest cache off for this run: cannot use {path}: {exc.strerror or exc}"


def _read_key(path: Path) -> bytes:
    """Read the key file, refusing anything but a private regular file of the right size."""
    # O_NOFOLLOW: a symlink planted in place of the key is refused (ELOOP), not followed;
    # O_NONBLOCK: a FIFO planted there cannot hang the run.
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _UnusableKey("is not a regular file")
        if info.st_uid != os.geteuid():
            raise _UnusableKey("belongs to another user")
        if info.st_mode & 0o077:
            mode = stat.S_IMODE(info.st_mode)
            raise _UnusableKey(f"is open to group or others (mode {mode:04o}, must be 0600)")
        data = os.read(fd, KEY_BYTES + 1)
        if info.st_size != KEY_BYTES or len(data) != KEY_BYTES:
            raise _UnusableKey(f"is not {KEY_BYTES} bytes long")
        return data
    finally:
        os.close(fd)


def _create_key(path: Path) -> None:
    """Create the key file atomically; when another process got there first, keep theirs."""
    # Written in full to a private temporary file (mkstemp: O_CREAT|O_EXCL, mode 0600), then
    # linked into place: link() fails if the name exists, so concurrent first runs agree on
    # one key and nobody ever reads a half-written one.
    fd, tmp = tempfile.mkstemp(prefix=f".{KEY_FILE_NAME}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(KEY_BYTES))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links: create the name exclusively
            _create_key_in_place(path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _create_key_in_place(path: Path) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_bytes(KEY_BYTES))


# -- the cache file -----------------------------------------------------------------------------


@dataclass
class LoadCache:
    """An in-memory view of one cache file; :meth:`save` writes it back.

    Attributes:
        path: the cache file, named after the namespace.
        mac_key: the cache directory's random key (see the module docstring); ``None`` when
            the cache is off for this run (nothing is then read or written).
        namespace: derived from the fingerprint key (hex); every entry's lookup key and tag
            include it, so entries never cross fingerprint keys.
        entries: by manifest path relative to the manifests directory: (lookup key, value);
            only entries that authenticated and decoded.
        unauthentic: entries ignored on reading because their tag did not verify.
        malformed: entries ignored on reading because they were not the expected shape.
        notices: one-line messages about the cache as a whole (see :meth:`report`).
    """

    path: Path
    mac_key: bytes | None = field(repr=False)
    namespace: str
    entries: dict[str, tuple[bytes, CachedFile]] = field(default_factory=dict)
    unauthentic: int = 0
    malformed: int = 0
    notices: list[str] = field(default_factory=list)
    dirty: bool = False
    _prefix: bytes = field(init=False, repr=False)
    """What every lookup key and tag starts with: the format and the namespace."""

    def __post_init__(self) -> None:
        self._prefix = FORMAT + self.namespace.encode() + b"\n"

    @classmethod
    def open(cls, directory: Path, namespace: str, key: bytes | Path | None = None) -> LoadCache:
        """Load ``directory/manifests-<namespace>.cache``; an unusable file counts as empty.

        Args:
            directory: the cache directory; created (0700) on first use.
            namespace: a keyed value derived from the fingerprint key (hex).
            key: the MAC key itself, or the file that holds it (created 0600 on first use);
                default ``directory/cache.key``. Keep the file outside a directory that is
                shared or restored between machines, or the key travels with the entries.
        """
        directory = Path(directory)
        mac_key: bytes | None
        problem: str | None
        if isinstance(key, bytes):
            mac_key, problem = key, None
        else:
            mac_key, problem = _cache_key(directory, key or directory / KEY_FILE_NAME)
        self = cls(directory / f"manifests-{namespace[:16]}.cache", mac_key, namespace)
        if problem is not None:
            self.notices.append(problem)
        if mac_key is None:
            return self
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            return self
        except OSError as exc:
            self.notices.append(f"manifest cache {self.path} ignored: {exc.strerror or exc}")
            return self
        if not blob.startswith(FORMAT):
            # Older releases wrote a pickle here: it is never parsed, only replaced.
            self.notices.append(
                f"manifest cache {self.path} ignored: not in the format "
                f"{FORMAT.decode().strip()} (written by an older release?); it is rebuilt"
            )
            self.dirty = True
            return self
        self._read(blob[len(FORMAT) :], mac_key)
        return self

    def _read(self, body: bytes, mac_key: bytes) -> None:
        lines = body.split(b"\n")
        if lines and not lines[-1]:
            lines.pop()
        prefix = self._prefix
        for line in lines:
            payload = line[_TAG_HEX + 1 :]
            expected = hmac.digest(mac_key, prefix + payload, "sha256").hex().encode()
            if line[_TAG_HEX : _TAG_HEX + 1] != b" " or not hmac.compare_digest(
                line[:_TAG_HEX], expected
            ):
                self.unauthentic += 1
                continue
            try:
                rel, key, value = _decode_entry(payload)
            except (ValueError, RecursionError):  # JSONDecodeError and _Malformed included
                self.malformed += 1
                continue
            self.entries[rel] = (key, value)
        # Rewrite the file without the entries that were ignored.
        self.dirty = self.dirty or bool(self.unauthentic or self.malformed)

    def _lookup(self, key: bytes) -> bytes:
        return hashlib.sha256(self._prefix + key).digest()

    @property
    def ignored(self) -> int:
        """Entries ignored on reading (forged, edited, truncated or malformed)."""
        return self.unauthentic + self.malformed

    def report(self) -> list[str]:
        """One-line notices for the user: the cache was off or unreadable, entries ignored."""
        lines = list(self.notices)
        for count, why in (
            (self.unauthentic, "failed authentication"),
            (self.malformed, "authenticated but not in the expected form"),
        ):
            if count:
                noun = "entry" if count == 1 else "entries"
                lines.append(f"manifest cache {self.path}: {count} {noun} ignored: {why}")
        return lines

    def get(self, rel: str, key: bytes) -> CachedFile | None:
        found = self.entries.get(rel)
        if found is None:
            return None
        return found[1] if hmac.compare_digest(found[0], self._lookup(key)) else None

    def put_all(self, items: Iterable[tuple[str, bytes, CachedFile]]) -> None:
        if self.mac_key is None:
            return  # the cache is off for this run
        for rel, key, value in items:
            self.entries[rel] = (self._lookup(key), value)
            self.dirty = True

    def keep_only(self, rels: set[str]) -> None:
        """Drop the entries of files that no longer exist (after a full run)."""
        stale = [rel for rel in self.entries if rel not in rels]
        for rel in stale:
            del self.entries[rel]
        self.dirty = self.dirty or bool(stale)

    def save(self) -> None:
        """Write atomically (0600 in a 0700 directory); a failure leaves the old file."""
        if not self.dirty or self.mac_key is None:
            return
        prefix = self._prefix
        lines = [FORMAT]
        for rel, (key, value) in self.entries.items():
            try:
                payload = _encode_entry(rel, key, value)
            except (TypeError, ValueError):  # not plain JSON data: not worth caching
                continue
            tag = hmac.digest(self.mac_key, prefix + payload, "sha256").hex().encode()
            lines.append(tag + b" " + payload + b"\n")
        self.dirty = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write(self.path, b"".join(lines), keep_mode=False)
        except OSError:
            return


def entry_key(display: str, data: bytes, templates_digest: bytes) -> bytes:
    """The key of one file's entry (see the module docstring)."""
    h = hashlib.sha256(code_fingerprint())
    h.update(display.encode() + b"\0" + hashlib.sha256(data).digest() + templates_digest)
    return h.digest()


def templates_digest(templates: Mapping[str, bytes]) -> bytes:
    h = hashlib.sha256()
    for name in sorted(templates):
        h.update(name.encode() + b"\0" + hashlib.sha256(templates[name]).digest())
    return h.digest()


def enabled(environ: Mapping[str, str]) -> bool:
    return environ.get(CACHE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")
