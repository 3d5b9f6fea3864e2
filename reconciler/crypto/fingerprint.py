"""Keyed fingerprints of secrets: what the diff compares instead of plaintext or ciphertext.

AES-GCM ciphertexts are randomized, so two encryptions of one secret differ; the database
therefore stores next to each ciphertext ``HMAC-SHA256(fingerprint key, domain || plaintext)``
in hex. A plan compares the manifest value's fingerprint with the stored one and can say
"changed" or "unchanged" without any database key. The key (``$RECONCILER_FINGERPRINT_KEY``)
keeps the fingerprints from being a dictionary-attack oracle for low-entropy secrets.

The same key also makes the binding tag of each stored ciphertext (``rcn2:``, see
:mod:`reconciler.crypto.aead`): a MAC over the ciphertext, its place, its key version and the
fingerprint it was written with. It lets ``plan``/``drift`` prove, without the database keys,
that a stored ciphertext is the one written together with its fingerprint column.
"""

from __future__ import annotations

import hashlib
import hmac

# Re-exported: what sizes a new fingerprint key.
from reconciler.crypto.key_text import MIN_KEY_BYTES as MIN_KEY_BYTES
from reconciler.crypto.key_text import TextKey
from reconciler.model.sensitive import Sensitive

FINGERPRINT_KEY_ENV = "RECONCILER_FINGERPRINT_KEY"
DOMAIN = b"reconciler/fingerprint/v1\0"
"""Prefixed to every message, so these MACs can never collide with another use of the key."""
BINDING_DOMAIN = b"reconciler/binding/v1\0"
"""Prefixed to every binding tag's message (see :meth:`Fingerprinter.binding_tag`)."""
BINDING_BYTES = 32


class Fingerprinter(TextKey):
    """``Fingerprinter(key)(plaintext)`` is the 64-character hex fingerprint of ``plaintext``.

    Callable, so it can be passed wherever a ``Callable[[str], str]`` is expected. The key never
    appears in ``repr``.
    """

    __slots__ = ("_base", "_binding")
    ENV = FINGERPRINT_KEY_ENV
    NAME = "the fingerprint key"

    def __init__(self, key: bytes) -> None:
        """Raises ConfigError when ``key`` is shorter than 32 bytes."""
        super().__init__(key)
        # The keyed state after the domain prefix, copied per call: saves re-keying each time.
        self._base = hmac.new(key, DOMAIN, hashlib.sha256)
        self._binding = hmac.new(key, BINDING_DOMAIN, hashlib.sha256)

    def __repr__(self) -> str:
        return "Fingerprinter(key=(sensitive))"

    def fingerprint(self, plaintext: str | Sensitive[str]) -> str:
        """Hex HMAC-SHA256 of the UTF-8 ``plaintext`` (64 lowercase hex characters)."""
        value = plaintext.reveal() if isinstance(plaintext, Sensitive) else plaintext
        mac = self._base.copy()
        mac.update(value.encode("utf-8"))
        return mac.hexdigest()

    __call__ = fingerprint

    def matches(self, plaintext: str | Sensitive[str], fingerprint: str | None) -> bool:
        """Whether ``fingerprint`` is the fingerprint of ``plaintext`` (constant time)."""
        if fingerprint is None:
            return False
        expected = self.fingerprint(plaintext).encode("ascii")
        return hmac.compare_digest(expected, fingerprint.encode("utf-8", "replace"))

    def binding_tag(self, message: bytes) -> bytes:
        """The 32-byte binding tag of ``message`` (domain-separated from fingerprints)."""
        mac = self._binding.copy()
        mac.update(message)
        return mac.digest()

    def binding_verifies(self, message: bytes, tag: bytes) -> bool:
        """Whether ``tag`` is the binding tag of ``message`` (constant time)."""
        return hmac.compare_digest(self.binding_tag(message), tag)
