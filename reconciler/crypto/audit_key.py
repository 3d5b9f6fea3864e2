"""The audit key: what makes the audit hash chain tamper-evident against the database owner.

Keyed audit rows carry ``HMAC-SHA256(audit key, canonical row)`` instead of a plain hash, so
whoever can rewrite the table (the role the reconciler runs as, a DBA, a restored backup)
cannot produce a row that verifies without also holding the key. The key therefore never goes
into the database: it comes from ``$RECONCILER_AUDIT_KEY`` (base64, at least 32 bytes; make
one with ``openssl rand -base64 32``).

With the embedded development database and the variable unset, the key lives in
``<data dir>/keys.env`` next to the other development keys, added to that file the first time
a command writes audit rows. An external database never falls back to it.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from reconciler.crypto.fingerprint import FINGERPRINT_KEY_ENV
from reconciler.crypto.key_text import MIN_KEY_BYTES, TextKey
from reconciler.crypto.keyring import KEYRING_ENV, KEYRING_FILE_ENV
from reconciler.crypto.local_keys import KEYS_FILE_NAME, DatabaseLocation, load_keys
from reconciler.errors import ConfigError, KeyUnavailable

AUDIT_KEY_ENV = "RECONCILER_AUDIT_KEY"
DOMAIN = b"reconciler/audit-chain/v2\0"
"""Prefixed to every message, so these MACs can never collide with another use of the key."""


class AuditKey(TextKey):
    """The secret that keys the audit chain; ``mac(text)`` is its hex HMAC-SHA256.

    The key bytes never appear in ``repr`` or in an error message.
    """

    __slots__ = ("_base",)
    ENV = AUDIT_KEY_ENV
    NAME = "the audit key"

    def __init__(self, key: bytes) -> None:
        """Raises ConfigError when ``key`` is shorter than 32 bytes."""
        super().__init__(key)
        self._base = hmac.new(key, DOMAIN, hashlib.sha256)

    def __repr__(self) -> str:
        return "AuditKey(key=(sensitive))"

    def mac(self, message: bytes) -> str:
        """64 lowercase hex characters of HMAC-SHA256(key, domain || message)."""
        digest = self._base.copy()
        digest.update(message)
        return digest.hexdigest()

    @staticmethod
    def generate() -> str:
        """A new random key in base64 (the value for ``$RECONCILER_AUDIT_KEY``)."""
        return base64.b64encode(os.urandom(MIN_KEY_BYTES)).decode("ascii")


def load_audit_key(
    target: DatabaseLocation,
    environ: Mapping[str, str] | None = None,
    *,
    create: bool,
    stderr: TextIO | None = None,
) -> AuditKey | None:
    """The audit key for ``target``: ``$RECONCILER_AUDIT_KEY``, else the development key.

    Args:
        target: the database the audit rows are in.
        environ: the process environment (``os.environ`` when None).
        create: for writers. True makes the key mandatory: on the embedded database without
            the variable, the development key is added to ``keys.env`` when it has none; on
            any other database a missing variable is an error. False (readers) returns None
            when no key is configured, and never writes a file.
        stderr: where a notice about a newly created development key goes.

    Raises:
        KeyUnavailable: ``create`` and no key can be had.
        ConfigError: the configured key, or the one in ``keys.env``, is malformed.
    """
    env = os.environ if environ is None else environ
    key = AuditKey.from_environ(env)
    if key is not None:
        return key
    data_dir = target.data_dir.parent if target.data_dir is not None else None
    explicit_keys = any(env.get(name, "").strip() for name in _OTHER_KEY_VARIABLES)
    if not target.embedded or data_dir is None or explicit_keys:
        # Development keys only when every key comes from them: someone who configures the
        # other keys for this database must configure this one too.
        if create:
            raise KeyUnavailable(
                f"set ${AUDIT_KEY_ENV} to write audit rows to this database "
                "(base64 of at least 32 random bytes; it must never be stored in the database)"
            )
        return None
    path = data_dir / KEYS_FILE_NAME
    if create:
        if not path.exists():
            load_keys(env, embedded=True, data_dir=data_dir, stderr=stderr)
        _add_development_key(path)
    text = _read_key_line(path)
    return None if text is None else AuditKey.from_base64(text, source=f"{path}: {AUDIT_KEY_ENV}")


_OTHER_KEY_VARIABLES = (KEYRING_ENV, KEYRING_FILE_ENV, FINGERPRINT_KEY_ENV)


def _add_development_key(path: Path) -> None:
    """Append a new audit key to an existing ``keys.env`` unless it already has one.

    Under an exclusive lock on the file, so two first runs agree on one key rather than one
    appending a second key the other never used.
    """
    fd = os.open(path, os.O_RDWR | os.O_APPEND)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if _read_key_line(path) is None:
            line = f"{AUDIT_KEY_ENV}={AuditKey.generate()}\n"
            os.write(fd, line.encode("ascii"))
            os.fsync(fd)
    finally:
        os.close(fd)  # closing releases the lock


def _read_key_line(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == AUDIT_KEY_ENV:
            return value.strip()
    return None
