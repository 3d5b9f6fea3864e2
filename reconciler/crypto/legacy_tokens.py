"""OAuth tokens written before adoption, and the layouts ``keys adopt-tokens`` can read.

An application that already ran its OAuth flow against ``oauth_tokens`` stored its tokens
in its own form. Such a value is *legacy*: it is not ``rcn1:<base64>`` (see
``crypto.aead``), so the reconciler can neither decrypt nor rotate it. ``keys status``
counts legacy values, ``keys rotate`` leaves them as they are and reports them, and
``keys adopt-tokens --from LAYOUT`` reads them with one of the layouts below and stores them
as ``rcn1`` under the keyring's active version, bound to their row.

A layout is one small class registered in :data:`LAYOUTS`: a name, whether it needs the
application's key, and :meth:`LegacyLayout.decode`, which returns the plaintext token or
raises :class:`LegacyTokenError` with a reason that never quotes the value. To support
another layout, add a class with :func:`register` (and a test with a value made the way the
application makes it).

Layouts understood:

``plaintext``
    The token as the provider issued it. Refused when the value has the shape of an
    encrypted layout below (adopting a ciphertext as if it were the token would store the
    wrong secret).
``node-aes-256-gcm``
    AES-256-GCM with the application's own 32-byte key and no authenticated data, the way
    Node.js ``crypto.createCipheriv('aes-256-gcm', key, iv)`` code stores it: the IV
    (12 or 16 bytes), the 16-byte auth tag and the ciphertext together in one column, as
    ``iv:authTag:ciphertext`` or ``iv:ciphertext:authTag`` (hex or base64 parts), or as
    base64 of ``iv || authTag || ciphertext`` or ``iv || ciphertext || authTag``. Each
    candidate split is tried; GCM authentication tells the right one (a wrong key or a
    corrupted value fails every candidate and the row is refused).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator, Mapping
from typing import ClassVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from reconciler.crypto.aead import NONCE_BYTES, RCN1, TAG_BYTES
from reconciler.errors import ConfigError, DecryptFailed
from reconciler.model.sensitive import Sensitive

LEGACY_KEY_ENV = "RECONCILER_LEGACY_TOKEN_KEY"
"""Default variable holding the application's token key (64 hex digits or base64)."""
KEY_BYTES = 32
GCM_IV_BYTES = (12, 16)
"""IV lengths Node.js AES-GCM code uses: 12 (the GCM standard) and 16 (common in examples)."""

_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_MIN_RCN1_BASE64 = 4 * -(-(NONCE_BYTES + TAG_BYTES) // 3)

MANAGED_TOKEN_SQL = (
    "({col} LIKE 'rcn1:%' AND substr({col}, 6) ~ '^[A-Za-z0-9+/]*={{0,2}}$'"
    f" AND length({{col}}) - 5 >= {_MIN_RCN1_BASE64} AND (length({{col}}) - 5) % 4 = 0)"
)
"""SQL condition (format with ``col``): the value parses as ``rcn1`` (same as
:func:`is_managed_token`)."""


class LegacyTokenError(DecryptFailed):
    """A legacy value could not be read with the chosen layout (the message quotes no value)."""


def is_managed_token(stored: str) -> bool:
    """Whether ``stored`` parses as the reconciler's ``rcn1`` token form.

    Only the form is checked (prefix, base64, long enough for a nonce and a tag); whether it
    authenticates is for the keyring to tell.
    """
    if not stored.startswith(RCN1):
        return False
    body = stored[len(RCN1) :]
    return _B64.fullmatch(body) is not None and len(body) >= _MIN_RCN1_BASE64 and len(body) % 4 == 0


def load_legacy_key(environ: Mapping[str, str], variable: str) -> bytes:
    """The application's 32-byte key from environment variable ``variable``.

    Accepted: 64 hex digits, or base64 of 32 bytes. Messages name the variable, never
    its value.

    Raises:
        ConfigError: the variable is unset, empty or not a 32-byte key.
    """
    text = environ.get(variable, "").strip()
    if not text:
        raise ConfigError(f"${variable} is not set: it must hold the application's token key")
    if len(text) == 2 * KEY_BYTES and _HEX.fullmatch(text):
        return bytes.fromhex(text)
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"${variable} is not a {KEY_BYTES}-byte key (expected 64 hex digits or base64 "
            f"of {KEY_BYTES} bytes)"
        )
    return key


class LegacyLayout:
    """How one application stored its tokens. Subclasses set the class attributes.

    Attributes:
        name: what ``--from`` calls it.
        needs_key: whether it needs the application's key (``--legacy-key-env``).
        summary: one line for ``--help`` and the docs.
    """

    name: ClassVar[str]
    needs_key: ClassVar[bool]
    summary: ClassVar[str]

    def recognises(self, stored: str) -> bool:
        """Whether ``stored`` unmistakably has this layout's shape (no key needed).

        The plaintext layout refuses values another layout recognises.
        """
        raise NotImplementedError

    def decode(self, stored: str, key: bytes | None) -> Sensitive[str]:
        """The plaintext token.

        Raises:
            LegacyTokenError: the value is not in this layout or does not authenticate.
        """
        raise NotImplementedError


