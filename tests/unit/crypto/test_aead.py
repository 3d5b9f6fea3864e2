from __future__ import annotations

import base64
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from reconciler.crypto.aead import (
    RCN1,
    RCN2,
    CipherContext,
    FieldCipher,
    check_binding,
)
from reconciler.crypto.fingerprint import Fingerprinter
from reconciler.crypto.keyring import Keyring
from reconciler.errors import DecryptFailed, KeyUnavailable, SecretError
from reconciler.model.actual import SecretDoubt
from reconciler.model.sensitive import Sensitive

SECRET = "sk_test_EXAMPLE_not_a_real_key"
ROTATED = "sk_test_EXAMPLE_rotated_value"
CTX = CipherContext.integration("acme", "STRIPE", "PRODUCTION", "API_KEY", "api_key")
FP = Fingerprinter(os.urandom(32))
TOKEN = CipherContext.oauth_token("acme", 7, "access_token")


def _ring(*versions: int) -> Keyring:
    return Keyring({v: os.urandom(32) for v in versions})


def _cipher(*versions: int) -> FieldCipher:
    return FieldCipher(_ring(*versions), FP)


def _legacy(keyring: Keyring, version: int, plaintext: str, ctx: CipherContext) -> str:
    """An ``rcn1`` value as releases before ``rcn2`` wrote it for every column."""
    nonce = os.urandom(12)
    sealed = AESGCM(keyring.key(version, where="test")).encrypt(
        nonce, plaintext.encode(), ctx.aad()
    )
    return RCN1 + base64.b64encode(nonce + sealed).decode()


def test_round_trip_and_format() -> None:
    cipher = _cipher(1, 2)
    stored = cipher.encrypt(SECRET, CTX, FP(SECRET))
    assert stored.startswith(RCN2)
    assert SECRET not in stored
    assert cipher.active_version == 2
    plain = cipher.decrypt(stored, 2, CTX, FP(SECRET))
    assert isinstance(plain, Sensitive)
    assert plain.reveal() == SECRET
    assert SECRET not in repr(plain) and SECRET not in str(plain)
    assert check_binding(FP, stored, FP(SECRET), 2, CTX) is None


def test_nonce_is_random() -> None:
    cipher = _cipher(1)
    assert cipher.encrypt(SECRET, CTX, FP(SECRET)) != cipher.encrypt(SECRET, CTX, FP(SECRET))


def test_accepts_sensitive_plaintext_and_unicode() -> None:
    cipher = _cipher(1)
    value = Sensitive("pässwörd ✓")
    stored = cipher.encrypt(value, CTX, FP(value))
    assert cipher.decrypt(stored, 1, CTX, FP(value)).reveal() == "pässwörd ✓"


@pytest.mark.parametrize(
    "other",
    [
        CipherContext.integration("acme", "STRIPE", "SANDBOX", "API_KEY", "api_key"),
        CipherContext.integration("acme", "STRIPE", "PRODUCTION", "API_KEY", "api_secret"),
        CipherContext.integration("globex", "STRIPE", "PRODUCTION", "API_KEY", "api_key"),
        CipherContext.webhook("acme", "STRIPE", "PRODUCTION", "API_KEY", "api_key"),
        CipherContext.oauth_token("acme", 7, "access_token"),
    ],
    ids=["other-row", "other-column", "other-tenant", "other-table", "oauth"],
)
def test_ciphertext_bound_to_its_place(other: CipherContext) -> None:
    """Copied elsewhere together with its own fingerprint, a value is still refused."""
    cipher = _cipher(1)
    stored = cipher.encrypt(SECRET, CTX, FP(SECRET))
    fingerprint = FP(SECRET) if other.fingerprinted else None
    with pytest.raises(DecryptFailed) as info:
        cipher.decrypt(stored, 1, other, fingerprint)
    message = str(info.value)
    assert other.table in message and other.column in message
    assert f"tenant={other.tenant_id}" in message and f"row={other.row_key}" in message
    assert SECRET not in message and stored not in message
    if other.fingerprinted:
        assert check_binding(FP, stored, FP(SECRET), 1, other) is SecretDoubt.MISMATCH


