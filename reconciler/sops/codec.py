"""The SOPS value codec: ``ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`` strings.

Every leaf value sops encrypts becomes one of these strings (sops ``aes/cipher.go``):
AES-256-GCM under the file's data key with a **32-byte** IV, the 16-byte tag stored apart
from the ciphertext, standard base64 with padding, and a ``type`` that says how to read the
plaintext back. The plaintext bytes are :func:`to_bytes` of the typed value, which is also
what the MAC hashes (sops ``ToBytes``), so the two must never drift apart.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

IV_SIZE: Final = 32
"""sops uses 32-byte GCM nonces, not the usual 12."""

TAG_SIZE: Final = 16

IV_SIZES: Final = range(8, 129)
"""The IV lengths AES-GCM is decrypted with here. sops (Go) accepts any non-empty IV and
always writes 32 bytes; ``cryptography`` takes 8 to 128, so a value outside is refused."""

_ENC_PREFIX: Final = "ENC[AES256_GCM,data:"
ENC_MARK: Final = "ENC["
"""How every encrypted value starts. A string starting with it is never plaintext: it is
decrypted, or refused, but never stored, used or encrypted as if it were a value."""
_INT_RE: Final = re.compile(r"^[+-]?[0-9]+$")
_WORD_RE: Final = re.compile(r"^[a-z0-9]{1,16}$")
_GO_TRUE: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE: Final = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_RFC3339_RE: Final = re.compile(
    r"^(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:\.(?P<frac>[0-9]+))?(?P<zone>[Zz]|[+-][0-9]{2}:[0-9]{2})$"
)

VALUE_TYPES: Final = frozenset({"str", "int", "float", "bool", "time", "comment", "bytes"})


class CodecError(ValueError):
    """A value is not a well-formed ENC string, or does not authenticate.

    The message describes the problem only; callers add the file and key path. It never
    contains plaintext.
    """


@dataclass(frozen=True, slots=True)
class Comment:
    """A comment decrypted from a ``type:comment`` value (text without the leading ``#``)."""

    text: str


def is_enc_value(value: object) -> bool:
    """True when ``value`` is a string in the ENC format (cheap prefix test, no decoding)."""
    return isinstance(value, str) and value.startswith(_ENC_PREFIX)


def split_enc(value: str) -> tuple[str, str, str, str] | None:
    """The ``(data, iv, tag, type)`` fields of an ENC string, or ``None`` if it has none.

    The same groups as sops' expression ``^ENC\\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),
    type:(.+)\\]`` (anchored at the start only, greedy groups, ``.`` stops at a newline),
    found in linear time: a backtracking regex takes hours on a few kilobytes of repeated
    separators, and values come from files anyone may have written.
    """
    if not value.startswith(_ENC_PREFIX):
        return None
    start = len(_ENC_PREFIX)
    end = value.find("\n")
    line = value if end < 0 else value[:end]
    # Greedy groups, last to first: ``type`` runs to the last ``]``; each earlier separator
    # is its last occurrence that still leaves every later group at least one character.
    # (Every bound is checked first: a negative end would count from the end of the line.)
    close = line.rfind("]")
    type_at = line.rfind(",type:", start, close - 1) if close > start else -1
    tag_at = line.rfind(",tag:", start, type_at - 1) if type_at > start else -1
    iv_at = line.rfind(",iv:", start + 1, tag_at - 1) if tag_at > start else -1
    if iv_at < 0:
        return None
    return (
        line[start:iv_at],
        line[iv_at + len(",iv:") : tag_at],
        line[tag_at + len(",tag:") : type_at],
        line[type_at + len(",type:") : close],
    )


def enc_type(value: str) -> str | None:
    """The ``type:`` of an ENC string without decrypting it; ``None`` if not well-formed."""
    fields = split_enc(value)
    return fields[3] if fields else None


def go_format_float(value: float) -> str:
    """Go ``strconv.FormatFloat(v, 'f', -1, 64)``: shortest round-trip digits, no exponent."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)  # Python's repr is also the shortest round-trip form
    if "e" in text:
        text = format(Decimal(text), "f")
    return text[:-2] if text.endswith(".0") else text


def format_time(value: datetime) -> str:
    """Go ``time.Time.MarshalText`` (RFC 3339 with nanoseconds, trailing zeros trimmed)."""
    out = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        out += "." + f"{value.microsecond:06d}".rstrip("0")
    return out + _format_offset(value)


def format_rfc3339(value: datetime) -> str:
    """Go ``time.RFC3339``: seconds precision, ``Z`` for a zero offset."""
    return value.strftime("%Y-%m-%dT%H:%M:%S") + _format_offset(value)


def _format_offset(value: datetime) -> str:
    offset = value.utcoffset()
    if offset is None or offset == timedelta(0):
        return "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


def parse_rfc3339(text: str) -> datetime:
    """Parse RFC 3339 as Go's ``time.Parse(time.RFC3339, …)``; raise ``ValueError``."""
    match = _RFC3339_RE.match(text)
    if not match:
        raise ValueError("not an RFC 3339 timestamp")
    frac = (match["frac"] or "")[:6].ljust(6, "0")
    zone = match["zone"]
    tz = UTC
    if zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    parsed = datetime.fromisoformat(f"{match['date']}T{match['time']}")
    return parsed.replace(microsecond=int(frac), tzinfo=tz)


def canonical_time_text(text: str) -> str:
    """``MarshalText(UnmarshalText(text))`` without losing nanoseconds Python cannot hold."""
    match = _RFC3339_RE.match(text)
    if not match:
        raise ValueError("not an RFC 3339 timestamp")
    frac = (match["frac"] or "").rstrip("0")
    zone = match["zone"]
    if zone in ("Z", "z", "+00:00", "-00:00"):
        zone = "Z"
    return f"{match['date']}T{match['time']}" + (f".{frac}" if frac else "") + zone


def to_bytes(value: Any) -> bytes:
    """sops ``ToBytes``: the bytes a value is encrypted as and hashed into the MAC as."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bool):  # before int: bool is an int subclass
        return b"True" if value else b"False"
    if isinstance(value, int):
        return str(value).encode("ascii")
    if isinstance(value, float):
        return go_format_float(value).encode("ascii")
    if isinstance(value, datetime):
        return format_time(value).encode("ascii")
    if isinstance(value, bytes):
        return value
    if isinstance(value, Comment):
        return value.text.encode("utf-8")
    raise TypeError(f"cannot encrypt a value of type {type(value).__name__}")


def type_tag(value: Any) -> str:
    """The ENC ``type:`` sops writes for a value (never ``bytes``: see the format notes)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, datetime):
        return "time"
    if isinstance(value, Comment):
        return "comment"
    if isinstance(value, str | bytes):
        return "str"
    raise TypeError(f"cannot encrypt a value of type {type(value).__name__}")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, field: str) -> bytes:
    # base64.b64decode(text, validate=True) without its wrapper (three fields per value).
    try:
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, ValueError):
        raise CodecError(f"invalid base64 in the {field} field") from None


