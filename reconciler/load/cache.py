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

FORMAT = b"reconciler-load-cache/1\n"
CACHE_ENV = "RECONCILER_CACHE"
CACHE_DIR_ENV = "RECONCILER_CACHE_DIR"
_TAG = 32


@dataclass(frozen=True, slots=True)
class CachedFile:
    """What one manifest contributes to a run (secrets as fingerprints only)."""

    tenant: str
    integrations: tuple[Any, ...]
    webhooks: tuple[Any, ...]
    accounts: tuple[Any, ...]
    endpoints: tuple[Any, ...]
    chain: tuple[str, ...]


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
