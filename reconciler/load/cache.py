"""A cache of validated manifests, so repeated fleet-wide runs skip parsing and decryption.

For each manifest that loaded without any diagnostic, the cache keeps the desired objects
it declared — with every secret reduced to its keyed fingerprint, never the plaintext —
keyed by a hash of everything the result depends on:

* the reconciler's own loading code (its source files and catalogs, and its version), so a
  new rule or fix never meets an old verdict;
* the file's path and bytes, and the bytes of every template;
* the fingerprint key (the cache file is named after, and authenticated with, a key derived
  from it), so a cache never crosses keys.

A hit therefore stands for a file that is byte-for-byte one that already parsed, validated
and decrypted with its MAC verified. ``plan`` needs nothing more (the diff compares
fingerprints); ``apply`` decrypts again just the files whose secrets it must write.

The file is one pickle behind an HMAC-SHA256 tag: a cache that does not authenticate (edited,
truncated, another key) is ignored, never unpickled. It lives in
``$RECONCILER_CACHE_DIR``, else ``<data dir>/cache/`` (``.reconciler/cache`` by default,
mode 0700); ``RECONCILER_CACHE=0`` turns it off.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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

FORMAT = b"reconciler-load-cache/2\n"
CACHE_ENV = "RECONCILER_CACHE"
CACHE_DIR_ENV = "RECONCILER_CACHE_DIR"
_TAG = 32


@dataclass(frozen=True, slots=True)
class CachedFile:
    """What one manifest contributes to a run (secrets as fingerprints only).

    Objects are stored as flat tuples of plain values (see :func:`encode_state`), which
    pickle and unpickle an order of magnitude faster than the dataclasses themselves.
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
        ("load", "*.py"),
        ("sops", "*.py"),
        ("model", "*.py"),
        ("catalogs", "*.txt"),
    ):
        for path in sorted((package / folder).glob(pattern)):
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.digest()


@dataclass
class LoadCache:
    """An authenticated, in-memory view of the cache file; :meth:`save` writes it back."""

    path: Path
    mac_key: bytes
    entries: dict[str, tuple[bytes, CachedFile]] = field(default_factory=dict)
    dirty: bool = False

    @classmethod
    def open(cls, directory: Path, namespace: str) -> LoadCache:
        """Load ``directory/manifests-<namespace>.cache``; an unusable file counts as empty.

        ``namespace`` is a keyed value derived from the fingerprint key (hex).
        """
        mac_key = hashlib.sha256(b"reconciler/load-cache/mac\0" + namespace.encode()).digest()
        path = directory / f"manifests-{namespace[:16]}.cache"
        self = cls(path, mac_key)
        try:
            blob = path.read_bytes()
        except OSError:
            return self
        tag, body = blob[:_TAG], blob[_TAG:]
        if not body.startswith(FORMAT) or not hmac.compare_digest(tag, self._tag(body)):
            return self  # not ours, edited, or truncated: never unpickle it
        try:
            entries = pickle.loads(body[len(FORMAT) :])  # noqa: S301 - authenticated above
        except Exception:  # an authenticated but unreadable file: start over
            return self
        if isinstance(entries, dict):
            self.entries = entries
        return self

    def _tag(self, body: bytes) -> bytes:
        return hmac.new(self.mac_key, body, hashlib.sha256).digest()

    def get(self, rel: str, key: bytes) -> CachedFile | None:
        found = self.entries.get(rel)
        return found[1] if found is not None and hmac.compare_digest(found[0], key) else None

    def put_all(self, items: Iterable[tuple[str, bytes, CachedFile]]) -> None:
        for rel, key, value in items:
            self.entries[rel] = (key, value)
            self.dirty = True

    def keep_only(self, rels: set[str]) -> None:
        """Drop the entries of files that no longer exist (after a full run)."""
        stale = [rel for rel in self.entries if rel not in rels]
        for rel in stale:
            del self.entries[rel]
        self.dirty = self.dirty or bool(stale)

    def save(self) -> None:
        """Write atomically (0600 in a 0700 directory); a failure leaves the old file."""
        if not self.dirty:
            return
        body = FORMAT + pickle.dumps(self.entries, protocol=pickle.HIGHEST_PROTOCOL)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".manifests.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(self._tag(body) + body)
            os.replace(tmp, self.path)
        except OSError:
            Path(tmp).unlink(missing_ok=True)
        self.dirty = False


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
