"""Value types the model objects carry besides plain scalars: secrets, sources, doubts.

Pure data, no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from reconciler.model.sensitive import Sensitive

JSONValue = Any
"""A JSON-compatible value (dict/list/str/int/float/bool/None)."""


@dataclass(frozen=True, slots=True)
class SecretValue:
    """A secret field of a manifest.

    Attributes:
        value: the decrypted plaintext, or ``None`` when no key was available (``validate``
            without keys). ``plan`` and ``apply`` require it.
        fingerprint: keyed HMAC-SHA256 of the plaintext (hex), the only form the diff and the
            plan ever see; ``None`` when not decrypted.
    """

    value: Sensitive[str] | None
    fingerprint: str | None


@dataclass(frozen=True, slots=True)
class Source:
    """Where a desired object was declared: the manifest path (relative to the repo root)."""

    path: str


class SecretDoubt(enum.Enum):
    """Why a stored secret is not provably the value its fingerprint column describes.

    The store checks each ciphertext's binding tag with the fingerprint key (no database key
    needed); the diff shows a doubted secret as changed, so ``apply`` rewrites it.

    Members:
        MISMATCH: the ciphertext does not belong with the row's fingerprint, key version or
            place (replayed, swapped or edited in the database), or has no fingerprint.
        LEGACY: the ``rcn1:`` format, written before ciphertexts carried a binding; only a
            path holding the database keys can check it (``keys rotate`` upgrades it).
    """

    MISMATCH = "mismatch"
    LEGACY = "legacy"