LAYOUTS: dict[str, LegacyLayout] = {}
"""Every layout ``keys adopt-tokens --from`` accepts, by name."""


def register(cls: type[LegacyLayout]) -> type[LegacyLayout]:
    """Class decorator: make a layout available to ``keys adopt-tokens --from``."""
    LAYOUTS[cls.name] = cls()
    return cls


def layout(name: str) -> LegacyLayout:
    """The layout called ``name``.

    Raises:
        ConfigError: no such layout (the message lists the known ones).
    """
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ConfigError(
            f"unknown legacy token layout {name!r}; known: {', '.join(sorted(LAYOUTS))}"
        ) from None


def _parts(text: str) -> bytes | None:
    if _HEX.fullmatch(text):
        return bytes.fromhex(text)
    if _B64.fullmatch(text) and len(text) % 4 == 0:
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return None
    return None


@register
class NodeAesGcm(LegacyLayout):
    """AES-256-GCM as Node.js applications store it (see the module docstring)."""

    name = "node-aes-256-gcm"
    needs_key = True
    summary = (
        "AES-256-GCM, the application's key; iv:tag:ct or iv:ct:tag (hex or base64 "
        "parts), or base64 of iv|tag|ct or iv|ct|tag; 12- or 16-byte IV"
    )

    def candidates(self, stored: str) -> Iterator[tuple[bytes, bytes]]:
        """Every plausible ``(iv, ciphertext || tag)`` split of ``stored``."""
        text = stored.strip()
        pieces = text.split(":")
        if len(pieces) == 3:
            decoded = [_parts(p) for p in pieces]
            if any(p is None for p in decoded):
                return
            iv, second, third = (p or b"" for p in decoded)
            if len(iv) not in GCM_IV_BYTES:
                return
            if len(second) == TAG_BYTES:
                yield iv, third + second
            if len(third) == TAG_BYTES:
                yield iv, second + third
            return
        if len(pieces) != 1:
            return
        blob = _parts(text) if not _HEX.fullmatch(text) else None
        if blob is None:
            return
        for iv_len in GCM_IV_BYTES:
            rest = blob[iv_len:]
            if len(rest) < TAG_BYTES:
                continue
            iv = blob[:iv_len]
            yield iv, rest[TAG_BYTES:] + rest[:TAG_BYTES]
            yield iv, rest

    def recognises(self, stored: str) -> bool:
        # Only the three-part form is unmistakable: a single base64 blob could be a token
        # that happens to use base64 characters only.
        return ":" in stored and next(self.candidates(stored), None) is not None

    def decode(self, stored: str, key: bytes | None) -> Sensitive[str]:
        if key is None:
            raise LegacyTokenError(f"the {self.name} layout needs the application's key")
        aead = AESGCM(key)
        tried = False
        for iv, sealed in self.candidates(stored):
            tried = True
            try:
                plain = aead.decrypt(iv, sealed, None)
            except InvalidTag:
                continue
            try:
                return Sensitive(plain.decode("utf-8"))
            except UnicodeDecodeError:
                raise LegacyTokenError("decrypts, but not to UTF-8 text") from None
        if not tried:
            raise LegacyTokenError(f"not in the {self.name} layout")
        raise LegacyTokenError(
            f"does not authenticate as {self.name} with the given key (another key, "
            "another layout, or a damaged value)"
        )


@register
class Plaintext(LegacyLayout):
    """The provider's token as issued, stored unencrypted."""

    name = "plaintext"
    needs_key = False
    summary = "the token as issued, unencrypted (refused if it looks like an encrypted layout)"

    def recognises(self, stored: str) -> bool:
        return bool(stored.strip())

    def decode(self, stored: str, key: bytes | None) -> Sensitive[str]:
        if not stored.strip():
            raise LegacyTokenError("empty")
        if stored.startswith(("rcn1:", "rcn2:")):
            raise LegacyTokenError("a damaged reconciler ciphertext, not a plaintext token")
        for other in LAYOUTS.values():
            if other is not self and other.recognises(stored):
                raise LegacyTokenError(
                    f"looks like the {other.name} layout, not plaintext; adopt it with "
                    f"--from {other.name}"
                )
        return Sensitive(stored)


Decoder = Callable[[str], Sensitive[str]]


def decoder(name: str, key: bytes | None) -> Decoder:
    """``decode(stored)`` for layout ``name`` with ``key`` bound (the key stays in here)."""
    chosen = layout(name)
    if chosen.needs_key and key is None:
        raise ConfigError(f"--from {name} needs the application's key (--legacy-key-env)")

    def decode(stored: str) -> Sensitive[str]:
        return chosen.decode(stored, key)

    return decode
