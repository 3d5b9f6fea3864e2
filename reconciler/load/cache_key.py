"""The cache's MAC key: the private random key that authenticates every cache entry.

Kept in ``cache.key`` next to the cache (created 0600, atomically, on first use) or given
as ``$RECONCILER_CACHE_KEY``; a key file that is not a private regular file of the right
size turns the cache off for the run (see :mod:`reconciler.load.cache`).
"""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
from pathlib import Path

from reconciler.crypto.key_text import decode_key
from reconciler.load.cache import CACHE_KEY_ENV, KEY_BYTES, KEY_FILE_NAME


class _UnusableKey(Exception):
    """The key file exists but must not be used (the message says why)."""


def cache_key_from_env(value: str) -> bytes:
    """The cache key given as ``$RECONCILER_CACHE_KEY`` (base64 of 32 or more random bytes).

    Raises:
        ConfigError: not base64, or shorter than 32 bytes (the value is never echoed).
    """
    return decode_key(value, source=f"${CACHE_KEY_ENV}", min_bytes=KEY_BYTES)


def cache_key(directory: Path, path: Path) -> tuple[bytes | None, str | None]:
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
