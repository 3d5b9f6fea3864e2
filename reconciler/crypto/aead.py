"""AES-256-GCM encryption of secret columns, bound to their place and to their fingerprint.

Two stored forms, each ``<prefix><base64>`` with a random 96-bit nonce per value; the key
version lives in the row's ``encryption_key_version`` column:

``rcn2:<base64(nonce || ciphertext || gcm_tag || binding_tag)>``
    Every column that has a ``*_fingerprint`` column beside it (integration and webhook
    secrets). The AES-GCM authenticated data is the canonical JSON array
    ``["reconciler/field/v2", table, column, tenant, row key, fingerprint]``: the ciphertext
    only decrypts next to the fingerprint it was written with. The trailing 32-byte binding
    tag is ``HMAC-SHA256(fingerprint key, "reconciler/binding/v1\\0" || JSON [table, column,
    tenant, row key, fingerprint, key version] || nonce || ciphertext || gcm_tag)``, so
    ``plan``/``drift``, which hold only the fingerprint key, can tell that a stored value is
    the one written together with its fingerprint (:func:`check_binding`). A ciphertext
    copied back from an earlier value of the row (a rotated-out credential), or swapped in
    from another row or column, fails both checks: drift shows the field as changed, and
    every decrypting path refuses it.

``rcn1:<base64(nonce || ciphertext || gcm_tag)>``
    The authenticated data is ``["reconciler/field/v1", table, column, tenant, row key]``
    only. It is what the OAuth flow writes for ``oauth_tokens`` (no fingerprint columns
    there), and what integration and webhook secrets were written as before ``rcn2``. In a
    fingerprinted column it is a legacy form: it decrypts only when the plaintext's
    fingerprint equals the row's fingerprint column, plans show it as changed (so ``apply``
    rewrites it as ``rcn2``), and ``keys rotate`` upgrades it to ``rcn2`` under that same
    check.

The row key is the natural identity known before INSERT (so a value can be encrypted before
the database has assigned an id): ``PLATFORM/ENVIRONMENT/CONFIG_TYPE`` for integration
configs, ``PLATFORM/ENVIRONMENT/NAME`` for webhooks, and the id for OAuth tokens.

What the binding cannot tell: a ciphertext copied back *together with* its own earlier
fingerprint is a consistent pair (an old value, correctly bound). Decrypting paths accept it;
``plan``/``drift`` show it as changed because its fingerprint differs from the manifest's,
and ``apply`` rewrites it. OAuth tokens carry no fingerprint, so a token ciphertext copied
back into its own row is not detected (see docs/security.md).

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

from reconciler.crypto.fingerprint import BINDING_BYTES, Fingerprinter
from reconciler.crypto.keyring import Keyring
from reconciler.errors import DecryptFailed, SecretError
from reconciler.model.actual import SecretDoubt
from reconciler.model.sensitive import Sensitive

RCN1 = "rcn1:"
"""Context-bound form: OAuth tokens, and legacy integration/webhook values."""
RCN2 = "rcn2:"
"""Context- and fingerprint-bound form of every column that has a fingerprint column: what
:meth:`FieldCipher.encrypt` writes for one. A future format gets a new prefix, never a new
meaning."""
NONCE_BYTES = 12
TAG_BYTES = 16
_AAD_V1 = "reconciler/field/v1"
_AAD_V2 = "reconciler/field/v2"

FINGERPRINTED_TABLES = frozenset({"integration_configs", "webhook_configurations"})
"""Tables whose secret columns have a ``<column>_fingerprint`` column beside them."""


@dataclass(frozen=True, slots=True)
class CipherContext:
    """Where a ciphertext lives; it is the AES-GCM authenticated data.

    Only identity goes in here: changing any field makes existing ciphertexts undecryptable,
    so it must never include values that an update may change (other than by re-encrypting).

    Attributes:
        table: the table name, e.g. ``integration_configs``.
        column: the secret column, e.g. an integration's API key.
        tenant_id: the row's tenant.
        row_key: the row's natural identity (see the module docstring).
    """

    table: str
    column: str
    tenant_id: str
    row_key: str

    @property
    def fingerprinted(self) -> bool:
        """Whether the column has a fingerprint column (then its values are ``rcn2``)."""
        return self.table in FINGERPRINTED_TABLES

    def aad(self, fingerprint: str | None = None) -> bytes:
        """Canonical, unambiguous encoding (JSON array) of the context.

        Without ``fingerprint`` the ``rcn1`` authenticated data; with it, the ``rcn2`` one.
        """
        fields = [self.table, self.column, self.tenant_id, self.row_key]
        if fingerprint is None:
            return _json([_AAD_V1, *fields])
        return _json([_AAD_V2, *fields, fingerprint])

    def binding(self, fingerprint: str, version: int) -> bytes:
        """The start of a binding tag's message (the sealed bytes follow it): the JSON array
        ``[table, column, tenant_id, row_key, fingerprint, version]``, as :func:`_json` writes
        it."""
        return _binding(self.table, self.column, self.tenant_id, self.row_key, fingerprint, version)

    def describe(self) -> str:
        """``table.column tenant=T row=R`` for error messages (holds no secret)."""
        return f"{self.table}.{self.column} tenant={self.tenant_id} row={self.row_key}"

    @classmethod
    def integration(
        cls, tenant_id: str, platform: str, environment: str, config_type: str, column: str
    ) -> CipherContext:
        """Context of a secret column of ``integration_configs``."""
        table, tenant, row_key = integration_place(tenant_id, platform, environment, config_type)
        return cls(table, column, tenant, row_key)

    @classmethod
    def webhook(
        cls, tenant_id: str, platform: str, environment: str, name: str, column: str
    ) -> CipherContext:
        """Context of a secret column of ``webhook_configurations``."""
        table, tenant, row_key = webhook_place(tenant_id, platform, environment, name)
        return cls(table, column, tenant, row_key)

    @classmethod
    def oauth_token(cls, tenant_id: str, token_id: int, column: str) -> CipherContext:
        """Context of ``oauth_tokens.access_token`` / ``refresh_token``."""
        return cls("oauth_tokens", column, tenant_id, str(token_id))


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_encode_string = json.encoder.encode_basestring
_AAD_V2_QUOTED = _encode_string(_AAD_V2)


Place = tuple[str, str, str]
"""Where a row's ciphertexts live, but for the column: ``(table, tenant_id, row_key)``."""


