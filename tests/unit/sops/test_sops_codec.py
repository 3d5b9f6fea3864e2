"""The ENC value codec, Go number/time formatting, AAD and the MAC hasher."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import math
import os
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.sops.codec import (
    VALUE_TYPES,
    CodecError,
    Comment,
    ValueCipher,
    aad_for,
    canonical_time_text,
    enc_type,
    format_rfc3339,
    format_time,
    go_format_float,
    split_enc,
    to_bytes,
)
from reconciler.sops.mac import MAC_ONLY_ENCRYPTED_SEED, MacHasher

KEY = bytes(range(32))
ENC_RE = re.compile(r"^ENC\[AES256_GCM,data:([^,]*),iv:([^,]+),tag:([^,]+),type:(\w+)\]$")


def _craft(plain: bytes, kind: str, aad: str, key: bytes = KEY) -> str:
    iv = os.urandom(32)
    sealed = AESGCM(key).encrypt(iv, plain, aad.encode())
    b64 = base64.b64encode
    return (
        f"ENC[AES256_GCM,data:{b64(sealed[:-16]).decode()},iv:{b64(iv).decode()},"
        f"tag:{b64(sealed[-16:]).decode()},type:{kind}]"
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (10.0, "10"),
        (1500.0, "1500"),
        (2.5, "2.5"),
        (0.1, "0.1"),
        (1e21, "1000000000000000000000"),
        (1.5e-7, "0.00000015"),
        (-0.0, "-0"),
        (-42.75, "-42.75"),
        (123456789.125, "123456789.125"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
    ],
)
def test_go_format_float(value: float, text: str) -> None:
    assert go_format_float(value) == text


@pytest.mark.parametrize(
    ("value", "data"),
    [
        ("päß", "päß".encode()),
        (True, b"True"),
        (False, b"False"),
        (0, b"0"),
        (-7, b"-7"),
        (3.14, b"3.14"),
        (datetime(2024, 1, 2, tzinfo=UTC), b"2024-01-02T00:00:00Z"),
        (
            datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=timezone(timedelta(hours=2))),
            b"2024-01-02T03:04:05.123+02:00",
        ),
        (Comment(" note"), b" note"),
    ],
)
def test_to_bytes_is_sops_to_bytes(value: Any, data: bytes) -> None:
    assert to_bytes(value) == data


def test_time_formats() -> None:
    moment = datetime(2026, 11, 24, 21, 48, 12, 500, tzinfo=timezone(-timedelta(hours=5)))
    assert format_rfc3339(moment) == "2026-11-24T21:48:12-05:00"
    assert format_time(moment) == "2026-11-24T21:48:12.0005-05:00"
    assert canonical_time_text("2024-01-02T03:04:05.120000000+00:00") == "2024-01-02T03:04:05.12Z"


@pytest.mark.parametrize(
    ("path", "aad"),
    [(("database", "password"), "database:password:"), (("secret",), "secret:"), ((), ":")],
)
def test_aad_is_keys_joined_with_trailing_colon(path: tuple[str, ...], aad: str) -> None:
    assert aad_for(path) == aad


@pytest.mark.parametrize(
    "value",
    ["hunter2", "", 42, -1, 2.5, 10.0, True, False, datetime(2024, 1, 2, tzinfo=UTC), Comment("c")],
)
def test_round_trip_keeps_type(value: Any) -> None:
    cipher = ValueCipher(KEY)
    enc = cipher.encrypt(value, "a:b:")
    if value == "":
        assert enc == ""
        return
    match = ENC_RE.match(enc)
    assert match is not None
    assert len(base64.b64decode(match[2])) == 32  # sops's 32-byte IV
    assert len(base64.b64decode(match[3])) == 16
    decrypted, mac_bytes = cipher.decrypt(enc, "a:b:")
    assert decrypted == value
    assert type(decrypted) is type(value)
    assert mac_bytes == to_bytes(value)
    assert enc_type(enc) == match[4]


def test_vector_value_decrypts_only_at_its_key_path() -> None:
    # basic.enc.yaml: database.password, data key from the vectors' manifest.
    key = bytes.fromhex("7e1d764c965bd8b90d94fd763481e5815e267365def40de473b285116ae12a05")
    enc = (
        "ENC[AES256_GCM,data:Cmee8ejPiA==,iv:MPDNZI3DovPD9sphpk+/kaUqD5nKANbQWGfGitZylsY=,"
        "tag:K56UikKNBFHtu7XERR5zhw==,type:str]"
    )
    assert ValueCipher(key).decrypt(enc, "database:password:") == ("s3cr3t!", b"s3cr3t!")
    with pytest.raises(CodecError, match="authentication failed"):
        ValueCipher(key).decrypt(enc, "password:")


@pytest.mark.parametrize(
    ("plain", "kind", "expected", "mac"),
    [
        (b"1", "bool", True, b"True"),
        (b"F", "bool", False, b"False"),
        (b"+007", "int", 7, b"7"),
        (b"1e3", "float", 1000.0, b"1000"),
        (b"2024-01-02T03:04:05.123456789Z", "time", None, b"2024-01-02T03:04:05.123456789Z"),
        (b"\x00\xff", "bytes", b"\x00\xff", b"\x00\xff"),
    ],
)
def test_decrypt_types_like_go(plain: bytes, kind: str, expected: Any, mac: bytes) -> None:
    value, mac_bytes = ValueCipher(KEY).decrypt(_craft(plain, kind, "k:"), "k:")
    if expected is not None:
        assert value == expected
    assert mac_bytes == mac


@pytest.mark.parametrize(
    ("enc", "problem"),
    [
        ("plaintext", "does not match sops' data format"),
        ("ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==]", "does not match"),
        ("ENC[AES256_GCM,data:!!,iv:AAAA,tag:AAAA,type:str]", "invalid base64 in the data field"),
        ("ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:nope]", "unknown value type"),
        ("ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]", "the iv is 1 bytes"),
        # cryptography refuses nonces outside 8..128 bytes with a ValueError: found by fuzzing.
        (f"ENC[AES256_GCM,data:AA==,iv:AAAA,tag:{'A' * 22}==,type:str]", "the iv is 3 bytes"),
        (f"ENC[AES256_GCM,data:AA==,iv:{'A' * 176},tag:{'A' * 22}==,type:str]", "iv is 132"),
        (f"ENC[AES256_GCM,data:AA==,iv:{'A' * 44},tag:AAAA,type:str]", "the tag is 3 bytes"),
        (f"ENC[AES256_GCM,data:AA==,iv:{'A' * 44},tag:{'A' * 22}==,type:sk_live_x]", "(not shown)"),
        ("ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str", "does not match"),
        ("ENC[AES256_GCM,data:AA==,iv:\u00e9,tag:AA==,type:str]", "invalid base64 in the iv"),
    ],
)
def test_malformed_values_are_refused(enc: str, problem: str) -> None:
    with pytest.raises(CodecError, match=re.escape(problem)):
        ValueCipher(KEY).decrypt(enc, "k:")


def test_wrong_aad_wrong_key_and_tampering_fail_authentication() -> None:
    enc = ValueCipher(KEY).encrypt("secret", "a:")
    tampered = enc.replace("data:", "data:A", 1).replace("data:A", "data:B", 1)
    for cipher, value, aad in [
        (ValueCipher(KEY), enc, "b:"),
        (ValueCipher(bytes(32)), enc, "a:"),
        (ValueCipher(KEY), tampered, "a:"),
    ]:
        with pytest.raises(CodecError) as info:
            cipher.decrypt(value, aad)
        assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    ("plain", "kind"),
    [(b"abc", "int"), (b"1_0", "float"), (b"yes", "bool"), (b"2024-01-02", "time")],
)
def test_bad_plaintext_for_its_type_is_refused(plain: bytes, kind: str) -> None:
    with pytest.raises(CodecError, match=f"decrypted {kind} value"):
        ValueCipher(KEY).decrypt(_craft(plain, kind, "k:"), "k:")


def test_stash_reuses_ciphertext_of_unchanged_values_only() -> None:
    enc = ValueCipher(KEY).encrypt("keep", "a:")
    stashing = ValueCipher(KEY, stash=True)
    stashing.decrypt(enc, "a:")
    assert stashing.encrypt("keep", "a:") == enc
    assert stashing.encrypt("changed", "a:") != enc
    assert stashing.encrypt("keep", "b:") != enc  # other path: other AAD
    assert ValueCipher(KEY).encrypt("keep", "a:") != enc  # no stash: fresh IV


def test_mac_seed_and_clear_values_under_mac_only_encrypted() -> None:
    assert hashlib.sha256(b"sops").digest() == MAC_ONLY_ENCRYPTED_SEED
    hasher = MacHasher(only_encrypted=True)
    hasher.add(b"clear", encrypted=False)
    hasher.add(b"secret", encrypted=True)
    expected = hashlib.sha512(MAC_ONLY_ENCRYPTED_SEED + b"secret").hexdigest().upper()
    assert hasher.hexdigest() == expected
    assert hasher.matches(expected)
    assert not hasher.matches(expected.lower())

    full = MacHasher()
    full.add(b"clear", encrypted=False)
    full.add(b"secret", encrypted=True)
    assert full.hexdigest() == hashlib.sha512(b"clearsecret").hexdigest().upper()


# --- malformed input: a CodecError, never another exception ------------------------------

_SOPS_ENC_RE = re.compile(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]")
_PIECES = st.lists(
    st.sampled_from([",iv:", ",tag:", ",type:", "]", "A", "=", "\n", ",", ":", "x", "é"]),
    max_size=14,
).map("".join)


@settings(max_examples=3000, deadline=None)
@given(_PIECES)
def test_split_enc_finds_the_groups_of_sops_expression(tail: str) -> None:
    value = "ENC[AES256_GCM,data:" + tail
    match = _SOPS_ENC_RE.match(value)
    assert split_enc(value) == (match.groups() if match else None)


def test_split_enc_takes_linear_time_on_repeated_separators() -> None:
    # A backtracking regex needs O(n^4) steps here: hours for these 300 kB.
    value = "ENC[AES256_GCM,data:" + ",iv:" * 20000 + ",tag:" * 20000 + ",type:" * 20000
    started = time.perf_counter()
    assert split_enc(value) is None
    assert split_enc(value + "]") is not None
    with pytest.raises(CodecError):
        ValueCipher(KEY).decrypt(value + "]", "k:")
    assert time.perf_counter() - started < 2


_B64_FIELD = st.one_of(
    st.binary(max_size=140).map(lambda b: base64.b64encode(b).decode()),
    st.text(max_size=10),
    st.sampled_from(["", "AAAA", "!!", "A" * 10000]),
)
_KINDS = st.one_of(st.sampled_from(sorted(VALUE_TYPES)), st.text(max_size=8))


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.builds(
            "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{}]{}".format,
            _B64_FIELD,
            _B64_FIELD,
            _B64_FIELD,
            _KINDS,
            st.sampled_from(["", "]", "\n]", "x"]),
        ),
        st.text(max_size=80).map(lambda t: "ENC[AES256_GCM,data:" + t),
        st.text(max_size=80),
    )
)
def test_any_string_decrypts_or_raises_codec_error(value: str) -> None:
    try:
        ValueCipher(KEY).decrypt(value, "k:")
    except CodecError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64) | st.text(max_size=40).map(str.encode), _KINDS)
def test_authentic_values_of_any_plaintext_and_type_decrypt_or_raise_codec_error(
    plain: bytes, kind: str
) -> None:
    """What a key holder can put in a value (any bytes, any type label) never crashes."""
    with contextlib.suppress(CodecError):
        ValueCipher(KEY).decrypt(_craft(plain, kind, "k:"), "k:")


def test_huge_int_plaintext_is_a_codec_error() -> None:
    with pytest.raises(CodecError, match="out of range"):
        ValueCipher(KEY).decrypt(_craft(b"9" * 5000, "int", "k:"), "k:")
