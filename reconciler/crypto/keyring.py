"""The versioned keyring of AES-256 keys that encrypt secrets in the database.

Format, in ``$RECONCILER_KEYRING`` or in the file named by ``$RECONCILER_KEYRING_FILE``
(entries separated by commas or new lines; ``#`` starts a comment in the file)::

    1:<base64 of 32 bytes>,2:<base64 of 32 bytes>

The highest version encrypts; every listed version decrypts, so a new key is introduced by
adding a higher version and running ``reconciler keys rotate``, and an old one is removed only
after ``reconciler keys status`` shows no row still uses it. Versions run from 1 to
:data:`MAX_VERSION` (the ``encryption_key_version`` columns are 32-bit integers).

Error messages name the offending entry by position and version, never its key bytes.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from reconciler.errors import ConfigError, KeyUnavailable

KEYRING_ENV = "RECONCILER_KEYRING"
KEYRING_FILE_ENV = "RECONCILER_KEYRING_FILE"
KEY_BYTES = 32
"""AES-256: every key is exactly 32 bytes."""
MAX_VERSION = 2**31 - 1
"""Highest key version: ``encryption_key_version`` is a PostgreSQL ``integer``."""

_VERSION_TEXT = re.compile(r"[+-]?[0-9]+")


class Keyring:
    """An immutable map of key version (``>= 1``) to 32-byte AES key.

    The key bytes never appear in ``repr`` or in any error message.
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: Mapping[int, bytes]) -> None:
        """Build a keyring from already decoded keys.

        Raises:
            ConfigError: no keys, a version outside 1 to :data:`MAX_VERSION`, or a key that is
                not 32 bytes.
        """
        if not keys:
            raise ConfigError("the keyring has no keys")
        for version, key in keys.items():
            _check_version(version, "the keyring")
            if len(key) != KEY_BYTES:
                raise ConfigError(
                    f"keyring version {version}: key is {len(key)} bytes, expected {KEY_BYTES}"
                )
        self._keys: dict[int, bytes] = dict(sorted(keys.items()))

    def __repr__(self) -> str:
        return f"Keyring(versions={list(self._keys)}, active={self.active_version})"

    @property
    def active_version(self) -> int:
        """The version that encrypts: the highest listed."""
        return max(self._keys)

    @property
    def versions(self) -> tuple[int, ...]:
        """Every version that can decrypt, ascending."""
        return tuple(self._keys)

    def __contains__(self, version: object) -> bool:
        return version in self._keys

    def key(self, version: int, *, where: str) -> bytes:
        """The key of ``version``.

        Args:
            version: the row's ``encryption_key_version``.
            where: what needs it, for the error message: the table and column, the tenant
                and the row (``tenant=acme row=STRIPE/PRODUCTION/API_KEY``).

        Raises:
            KeyUnavailable: ``version`` is not in this keyring.
        """
        try:
            return self._keys[version]
        except KeyError:
            listed = ", ".join(map(str, self._keys))
            raise KeyUnavailable(
                f"key version {version} is not in the keyring (it has {listed}), needed for "
                f"{where}: add version {version} to ${KEYRING_ENV} or ${KEYRING_FILE_ENV}"
            ) from None

    @classmethod
    def parse(cls, text: str, *, source: str) -> Keyring:
        """Parse ``VERSION:BASE64`` entries separated by commas or new lines.

        Args:
            text: the keyring; in a file, ``#`` starts a comment that runs to the end of line.
            source: where ``text`` came from (an env var or a path), for error messages.

        Raises:
            ConfigError: an entry is malformed, a key is not 32 bytes after base64 decoding,
                a version repeats, or there is no entry at all.
        """
        keys: dict[int, bytes] = {}
        for position, entry in enumerate(_entries(text), start=1):
            version, key = _parse_entry(entry, position, source)
            if version in keys:
                raise ConfigError(f"{source}: entry {position} repeats key version {version}")
            keys[version] = key
        if not keys:
            raise ConfigError(f"{source}: the keyring has no entries (expected VERSION:BASE64)")
        return cls(keys)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Keyring | None:
        """The keyring from ``$RECONCILER_KEYRING`` or ``$RECONCILER_KEYRING_FILE``; None if unset.

        Raises:
            ConfigError: both variables are set, the file cannot be read, or it is malformed.
        """
        inline = environ.get(KEYRING_ENV, "").strip()
        path = environ.get(KEYRING_FILE_ENV, "").strip()
        if inline and path:
            raise ConfigError(f"set only one of ${KEYRING_ENV} and ${KEYRING_FILE_ENV}")
        if inline:
            return cls.parse(inline, source=f"${KEYRING_ENV}")
        if path:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(
                    f"${KEYRING_FILE_ENV}: cannot read {path}: {exc.strerror}"
                ) from exc
            return cls.parse(text, source=path)
        return None

    @staticmethod
    def generate_entry(version: int) -> str:
        """A new random keyring entry ``VERSION:BASE64`` (for ``reconciler keys generate``).

        Raises:
            ConfigError: ``version`` is outside 1 to :data:`MAX_VERSION`.
        """
        _check_version(version, "the new key")
        return f"{version}:{base64.b64encode(os.urandom(KEY_BYTES)).decode('ascii')}"

    def to_text(self) -> str:
        """The keyring in its inline form (for writing a key file; the result is secret)."""
        return ",".join(
            f"{version}:{base64.b64encode(key).decode('ascii')}"
            for version, key in self._keys.items()
        )


def _entries(text: str) -> Iterable[str]:
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        for part in line.split(","):
            if part.strip():
                yield part.strip()


def _parse_entry(entry: str, position: int, source: str) -> tuple[int, bytes]:
    # Messages describe the entry by position (and version once known), never by its text:
    # a malformed entry may be a bare key.
    version_text, sep, encoded = entry.partition(":")
    if not sep:
        raise ConfigError(f"{source}: entry {position} is not VERSION:BASE64 (no ':')")
    version_text = version_text.strip()
    # ASCII digits only: int() would also take "1_0" and other scripts' digits.
    if not _VERSION_TEXT.fullmatch(version_text):
        raise ConfigError(f"{source}: entry {position} has a version that is not an integer")
    if len(version_text.lstrip("+-0")) > len(str(MAX_VERSION)):
        # Not echoed: it is a long run of digits, and not worth converting to find out.
        raise ConfigError(
            f"{source}: entry {position} has a version above {MAX_VERSION}, the highest the "
            "database can store"
        )
    version = int(version_text)
    _check_version(version, f"{source}: entry {position}")
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(
            f"{source}: entry {position} (version {version}) is not valid base64"
        ) from None
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"{source}: entry {position} (version {version}) decodes to {len(key)} bytes, "
            f"expected {KEY_BYTES} (AES-256)"
        )
    return version, key


def _check_version(version: int, what: str) -> None:
    if isinstance(version, bool) or not isinstance(version, int):
        raise ConfigError(f"{what}: key version must be an integer")
    if version < 1:
        raise ConfigError(f"{what} has version {version}; versions start at 1")
    if version > MAX_VERSION:
        raise ConfigError(
            f"{what} has version {version}, above {MAX_VERSION}, the highest the database can store"
        )