def integration_place(tenant_id: str, platform: str, environment: str, config_type: str) -> Place:
    """The :data:`Place` of an ``integration_configs`` row (enums as their labels)."""
    return "integration_configs", tenant_id, f"{platform}/{environment}/{config_type}"


def webhook_place(tenant_id: str, platform: str, environment: str, name: str) -> Place:
    """The :data:`Place` of a ``webhook_configurations`` row (enums as their labels)."""
    return "webhook_configurations", tenant_id, f"{platform}/{environment}/{name}"


def _binding(
    table: str, column: str, tenant_id: str, row_key: str, fingerprint: str, version: int
) -> bytes:
    """:meth:`CipherContext.binding` of the context these fields make (spelled out: a plan
    checks the binding of every stored secret)."""
    if type(version) is not int:
        return _json([table, column, tenant_id, row_key, fingerprint, version])
    q = _encode_string
    return (
        f"[{q(table)},{q(column)},{q(tenant_id)},{q(row_key)},{q(fingerprint)},"
        f"{int.__repr__(version)}]"
    ).encode()


def _json(fields: list[str | int]) -> bytes:
    """``json.dumps(fields, ensure_ascii=False, separators=(",", ":"))``, UTF-8 encoded.

    Strings and ints (all a context holds) are written directly: a plan checks the binding
    of every stored secret, and ``json.dumps`` with options builds an encoder per call.
    """
    parts: list[str] = []
    for field in fields:
        if type(field) is str:
            parts.append(_encode_string(field))
        elif type(field) is int:
            parts.append(int.__repr__(field))
        else:
            return _ENCODER.encode(fields).encode("utf-8")
    return ("[" + ",".join(parts) + "]").encode("utf-8")


