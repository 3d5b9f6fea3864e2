"""The cache file: an in-memory view of one namespace's entries, read and written whole
(:class:`LoadCache`). What an entry holds and how it is encoded is in
:mod:`reconciler.load.cache`; its key in :mod:`reconciler.load.cache_key`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.files import atomic_write
from reconciler.gcpause import gc_paused
from reconciler.load.cache import (
    _TAG_HEX,
    FORMAT,
    KEY_FILE_NAME,
    CachedFile,
    _decode_entry,
    _encode_entry,
)
from reconciler.load.cache_key import cache_key


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

    @staticmethod
    def file_in(directory: Path, namespace: str) -> Path:
        """The cache file of ``namespace`` in ``directory`` (whether or not it exists)."""
        return Path(directory) / f"manifests-{namespace[:16]}.cache"

    @classmethod
    @gc_paused  # thousands of entries of small containers: the collector would rescan them
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
            mac_key, problem = cache_key(directory, key or directory / KEY_FILE_NAME)
        self = cls(cls.file_in(directory, namespace), mac_key, namespace)
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
        self.dirty = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Written line by line as encoded: the whole file is never held in memory.
            atomic_write(self.path, self._lines(self.mac_key), keep_mode=False)
        except OSError:
            return

    def _lines(self, mac_key: bytes) -> Iterator[bytes]:
        """The file's lines: the format, then one tagged line per entry."""
        prefix = self._prefix
        yield FORMAT
        for rel, (key, value) in self.entries.items():
            try:
                payload = _encode_entry(rel, key, value)
            except (TypeError, ValueError):  # not plain JSON data: not worth caching
                continue
            tag = hmac.digest(mac_key, prefix + payload, "sha256").hex().encode()
            yield tag + b" " + payload + b"\n"