def _type_name(kind: str) -> str:
    """An unknown ``type:`` for a message: shown only when it is a short word (the field of
    a malformed value can hold anything, a pasted secret included)."""
    return repr(kind) if _WORD_RE.match(kind) else "(not shown)"


def _from_plaintext(plain: bytes, kind: str) -> tuple[Any, bytes]:
    """Type a decrypted plaintext; return the value and the bytes the MAC hashes for it."""
    if kind == "bytes":
        return plain, plain
    try:
        text = plain.decode("utf-8")
    except UnicodeDecodeError:
        raise CodecError("decrypted value is not UTF-8") from None
    if kind == "str":
        return text, plain
    if kind == "comment":
        return Comment(text), plain
    if kind == "int":
        if not _INT_RE.match(text):
            raise CodecError("decrypted int value is not an integer")
        try:
            number = int(text)
        except ValueError:  # more digits than Python converts (and than a Go int holds)
            raise CodecError("decrypted int value is out of range") from None
        return number, str(number).encode("ascii")
    if kind == "float":
        if "_" in text or text != text.strip():
            raise CodecError("decrypted float value is not a number")
        try:
            real = float(text)
        except ValueError:
            raise CodecError("decrypted float value is not a number") from None
        return real, go_format_float(real).encode("ascii")
    if kind == "bool":
        if text in _GO_TRUE:
            return True, b"True"
        if text in _GO_FALSE:
            return False, b"False"
        raise CodecError("decrypted bool value is not a boolean")
    if kind == "time":
        try:
            return parse_rfc3339(text), canonical_time_text(text).encode("ascii")
        except ValueError:
            raise CodecError("decrypted time value is not an RFC 3339 timestamp") from None
    raise CodecError(f"unknown value type {kind!r}")