def mismatch_message(ctx: CipherContext, version: int | None) -> str:
    """The one-line refusal of a value that is not its fingerprint's (names no value)."""
    return (
        f"{ctx.describe()} (key version {version}): the stored value does not match its "
        "fingerprint (replayed, swapped or edited in the database, or written with another "
        "fingerprint key); refused. `reconciler apply` rewrites it from the manifests"
    )


def check_binding(
    fingerprinter: Fingerprinter,
    stored: str | None,
    fingerprint: str | None,
    version: int | None,
    ctx: CipherContext,
) -> SecretDoubt | None:
    """Whether a fingerprinted column's stored value provably belongs with its fingerprint.

    Needs only the fingerprint key (what ``plan``/``drift`` hold), never the database keys.

    Returns:
        None when the value is an ``rcn2`` ciphertext whose binding tag verifies for this
        place, fingerprint and key version, or when nothing is stored (no ciphertext, no
        fingerprint); :attr:`SecretDoubt.LEGACY` for an ``rcn1`` value;
        :attr:`SecretDoubt.MISMATCH` for anything else (a ciphertext without a fingerprint
        or key version, a fingerprint without a ciphertext, a malformed value, a tag that
        does not verify).
    """
    return check_binding_at(
        fingerprinter,
        stored,
        fingerprint,
        version,
        (ctx.table, ctx.tenant_id, ctx.row_key),
        ctx.column,
    )


def check_binding_at(
    fingerprinter: Fingerprinter,
    stored: str | None,
    fingerprint: str | None,
    version: int | None,
    place: Place,
    column: str,
) -> SecretDoubt | None:
    """:func:`check_binding` of the context ``place`` and ``column`` make, without making it
    (a plan checks every stored secret of a fleet, several per row of one place)."""
    if stored is None and fingerprint is None:
        return None
    if stored is None or fingerprint is None or version is None:
        return SecretDoubt.MISMATCH
    if stored.startswith(RCN1):
        return SecretDoubt.LEGACY
    blob = _decode(stored, RCN2)
    if blob is None or len(blob) < NONCE_BYTES + TAG_BYTES + BINDING_BYTES:
        return SecretDoubt.MISMATCH
    sealed, tag = blob[:-BINDING_BYTES], blob[-BINDING_BYTES:]
    table, tenant_id, row_key = place
    message = _binding(table, column, tenant_id, row_key, fingerprint, version)
    if not fingerprinter.binding_verifies(message + sealed, tag):
        return SecretDoubt.MISMATCH
    return None


class Cipher(Protocol):
    """What the store needs from a field cipher (the real one is :class:`FieldCipher`)."""

    @property
    def active_version(self) -> int: ...

    def encrypt(
        self, plaintext: str | Sensitive[str], ctx: CipherContext, fingerprint: str | None
    ) -> str: ...

    def encrypt_at(
        self, plaintext: str | Sensitive[str], place: Place, column: str, fingerprint: str | None
    ) -> str: ...

    def decrypt(
        self, stored: str, version: int, ctx: CipherContext, fingerprint: str | None
    ) -> Sensitive[str]: ...


