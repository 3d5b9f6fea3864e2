"""The SOPS message authentication code over a file's values.

SHA-512 over the concatenated :func:`~reconciler.sops.codec.to_bytes` of every leaf value in
walk order (keys are not hashed; ``null`` and comments are skipped), written as 128 uppercase
hex digits and stored encrypted with the ``lastmodified`` time (Go ``time.RFC3339``) as AAD.
With ``mac_only_encrypted`` the hash is seeded with ``sha256(b"sops")`` and covers only the
values that are encrypted.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Final

MAC_ONLY_ENCRYPTED_SEED: Final = hashlib.sha256(b"sops").digest()


class MacHasher:
    """Accumulates the MAC of a file while its tree is walked."""

    __slots__ = ("_hash", "only_encrypted")

    def __init__(self, *, only_encrypted: bool = False) -> None:
        self.only_encrypted = only_encrypted
        self._hash = hashlib.sha512()
        if only_encrypted:
            self._hash.update(MAC_ONLY_ENCRYPTED_SEED)

    def add(self, data: bytes, *, encrypted: bool) -> None:
        """Hash one leaf value's bytes (skipped for clear values under mac_only_encrypted)."""
        if encrypted or not self.only_encrypted:
            self._hash.update(data)

    def updaters(self) -> tuple[Callable[[bytes], object], Callable[[bytes], object]]:
        """``(hash_clear, hash_encrypted)`` callables for tight loops (no per-call branching)."""
        update = self._hash.update
        return (_ignore if self.only_encrypted else update), update

    def hexdigest(self) -> str:
        """The MAC as sops stores it: uppercase hex."""
        return self._hash.hexdigest().upper()

    def matches(self, stored: str) -> bool:
        """Constant-time comparison with the decrypted stored MAC."""
        return hmac.compare_digest(self.hexdigest().encode("ascii"), stored.encode("utf-8"))


def _ignore(_data: bytes) -> None:
    """Stands in for hashing clear values under ``mac_only_encrypted``."""