class ValueCipher:
    """AES-256-GCM over ENC strings under one data key.

    One instance per file: the key schedule is set up once. When ``stash`` is enabled, every
    value decrypted is remembered by (AAD, type, plaintext), and encrypting the same
    plaintext at the same path again returns the old string unchanged, so re-encrypting a
    file only changes the values that changed (sops does the same when it edits a file).
    """

    __slots__ = ("_aead", "_stash")

    def __init__(self, data_key: bytes, *, stash: bool = False) -> None:
        if len(data_key) != 32:
            raise CodecError("the data key must be 32 bytes")
        self._aead = AESGCM(data_key)
        self._stash: dict[tuple[str, str, bytes], str] | None = {} if stash else None

    def decrypt(self, value: str, aad: str) -> tuple[Any, bytes]:
        """Decrypt an ENC string; return the typed value and its MAC bytes.

        Any string is accepted as input: whatever is wrong with it is a :class:`CodecError`,
        never another exception.

        Raises:
            CodecError: not an ENC string, bad base64, unknown type, an IV or tag of the wrong
                size, a plaintext that does not read as its type, or authentication failed.
        """
        if value == "":
            return "", b""
        fields = split_enc(value)
        if fields is None:
            raise CodecError("value does not match sops' data format")
        kind = fields[3]
        if kind not in VALUE_TYPES:
            raise CodecError(f"unknown value type {_type_name(kind)}")
        data = _unb64(fields[0], "data")
        iv = _unb64(fields[1], "iv")
        tag = _unb64(fields[2], "tag")
        if len(iv) not in IV_SIZES:
            raise CodecError(
                f"the iv is {len(iv)} bytes; sops writes {IV_SIZE} (8 to 128 can be read)"
            )
        if len(tag) != TAG_SIZE:
            raise CodecError(f"the tag is {len(tag)} bytes; it must be {TAG_SIZE}")
        try:
            # surrogatepass: a JSON key may hold a lone surrogate; it fails to authenticate.
            plain = self._aead.decrypt(iv, data + tag, aad.encode("utf-8", "surrogatepass"))
        except InvalidTag:
            raise CodecError(
                "authentication failed (wrong key, tampered value, or value moved)"
            ) from None
        except (ValueError, OverflowError) as exc:  # sizes the AEAD refuses
            raise CodecError(f"cannot decrypt the value: {exc}") from None
        typed, mac_bytes = _from_plaintext(plain, kind)
        if self._stash is not None:
            self._stash[(aad, kind, plain)] = value
        return typed, mac_bytes

    def encrypt(self, value: Any, aad: str) -> str:
        """Encrypt a typed value as an ENC string (``""`` stays ``""``, as in sops)."""
        if value == "" and isinstance(value, str):
            return ""
        kind = type_tag(value)
        plain = to_bytes(value)
        if self._stash is not None:
            previous = self._stash.get((aad, kind, plain))
            if previous is not None:
                return previous
        iv = os.urandom(IV_SIZE)
        sealed = self._aead.encrypt(iv, plain, aad.encode("utf-8"))
        data, tag = sealed[:-TAG_SIZE], sealed[-TAG_SIZE:]
        return f"ENC[AES256_GCM,data:{_b64(data)},iv:{_b64(iv)},tag:{_b64(tag)},type:{kind}]"


def aad_for(path: tuple[str, ...]) -> str:
    """The AAD of a value: its mapping keys (no list indices) joined with ``:``, plus ``:``."""
    return ":".join(path) + ":"