def test_replayed_value_is_refused_and_detected_without_the_keyring() -> None:
    """An earlier value copied back next to the current fingerprint: both checks fail."""
    cipher = _cipher(1)
    earlier = cipher.encrypt(SECRET, CTX, FP(SECRET))
    current = FP(ROTATED)
    assert check_binding(FP, earlier, current, 1, CTX) is SecretDoubt.MISMATCH
    with pytest.raises(DecryptFailed) as info:
        cipher.decrypt(earlier, 1, CTX, current)
    message = str(info.value)
    assert "does not match its fingerprint" in message and "tenant=acme" in message
    assert SECRET not in message and earlier not in message and "\n" not in message


def test_swapped_values_of_two_columns_are_refused() -> None:
    cipher = _cipher(1)
    secret_ctx = CipherContext.integration("acme", "STRIPE", "PRODUCTION", "API_KEY", "api_secret")
    key = cipher.encrypt(SECRET, CTX, FP(SECRET))
    other = cipher.encrypt(ROTATED, secret_ctx, FP(ROTATED))
    # Ciphertexts swapped, fingerprints left in place.
    assert check_binding(FP, other, FP(SECRET), 1, CTX) is SecretDoubt.MISMATCH
    assert check_binding(FP, key, FP(ROTATED), 1, secret_ctx) is SecretDoubt.MISMATCH
    with pytest.raises(DecryptFailed):
        cipher.decrypt(other, 1, CTX, FP(SECRET))
    # Ciphertexts and fingerprints swapped together.
    assert check_binding(FP, other, FP(ROTATED), 1, CTX) is SecretDoubt.MISMATCH
    with pytest.raises(DecryptFailed):
        cipher.decrypt(other, 1, CTX, FP(ROTATED))


def test_binding_covers_the_key_version_and_the_tag() -> None:
    cipher = _cipher(1, 2)
    stored = cipher.encrypt(SECRET, CTX, FP(SECRET))
    assert check_binding(FP, stored, FP(SECRET), 1, CTX) is SecretDoubt.MISMATCH
    blob = bytearray(base64.b64decode(stored[len(RCN2) :]))
    blob[-1] ^= 1
    tampered = RCN2 + base64.b64encode(bytes(blob)).decode()
    assert check_binding(FP, tampered, FP(SECRET), 2, CTX) is SecretDoubt.MISMATCH
    with pytest.raises(DecryptFailed, match="does not match its fingerprint"):
        cipher.decrypt(tampered, 2, CTX, FP(SECRET))


def test_another_fingerprint_key_cannot_vouch_for_a_value() -> None:
    stored = _cipher(1).encrypt(SECRET, CTX, FP(SECRET))
    assert check_binding(Fingerprinter(os.urandom(32)), stored, FP(SECRET), 1, CTX) is (
        SecretDoubt.MISMATCH
    )


@pytest.mark.parametrize(
    ("stored", "fingerprint", "version"),
    [("rcn2:x", None, 1), (None, "f" * 64, 1), ("rcn2:x", "f" * 64, None), ("junk", "f", 1)],
    ids=["no-fingerprint", "no-ciphertext", "no-version", "malformed"],
)
def test_incomplete_rows_are_mismatches(
    stored: str | None, fingerprint: str | None, version: int | None
) -> None:
    assert check_binding(FP, stored, fingerprint, version, CTX) is SecretDoubt.MISMATCH


def test_empty_column_is_fine() -> None:
    assert check_binding(FP, None, None, None, CTX) is None


def test_encrypt_refuses_a_fingerprint_of_another_value() -> None:
    cipher = _cipher(1)
    with pytest.raises(SecretError, match="not the value's") as info:
        cipher.encrypt(SECRET, CTX, FP(ROTATED))
    assert SECRET not in str(info.value)
    with pytest.raises(SecretError):
        cipher.encrypt(SECRET, CTX, None)


def test_fingerprinted_column_without_fingerprint_is_refused() -> None:
    cipher = _cipher(1)
    stored = cipher.encrypt(SECRET, CTX, FP(SECRET))
    with pytest.raises(DecryptFailed, match="no fingerprint"):
        cipher.decrypt(stored, 1, CTX, None)


def test_oauth_tokens_stay_rcn1_bound_to_their_row() -> None:
    cipher = _cipher(1)
    stored = cipher.encrypt("token", TOKEN, None)
    assert stored.startswith(RCN1)
    assert cipher.decrypt(stored, 1, TOKEN, None).reveal() == "token"
    with pytest.raises(SecretError):
        cipher.encrypt("token", TOKEN, FP("token"))
    with pytest.raises(DecryptFailed, match="format"):
        cipher.decrypt(cipher.encrypt(SECRET, CTX, FP(SECRET)), 1, TOKEN, None)