class FieldCipher:
    """Encrypts under the keyring's active version; decrypts any version the keyring holds.

    Holds both keys: the keyring for AES-GCM, the fingerprint key for the binding tags (and
    to check that a value is the one its fingerprint describes). One ``AESGCM`` object per
    key version is built on first use and reused, so encrypting a large batch costs one AES
    key schedule per version, not per value.
    """

    __slots__ = ("_aeads", "_fingerprinter", "_keyring")

    def __init__(self, keyring: Keyring, fingerprinter: Fingerprinter) -> None:
        self._keyring = keyring
        self._fingerprinter = fingerprinter
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

    @property
    def fingerprinter(self) -> Fingerprinter:
        """The fingerprint key this cipher binds ciphertexts with."""
        return self._fingerprinter

    def _aead(self, version: int, ctx: CipherContext) -> AESGCM:
        aead = self._aeads.get(version)
        if aead is None:
            aead = AESGCM(self._keyring.key(version, where=ctx.describe()))
            self._aeads[version] = aead
        return aead

    def encrypt(
        self, plaintext: str | Sensitive[str], ctx: CipherContext, fingerprint: str | None
    ) -> str:
        """Encrypt ``plaintext`` for the column and row ``ctx`` under the active version.

        Args:
            plaintext: the secret.
            ctx: where it will be stored.
            fingerprint: for a fingerprinted column, the fingerprint stored beside it (it must
                be ``plaintext``'s); ``None`` for an OAuth token column.

        Raises:
            SecretError: the fingerprint is missing or is not the plaintext's (a value is
                never stored bound to another value's fingerprint).
        """
        return self.encrypt_at(
            plaintext, (ctx.table, ctx.tenant_id, ctx.row_key), ctx.column, fingerprint
        )

    def encrypt_at(
        self, plaintext: str | Sensitive[str], place: Place, column: str, fingerprint: str | None
    ) -> str:
        """:meth:`encrypt` for the context ``place`` and ``column`` make, without making it
        (an apply encrypts every secret of a fleet, several per row of one place)."""
        value = plaintext.reveal() if isinstance(plaintext, Sensitive) else plaintext
        version = self._keyring.active_version
        aead = self._aeads.get(version)
        if aead is None:
            aead = self._aead(version, CipherContext(place[0], column, place[1], place[2]))
        nonce = os.urandom(NONCE_BYTES)
        table, tenant_id, row_key = place
        if table not in FINGERPRINTED_TABLES:
            ctx = CipherContext(table, column, tenant_id, row_key)
            if fingerprint is not None:
                raise SecretError(f"{ctx.describe()} has no fingerprint column")
            sealed = nonce + aead.encrypt(nonce, value.encode("utf-8"), ctx.aad())
            return RCN1 + base64.b64encode(sealed).decode("ascii")
        if fingerprint is None or not self._fingerprinter.matches(value, fingerprint):
            ctx = CipherContext(table, column, tenant_id, row_key)
            raise SecretError(
                f"{ctx.describe()}: the fingerprint to store is not the value's (made with "
                "another fingerprint key?); nothing stored",
                says_nothing_written=True,
            )
        # The authenticated data and the binding tag's message share the place's fields,
        # quoted once (as CipherContext.aad and .binding write them).
        q = _encode_string
        fields = f"{q(table)},{q(column)},{q(tenant_id)},{q(row_key)},{q(fingerprint)}"
        aad = f"[{_AAD_V2_QUOTED},{fields}]".encode()
        sealed = nonce + aead.encrypt(nonce, value.encode("utf-8"), aad)
        binding = f"[{fields},{int.__repr__(version)}]".encode()
        tag = self._fingerprinter.binding_tag(binding + sealed)
        return RCN2 + base64.b64encode(sealed + tag).decode("ascii")

    def decrypt(
        self, stored: str, version: int, ctx: CipherContext, fingerprint: str | None
    ) -> Sensitive[str]:
        """Decrypt a stored value of the row and column ``ctx``, made under key ``version``.

        Args:
            stored: the column's value.
            version: the row's ``encryption_key_version``.
            ctx: the row and column.
            fingerprint: the row's fingerprint column for this secret (``None`` for an OAuth
                token column, which has none). A fingerprinted value is returned only when
                it is provably that fingerprint's value.

        Raises:
            KeyUnavailable: ``version`` is not in the keyring.
            DecryptFailed: the value is malformed, was made for another row, column, tenant
                or table, was tampered with, or does not match the row's fingerprint (a
                replayed or swapped ciphertext). The message names the place, not the value.
        """
        aead = self._aead(version, ctx)
        if not ctx.fingerprinted:
            return _open(aead, _unpack(stored, RCN1, version, ctx), ctx.aad(), version, ctx)
        if fingerprint is None:
            raise DecryptFailed(
                f"{ctx.describe()} holds a ciphertext but no fingerprint; refused. "
                "`reconciler apply` rewrites it from the manifests"
            )
        if stored.startswith(RCN1):
            plain = _open(aead, _unpack(stored, RCN1, version, ctx), ctx.aad(), version, ctx)
        else:
            blob = _unpack(stored, RCN2, version, ctx, trailer=BINDING_BYTES)
            sealed, tag = blob[:-BINDING_BYTES], blob[-BINDING_BYTES:]
            if not self._fingerprinter.binding_verifies(
                ctx.binding(fingerprint, version) + sealed, tag
            ):
                raise DecryptFailed(mismatch_message(ctx, version))
            plain = _open(aead, sealed, ctx.aad(fingerprint), version, ctx)
        if not self._fingerprinter.matches(plain, fingerprint):
            raise DecryptFailed(mismatch_message(ctx, version))
        return plain

    def reencrypt(
        self, stored: str, version: int, ctx: CipherContext, fingerprint: str | None
    ) -> str:
        """Decrypt (with every check of :meth:`decrypt`) and encrypt again, same context.

        A legacy ``rcn1`` value of a fingerprinted column comes out as ``rcn2``.
        """
        return self.encrypt(self.decrypt(stored, version, ctx, fingerprint), ctx, fingerprint)

    def encrypt_many(
        self, items: Iterable[tuple[str | Sensitive[str], CipherContext, str | None]]
    ) -> list[str]:
        """Encrypt many ``(plaintext, context, fingerprint)`` triples, in order."""
        return [self.encrypt(plaintext, ctx, fp) for plaintext, ctx, fp in items]

    def decrypt_many(
        self, items: Iterable[tuple[str, int, CipherContext, str | None]]
    ) -> list[Sensitive[str]]:
        """Decrypt many ``(stored, version, context, fingerprint)`` quadruples, in order."""
        return [self.decrypt(stored, version, ctx, fp) for stored, version, ctx, fp in items]


