from __future__ import annotations

import base64
import os

import pytest

from reconciler.crypto.aead import PREFIX, CipherContext, FieldCipher
from reconciler.crypto.keyring import Keyring
from reconciler.errors import DecryptFailed, KeyUnavailable
from reconciler.model.sensitive import Sensitive

SECRET = "sk_test_EXAMPLE_not_a_real_key"
CTX = CipherContext.integration("acme", "STRIPE", "PRODUCTION", "API_KEY", "api_key")


def _ring(*versions: int) -> Keyring:
    return Keyring({v: os.urandom(32) for v in versions})


def test_round_trip_and_format() -> None:
    cipher = FieldCipher(_ring(1, 2))
    stored = cipher.encrypt(SECRET, CTX)
    assert stored.startswith(PREFIX)
    assert SECRET not in stored
    assert cipher.active_version == 2
    plain = cipher.decrypt(stored, 2, CTX)
    assert isinstance(plain, Sensitive)
    assert plain.reveal() == SECRET
    assert SECRET not in repr(plain) and SECRET not in str(plain)


def test_nonce_is_random() -> None:
    cipher = FieldCipher(_ring(1))
    assert cipher.encrypt(SECRET, CTX) != cipher.encrypt(SECRET, CTX)


def test_accepts_sensitive_plaintext_and_unicode() -> None:
    cipher = FieldCipher(_ring(1))
    assert cipher.decrypt(cipher.encrypt(Sensitive("pässwörd ✓"), CTX), 1, CTX).reveal() == (
        "pässwörd ✓"
    )


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
    cipher = FieldCipher(_ring(1))
    stored = cipher.encrypt(SECRET, CTX)
    with pytest.raises(DecryptFailed) as info:
        cipher.decrypt(stored, 1, other)
    message = str(info.value)
    assert other.table in message and other.column in message
    assert f"tenant={other.tenant_id}" in message and f"row={other.row_key}" in message
    assert SECRET not in message and stored not in message


def test_aad_is_unambiguous() -> None:
    a = CipherContext("t", "c", "a/b", "c")
    b = CipherContext("t", "c", "a", "b/c")
    assert a.aad() != b.aad()


def test_wrong_key_same_version_fails() -> None:
    stored = FieldCipher(_ring(1)).encrypt(SECRET, CTX)
    with pytest.raises(DecryptFailed):
        FieldCipher(_ring(1)).decrypt(stored, 1, CTX)


def test_unknown_version_names_version_table_and_row() -> None:
    cipher = FieldCipher(_ring(1))
    stored = cipher.encrypt(SECRET, CTX)
    with pytest.raises(KeyUnavailable) as info:
        cipher.decrypt(stored, 5, CTX)
    message = str(info.value)
    assert "key version 5" in message
    assert "integration_configs.api_key" in message and "STRIPE/PRODUCTION/API_KEY" in message


@pytest.mark.parametrize(
    "stored",
    ["plaintext", PREFIX + "***", PREFIX + base64.b64encode(b"short").decode()],
    ids=["no-prefix", "bad-base64", "truncated"],
)
def test_malformed_values(stored: str) -> None:
    with pytest.raises(DecryptFailed) as info:
        FieldCipher(_ring(1)).decrypt(stored, 1, CTX)
    assert stored not in str(info.value)


def test_tampered_value_fails() -> None:
    cipher = FieldCipher(_ring(1))
    blob = bytearray(base64.b64decode(cipher.encrypt(SECRET, CTX)[len(PREFIX) :]))
    blob[15] ^= 1
    with pytest.raises(DecryptFailed):
        cipher.decrypt(PREFIX + base64.b64encode(bytes(blob)).decode(), 1, CTX)


def test_reencrypt_moves_to_active_version() -> None:
    old_ring = _ring(1)
    old = FieldCipher(old_ring).encrypt(SECRET, CTX)
    new_ring = Keyring({1: old_ring.key(1, where="test"), 2: os.urandom(32)})
    cipher = FieldCipher(new_ring)
    moved = cipher.reencrypt(old, 1, CTX)
    assert cipher.decrypt(moved, 2, CTX).reveal() == SECRET
    with pytest.raises(DecryptFailed):
        cipher.decrypt(moved, 1, CTX)


def test_batch_helpers() -> None:
    cipher = FieldCipher(_ring(1))
    contexts = [CipherContext.oauth_token("acme", i, "access_token") for i in range(50)]
    stored = cipher.encrypt_many((f"token-{i}", ctx) for i, ctx in enumerate(contexts))
    plain = cipher.decrypt_many((s, 1, ctx) for s, ctx in zip(stored, contexts, strict=True))
    assert [p.reveal() for p in plain] == [f"token-{i}" for i in range(50)]
