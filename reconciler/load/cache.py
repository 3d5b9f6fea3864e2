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

import hashlib
import itertools
import json
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import reconciler
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


def encode_state(state: DesiredState) -> tuple[tuple[Any, ...], ...]:
    """``(integrations, webhooks, accounts)`` as flat tuples; secrets as fingerprints."""
    integrations = tuple(
        (
            i.tenant_id,
            i.platform.value,
            i.environment.value,
            i.config_type.value,
            i.is_primary,
            i.is_active,
            _fp(i.api_key),
            _fp(i.api_secret),
            i.sync_interval,
            i.sync_direction.value if i.sync_direction else None,
            dict(i.features),
            dict(i.mapping_rules),
            dict(i.filter_rules),
            dict(i.transform_rules),
            i.source.path,
        )
        for i in state.integrations
    )
    webhooks = tuple(
        (
            w.tenant_id,
            w.platform.value,
            w.environment.value,
            w.name,
            w.webhook_type.value,
            w.endpoint_url,
            w.auth_type.value,
            _fp(w.signing_secret),
            _fp(w.auth_token),
            _fp(w.auth_password),
            w.subscribed_events,
            w.retry.max_attempts,
            w.retry.initial_delay_seconds,
            w.retry.multiplier,
            w.retry.max_delay_seconds,
            w.circuit_breaker_threshold,
            w.circuit_breaker_reset_seconds,
            w.is_active,
            w.source.path,
        )
        for w in state.webhooks
    )
    accounts = tuple(
        (
            a.tenant_id,
            a.platform.value,
            a.environment.value,
            a.account_id,
            a.stripe_livemode,
            a.hubspot_app_id,
            a.hubspot_user_id,
            a.revoke_reason,
            a.source.path,
        )
        for a in state.oauth_accounts
    )
    return integrations, webhooks, accounts


def decode_state(hit: CachedFile) -> DesiredState:
    """The :class:`DesiredState` share of a cached file (secrets without plaintext)."""
    integrations = tuple(
        DesiredIntegration(
            t,
            _PLATFORMS[p],
            _ENVIRONMENTS[e],
            _CONFIG_TYPES[c],
            primary,
            active,
            _secret(k),
            _secret(s),
            interval,
            _DIRECTIONS[d] if d else None,
            f,
            m,
            fr,
            tr,
            Source(src),
        )
        for t, p, e, c, primary, active, k, s, interval, d, f, m, fr, tr, src in hit.integrations
    )
    webhooks = tuple(
        DesiredWebhook(
            w[0],
            _PLATFORMS[w[1]],
            _ENVIRONMENTS[w[2]],
            w[3],
            _WEBHOOK_TYPES[w[4]],
            w[5],
            _AUTH_TYPES[w[6]],
            _secret(w[7]),
            _secret(w[8]),
            _secret(w[9]),
            w[10],
            RetryPolicy(w[11], w[12], w[13], w[14]),
            w[15],
            w[16],
            w[17],
            Source(w[18]),
        )
        for w in hit.webhooks
    )
    accounts = tuple(
        DesiredOAuthAccount(
            a[0],
            _PLATFORMS[a[1]],
            _ENVIRONMENTS[a[2]],
            a[3],
            a[4],
            a[5],
            a[6],
            a[7],
            Source(a[8]),
        )
        for a in hit.accounts
    )
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