def _open(
    aead: AESGCM, blob: bytes, aad: bytes, version: int, ctx: CipherContext
) -> Sensitive[str]:
    try:
        plain = aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except InvalidTag:
        raise DecryptFailed(
            f"cannot decrypt {ctx.describe()} with key version {version}: the value does "
            "not authenticate (wrong key, tampered, or copied from another row or column)"
        ) from None
    try:
        return Sensitive(plain.decode("utf-8"))
    except UnicodeDecodeError:
        raise DecryptFailed(f"{ctx.describe()}: decrypted value is not UTF-8") from None


def _decode(stored: str, prefix: str) -> bytes | None:
    if not stored.startswith(prefix):
        return None
    try:  # base64.b64decode(..., validate=True) without its wrapper (a plan reads many)
        return binascii.a2b_base64(stored[len(prefix) :].encode("ascii"), strict_mode=True)
    except (binascii.Error, ValueError):
        return None


def _unpack(
    stored: str, prefix: str, version: int, ctx: CipherContext, *, trailer: int = 0
) -> bytes:
    if not stored.startswith(prefix):
        known = f"{RCN1!r} or {RCN2!r}" if ctx.fingerprinted else repr(RCN1)
        raise DecryptFailed(
            f"{ctx.describe()} (key version {version}) is not in the {known} format"
        )
    blob = _decode(stored, prefix)
    if blob is None:
        raise DecryptFailed(f"{ctx.describe()}: stored value is not valid base64")
    if len(blob) < NONCE_BYTES + TAG_BYTES + trailer:
        raise DecryptFailed(f"{ctx.describe()}: stored value is truncated")
    return blob