def test_legacy_rcn1_reads_only_as_its_fingerprints_value() -> None:
    ring = _ring(1)
    cipher = FieldCipher(ring, FP)
    legacy = _legacy(ring, 1, SECRET, CTX)
    assert check_binding(FP, legacy, FP(SECRET), 1, CTX) is SecretDoubt.LEGACY
    assert cipher.decrypt(legacy, 1, CTX, FP(SECRET)).reveal() == SECRET
    # An earlier rcn1 value copied back next to a later fingerprint is refused.
    with pytest.raises(DecryptFailed, match="does not match its fingerprint") as info:
        cipher.decrypt(legacy, 1, CTX, FP(ROTATED))
    assert SECRET not in str(info.value)
    with pytest.raises(DecryptFailed, match="does not match its fingerprint"):
        cipher.reencrypt(legacy, 1, CTX, FP(ROTATED))
    # Re-encrypting upgrades a verified legacy value to rcn2.
    upgraded = cipher.reencrypt(legacy, 1, CTX, FP(SECRET))
    assert upgraded.startswith(RCN2)
    assert check_binding(FP, upgraded, FP(SECRET), 1, CTX) is None
    assert cipher.decrypt(upgraded, 1, CTX, FP(SECRET)).reveal() == SECRET


def test_aad_is_unambiguous() -> None:
    a = CipherContext("t", "c", "a/b", "c")
    b = CipherContext("t", "c", "a", "b/c")
    assert a.aad() != b.aad()
    assert a.aad("f") != b.aad("f") != a.aad()
    assert a.binding("f", 1) != b.binding("f", 1)


def test_wrong_key_same_version_fails() -> None:
    stored = _cipher(1).encrypt(SECRET, CTX, FP(SECRET))
    with pytest.raises(DecryptFailed):
        _cipher(1).decrypt(stored, 1, CTX, FP(SECRET))


def test_unknown_version_names_version_table_and_row() -> None:
    cipher = _cipher(1)
    stored = cipher.encrypt(SECRET, CTX, FP(SECRET))
    with pytest.raises(KeyUnavailable) as info:
        cipher.decrypt(stored, 5, CTX, FP(SECRET))
    message = str(info.value)
    assert "key version 5" in message
    assert "integration_configs.api_key" in message and "STRIPE/PRODUCTION/API_KEY" in message


@pytest.mark.parametrize(
    "stored",
    ["plaintext", RCN2 + "***", RCN2 + base64.b64encode(b"short").decode(), RCN1 + "***"],
    ids=["no-prefix", "bad-base64", "truncated", "bad-base64-rcn1"],
)
def test_malformed_values(stored: str) -> None:
    with pytest.raises(DecryptFailed) as info:
        _cipher(1).decrypt(stored, 1, CTX, FP(SECRET))
    assert stored not in str(info.value)


def test_tampered_value_fails() -> None:
    cipher = _cipher(1)
    blob = bytearray(base64.b64decode(cipher.encrypt(SECRET, CTX, FP(SECRET))[len(RCN2) :]))
    blob[15] ^= 1
    with pytest.raises(DecryptFailed):
        cipher.decrypt(RCN2 + base64.b64encode(bytes(blob)).decode(), 1, CTX, FP(SECRET))


def test_reencrypt_moves_to_active_version() -> None:
    old_ring = _ring(1)
    old = FieldCipher(old_ring, FP).encrypt(SECRET, CTX, FP(SECRET))
    new_ring = Keyring({1: old_ring.key(1, where="test"), 2: os.urandom(32)})
    cipher = FieldCipher(new_ring, FP)
    moved = cipher.reencrypt(old, 1, CTX, FP(SECRET))
    assert cipher.decrypt(moved, 2, CTX, FP(SECRET)).reveal() == SECRET
    with pytest.raises(DecryptFailed):
        cipher.decrypt(moved, 1, CTX, FP(SECRET))


def test_batch_helpers() -> None:
    cipher = _cipher(1)
    contexts = [CipherContext.oauth_token("acme", i, "access_token") for i in range(50)]
    stored = cipher.encrypt_many((f"token-{i}", ctx, None) for i, ctx in enumerate(contexts))
    plain = cipher.decrypt_many((s, 1, ctx, None) for s, ctx in zip(stored, contexts, strict=True))
    assert [p.reveal() for p in plain] == [f"token-{i}" for i in range(50)]
