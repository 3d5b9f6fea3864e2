"""AES-256-GCM encryption of secret columns, bound to the row and column that hold them.

Stored form: ``rcn1:<base64(nonce || ciphertext || tag)>`` with a random 96-bit nonce per
value; the key version lives in the row's ``encryption_key_version`` column. The authenticated
data is a canonical encoding of (table, column, tenant, row identity), so a ciphertext copied
to another row, column, tenant or table does not authenticate and fails with
:class:`~reconciler.errors.DecryptFailed` instead of silently decrypting.

The row identity is the natural key known before INSERT (so a value can be encrypted before
the database has assigned an id): ``PLATFORM/ENVIRONMENT/CONFIG_TYPE`` for integration
configs, ``PLATFORM/ENVIRONMENT/NAME`` for webhooks, and the id for OAuth tokens (which the
OAuth flow writes, not the reconciler).

Random 96-bit nonces are safe for about 2**32 encryptions under one key version; rotating to a
new version (``reconciler keys rotate``) resets that budget long before it matters here.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from reconciler.crypto.keyring import Keyring
from reconciler.errors import DecryptFailed
from reconciler.model.sensitive import Sensitive

PREFIX = "rcn1:"
"""Format marker of stored values; a future format gets a new prefix, never a new meaning."""
NONCE_BYTES = 12
TAG_BYTES = 16
_AAD_DOMAIN = "reconciler/field/v1"


@dataclass(frozen=True, slots=True)
class CipherContext:
    """Where a ciphertext lives; it is the AES-GCM authenticated data.

    Only identity goes in here: changing any field makes existing ciphertexts undecryptable,
    so it must never include values that an update may change (other than by re-encrypting).

    Attributes:
        table: the table name, e.g. ``integration_configs``.
        column: the secret column, e.g. ``api_key``.
        tenant_id: the row's tenant.
        row_key: the row's natural identity (see the module docstring).
    """

    table: str
    column: str
    tenant_id: str
    row_key: str

    def aad(self) -> bytes:
        """Canonical, unambiguous encoding (JSON array) of the context."""
        fields = [_AAD_DOMAIN, self.table, self.column, self.tenant_id, self.row_key]
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def describe(self) -> str:
        """``table.column tenant=T row=R`` for error messages (holds no secret)."""
        return f"{self.table}.{self.column} tenant={self.tenant_id} row={self.row_key}"

    @classmethod
    def integration(
        cls, tenant_id: str, platform: str, environment: str, config_type: str, column: str
    ) -> CipherContext:
        """Context of a secret column of ``integration_configs``."""
        return cls(
            "integration_configs", column, tenant_id, f"{platform}/{environment}/{config_type}"
        )

    @classmethod
    def webhook(
        cls, tenant_id: str, platform: str, environment: str, name: str, column: str
    ) -> CipherContext:
        """Context of a secret column of ``webhook_configurations``."""
        return cls("webhook_configurations", column, tenant_id, f"{platform}/{environment}/{name}")

    @classmethod
    def oauth_token(cls, tenant_id: str, token_id: int, column: str) -> CipherContext:
        """Context of ``oauth_tokens.access_token`` / ``refresh_token``."""
        return cls("oauth_tokens", column, tenant_id, str(token_id))


class Cipher(Protocol):
    """What the store needs from a field cipher (the real one is :class:`FieldCipher`)."""

    @property
    def active_version(self) -> int: ...

    def encrypt(self, plaintext: str | Sensitive[str], ctx: CipherContext) -> str: ...

    def decrypt(self, stored: str, version: int, ctx: CipherContext) -> Sensitive[str]: ...


class FieldCipher:
    """Encrypts under the keyring's active version; decrypts any version the keyring holds.

    One ``AESGCM`` object per key version is built on first use and reused, so encrypting a
    large batch costs one AES key schedule per version, not per value.
    """

    __slots__ = ("_aeads", "_keyring")

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring
        self._aeads: dict[int, AESGCM] = {}

    def __repr__(self) -> str:
        return f"FieldCipher(active_version={self.active_version})"

    @property
    def active_version(self) -> int:
        """The version new ciphertexts are made with (store it in ``encryption_key_version``)."""
        return self._keyring.active_version

    @property
    def keyring(self) -> Keyring:
        """The keyring this cipher uses."""
        return self._keyring

    def _aead(self, version: int, ctx: CipherContext) -> AESGCM:
        aead = self._aeads.get(version)
        if aead is None:
            aead = AESGCM(self._keyring.key(version, where=ctx.describe()))
            self._aeads[version] = aead
        return aead

    def encrypt(self, plaintext: str | Sensitive[str], ctx: CipherContext) -> str:
        """Encrypt ``plaintext`` for the column and row ``ctx`` under the active version."""
        value = plaintext.reveal() if isinstance(plaintext, Sensitive) else plaintext
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead(self.active_version, ctx).encrypt(
            nonce, value.encode("utf-8"), ctx.aad()
        )
        return PREFIX + base64.b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, stored: str, version: int, ctx: CipherContext) -> Sensitive[str]:
        """Decrypt a stored value of the row and column ``ctx``, made under key ``version``.

        Raises:
            KeyUnavailable: ``version`` is not in the keyring.
            DecryptFailed: the value is malformed, was made for another row, column, tenant
                or table, or was tampered with (the message names the place, not the value).
        """
        aead = self._aead(version, ctx)
        blob = _unpack(stored, version, ctx)
        try:
            plain = aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], ctx.aad())
        except InvalidTag:
            raise DecryptFailed(
                f"cannot decrypt {ctx.describe()} with key version {version}: the value does "
                "not authenticate (wrong key, tampered, or copied from another row or column)"
            ) from None
        try:
            return Sensitive(plain.decode("utf-8"))
        except UnicodeDecodeError:
            raise DecryptFailed(f"{ctx.describe()}: decrypted value is not UTF-8") from None

    def reencrypt(self, stored: str, version: int, ctx: CipherContext) -> str:
        """Decrypt with ``version`` and encrypt again under the active version (same context)."""
        return self.encrypt(self.decrypt(stored, version, ctx), ctx)

    def encrypt_many(
        self, items: Iterable[tuple[str | Sensitive[str], CipherContext]]
    ) -> list[str]:
        """Encrypt many ``(plaintext, context)`` pairs under the active version, in order."""
        return [self.encrypt(plaintext, ctx) for plaintext, ctx in items]

    def decrypt_many(self, items: Iterable[tuple[str, int, CipherContext]]) -> list[Sensitive[str]]:
        """Decrypt many ``(stored, version, context)`` triples, in order."""
        return [self.decrypt(stored, version, ctx) for stored, version, ctx in items]


def _unpack(stored: str, version: int, ctx: CipherContext) -> bytes:
    if not stored.startswith(PREFIX):
        raise DecryptFailed(
            f"{ctx.describe()} (key version {version}) is not in the {PREFIX!r} format"
        )
    try:
        blob = base64.b64decode(stored[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise DecryptFailed(f"{ctx.describe()}: stored value is not valid base64") from None
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise DecryptFailed(f"{ctx.describe()}: stored value is truncated")
    return blob
