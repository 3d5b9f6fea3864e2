"""Opening the age files sops wraps its data keys in, for one X25519 identity, quickly.

Every manifest carries its data key as an armored age file, and a cold plan opens one per
file: 30,000 at 10,000 tenants. ``pyrage`` takes about 200 µs a file, of which the X25519
exchange is about 50. :class:`X25519Opener` opens the files in the form age writes them
(canonical armor, a version 1 header of stanzas, one payload chunk) with the primitives of
the ``cryptography`` package: the exchange, HKDF-SHA-256, HMAC-SHA-256 and
ChaCha20-Poly1305, as the age specification (age-encryption.org/v1) composes them.

It only accelerates: anything else it returns ``None`` for, and the caller asks ``pyrage``,
which opens what it can and decides what is an error. A file key it returns was
authenticated by its stanza's tag, then the header by its HMAC under that key, then the
payload by its tag; so it returns only what the file's author encrypted to this identity.
"""

from __future__ import annotations

import binascii
import hmac
import re
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_BEGIN: Final = "-----BEGIN AGE ENCRYPTED FILE-----"
_END: Final = "-----END AGE ENCRYPTED FILE-----"
_COLUMNS: Final = 64
_VERSION_LINE: Final = b"age-encryption.org/v1"
_MAC_LINE: Final = b"\n--- "
_X25519: Final = b"X25519"
_X25519_INFO: Final = b"age-encryption.org/v1/X25519"
_FILE_KEY_SIZE: Final = 16
_NONCE_SIZE: Final = 16
_TAG_SIZE: Final = 16
_CHUNK_SIZE: Final = 64 * 1024
_ZERO_NONCE: Final = bytes(12)
_LAST_CHUNK_NONCE: Final = bytes(11) + b"\x01"  # counter 0, the last-chunk flag set

_STANZA_LINE: Final = re.compile(rb"-> [!-~]+(?: [!-~]+)*")
"""A stanza's first line: its type and arguments, each of visible ASCII characters."""

_BECH32: Final = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_GENERATOR: Final = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def bech32_payload(text: str, prefix: str) -> bytes | None:
    """The bytes a Bech32 string (as age writes its keys) holds, or ``None`` when it is not
    one with the human-readable ``prefix`` and a valid checksum."""
    lowered = text.lower()
    separator = lowered.rfind("1")
    if lowered[:separator] != prefix or len(lowered) - separator < 7:
        return None
    try:
        values = [_BECH32.index(char) for char in lowered[separator + 1 :]]
    except ValueError:
        return None
    check = 1
    for value in [ord(char) >> 5 for char in prefix] + [0] + [ord(char) & 31 for char in prefix]:
        check = _polymod_step(check, value)
    for value in values:
        check = _polymod_step(check, value)
    if check != 1:
        return None
    accumulator, bits, out = 0, 0, bytearray()
    for value in values[:-6]:
        accumulator, bits = (accumulator << 5) | value, bits + 5
        if bits >= 8:
            bits -= 8
            out.append((accumulator >> bits) & 0xFF)
    if bits >= 5 or accumulator & ((1 << bits) - 1):
        return None  # padding that is not the zero bits an encoder leaves
    return bytes(out)


def _polymod_step(check: int, value: int) -> int:
    top = check >> 25
    check = (check & 0x1FFFFFF) << 5 ^ value
    for index, generator in enumerate(_BECH32_GENERATOR):
        if top >> index & 1:
            check ^= generator
    return check


def _hkdf(secret: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt, info).derive(secret)


def _unpadded_base64(text: bytes) -> bytes | None:
    """Canonical unpadded base64 (as age writes stanza arguments and bodies), decoded."""
    try:
        data = binascii.a2b_base64(text + b"=" * (-len(text) % 4), strict_mode=True)
    except binascii.Error:
        return None
    return data if binascii.b2a_base64(data, newline=False).rstrip(b"=") == text else None


def _dearmored(text: str) -> bytes | None:
    """The binary age file in ``text``, armored exactly as age writes it, else ``None``."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if len(lines) < 3 or lines[0] != _BEGIN or lines[-1] != _END:
        return None
    body = lines[1:-1]
    if not 0 < len(body[-1]) <= _COLUMNS or any(len(line) != _COLUMNS for line in body[:-1]):
        return None
    joined = "".join(body).encode("ascii", "replace")
    try:
        data = binascii.a2b_base64(joined, strict_mode=True)
    except binascii.Error:
        return None
    return data if binascii.b2a_base64(data, newline=False) == joined else None


class _Malformed(Exception):
    """An X25519 stanza age refuses: the whole file is then left to ``pyrage``."""


class X25519Opener:
    """Opens age files addressed to one X25519 identity (see the module's text).

    Holds the identity's key in memory only, as the ``pyrage`` identity it stands beside.
    """

    __slots__ = ("_key", "_public")

    def __init__(self, key: X25519PrivateKey) -> None:
        self._key = key
        self._public = key.public_key().public_bytes_raw()

    @classmethod
    def for_identity(cls, secret_key: str, recipient: str) -> X25519Opener | None:
        """An opener for the identity ``secret_key`` (``AGE-SECRET-KEY-1…``) whose public key
        is ``recipient`` (``age1…``), or ``None`` when the two do not agree."""
        scalar = bech32_payload(secret_key, "age-secret-key-")
        public = bech32_payload(recipient, "age")
        if scalar is None or public is None or len(scalar) != 32:
            return None
        opener = cls(X25519PrivateKey.from_private_bytes(scalar))
        return opener if hmac.compare_digest(opener._public, public) else None

    def open(self, armored: str) -> bytes | None:
        """The plaintext of the armored age file ``armored``, or ``None`` when this opener
        cannot tell (another form, another recipient, or a file that does not authenticate:
        ``pyrage`` then decides)."""
        data = _dearmored(armored)
        if data is None:
            return None
        mac_at = data.find(_MAC_LINE)
        payload_at = mac_at + len(_MAC_LINE) + 44  # 43 base64 characters and a line feed
        if mac_at < 0 or data[payload_at - 1 : payload_at] != b"\n":
            return None
        mac = _unpadded_base64(data[mac_at + len(_MAC_LINE) : payload_at - 1])
        try:
            file_key = self._file_key(data[:mac_at].split(b"\n"))
        except _Malformed:
            return None
        if mac is None or file_key is None:
            return None
        header_key = _hkdf(file_key, b"", b"header")
        header = data[: mac_at + len(_MAC_LINE) - 1]  # through "---", as the MAC covers it
        if not hmac.compare_digest(hmac.digest(header_key, header, "sha256"), mac):
            return None
        nonce = data[payload_at : payload_at + _NONCE_SIZE]
        chunk = data[payload_at + _NONCE_SIZE :]
        if len(nonce) != _NONCE_SIZE or not _TAG_SIZE <= len(chunk) <= _CHUNK_SIZE + _TAG_SIZE:
            return None  # several chunks: left to pyrage
        payload_key = _hkdf(file_key, nonce, b"payload")
        try:
            return ChaCha20Poly1305(payload_key).decrypt(_LAST_CHUNK_NONCE, chunk, None)
        except InvalidTag:
            return None

    def _file_key(self, lines: list[bytes]) -> bytes | None:
        """The file key from the first X25519 stanza of the header ``lines`` that opens.

        Raises:
            _Malformed: an X25519 stanza is one age refuses.
        """
        if lines[0] != _VERSION_LINE:
            return None
        found: bytes | None = None
        at = 1
        while at < len(lines):
            line = lines[at]
            if _STANZA_LINE.fullmatch(line) is None:
                return None
            body_lines: list[bytes] = []
            at += 1
            while True:  # full lines of 64 columns, then a shorter (maybe empty) last one
                if at >= len(lines) or len(lines[at]) > _COLUMNS:
                    return None
                body_lines.append(lines[at])
                at += 1
                if len(body_lines[-1]) < _COLUMNS:
                    break
            body = _unpadded_base64(b"".join(body_lines))
            if body is None:
                return None
            arguments = line[3:].split(b" ")
            if found is None and arguments[0] == _X25519:
                found = self._unwrap(arguments[1:], body)
        return found

    def _unwrap(self, arguments: list[bytes], body: bytes) -> bytes | None:
        """The file key from an X25519 stanza, ``None`` if it is for another recipient.

        Raises:
            _Malformed: the stanza is one age refuses.
        """
        share = _unpadded_base64(arguments[0]) if len(arguments) == 1 else None
        if share is None or len(share) != 32 or len(body) != _FILE_KEY_SIZE + _TAG_SIZE:
            raise _Malformed
        try:
            secret = self._key.exchange(X25519PublicKey.from_public_bytes(share))
        except ValueError:  # a low-order share: the all-zero secret age refuses
            raise _Malformed from None
        wrapping_key = _hkdf(secret, share + self._public, _X25519_INFO)
        try:
            return ChaCha20Poly1305(wrapping_key).decrypt(_ZERO_NONCE, body, None)
        except InvalidTag:
            return None  # a stanza for another recipient
