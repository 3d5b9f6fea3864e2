"""The committed stored-secret test vectors (``tests/fixtures/stored-secrets/vectors.json``).

They document the formats of ``docs/stored-secrets.md`` with known keys (made for the tests
only, never used anywhere else) so that a service in another language can check its own
implementation. These tests keep them true: each vector decrypts with the reconciler's own
cipher to its plaintext, and is refused in any other place.

Regenerate (new random nonces, same keys and plaintexts) with
``python -m tests.unit.crypto.test_stored_secret_vectors``.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from reconciler.crypto.aead import RCN1, CipherContext, FieldCipher
from reconciler.crypto.fingerprint import Fingerprinter
from reconciler.crypto.keyring import Keyring
from reconciler.errors import DecryptFailed

VECTORS = Path(__file__).parents[2] / "fixtures" / "stored-secrets" / "vectors.json"

# Test-only keys: recognisable patterns, published with the vectors.
KEYS = {1: bytes(range(32)), 2: bytes(range(32, 64))}
FINGERPRINT_KEY = b"reconciler test vectors only!!!!"

CASES: list[dict[str, Any]] = [
    {
        "description": "integration API key (rcn2), key version 2",
        "table": "integration_configs",
        "column": "api_key",
        "tenant": "acme-robotics",
        "row_key": "STRIPE/PRODUCTION/API_KEY",
        "key_version": 2,
        "plaintext": "rk_test_51VectorOnlyNotARealKey",
    },
    {
        "description": "webhook signing secret (rcn2), key version 1, non-ASCII tenant and value",
        "table": "webhook_configurations",
        "column": "signing_secret",
        "tenant": "société-générale",
        "row_key": "HUBSPOT/SANDBOX/contact-events",
        "key_version": 1,
        "plaintext": 'whsec_ünïcødé/"quoted"',
    },
    {
        "description": "integration API secret written before rcn2 (legacy rcn1 form)",
        "table": "integration_configs",
        "column": "api_secret",
        "tenant": "acme-robotics",
        "row_key": "QUICKBOOKS/STAGING/OAUTH",
        "key_version": 1,
        "plaintext": "qb-client-secret-vector",
        "legacy": True,
    },
    {
        "description": "OAuth access token (rcn1) of oauth_tokens row 42, key version 2",
        "table": "oauth_tokens",
        "column": "access_token",
        "tenant": "acme-robotics",
        "row_key": "42",
        "key_version": 2,
        "plaintext": "sk_acct_access_vector",
    },
]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _cipher(version: int) -> FieldCipher:
    # A keyring whose active version is ``version``, so encrypt() uses it.
    keys = {v: k for v, k in KEYS.items() if v <= version}
    return FieldCipher(Keyring(keys), Fingerprinter(FINGERPRINT_KEY))


def _context(case: dict[str, Any]) -> CipherContext:
    return CipherContext(case["table"], case["column"], case["tenant"], case["row_key"])


def generate() -> dict[str, Any]:
    """Fresh vectors for :data:`CASES` (random nonces)."""
    fingerprinter = Fingerprinter(FINGERPRINT_KEY)
    vectors = []
    for case in CASES:
        ctx = _context(case)
        cipher = _cipher(case["key_version"])
        fingerprint = fingerprinter.fingerprint(case["plaintext"]) if ctx.fingerprinted else None
        if case.get("legacy"):
            nonce = os.urandom(12)
            sealed = AESGCM(KEYS[case["key_version"]]).encrypt(
                nonce, case["plaintext"].encode(), ctx.aad()
            )
            stored = RCN1 + _b64(nonce + sealed)
        else:
            stored = cipher.encrypt(case["plaintext"], ctx, fingerprint)
        vector = {k: v for k, v in case.items() if k != "legacy"}
        rcn2 = stored.startswith("rcn2:")
        # The intermediate values, to debug an implementation against.
        vector["aad"] = ctx.aad(fingerprint if rcn2 else None).decode("utf-8")
        if rcn2:
            assert fingerprint is not None
            binding = ctx.binding(fingerprint, case["key_version"])
            vector["binding_json"] = binding.decode("utf-8")
        vectors.append({**vector, "fingerprint": fingerprint, "stored": stored})
    return {
        "comment": "Test vectors of docs/stored-secrets.md. The keys are for tests only.",
        "keyring": {str(v): _b64(k) for v, k in KEYS.items()},
        "fingerprint_key": _b64(FINGERPRINT_KEY),
        "vectors": vectors,
    }


def load() -> dict[str, Any]:
    """The committed vectors."""
    data: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))
    return data


def test_the_committed_keys_are_the_test_keys() -> None:
    data = load()
    assert data["keyring"] == {str(v): _b64(k) for v, k in KEYS.items()}
    assert data["fingerprint_key"] == _b64(FINGERPRINT_KEY)
    assert [v["description"] for v in data["vectors"]] == [c["description"] for c in CASES]


@pytest.mark.parametrize("index", range(len(CASES)))
def test_each_vector_decrypts_with_the_reconcilers_cipher(index: int) -> None:
    vector = load()["vectors"][index]
    cipher = FieldCipher(Keyring(KEYS), Fingerprinter(FINGERPRINT_KEY))
    ctx = _context(vector)
    rcn2 = ctx.fingerprinted and not CASES[index].get("legacy")
    assert vector["stored"].startswith("rcn2:" if rcn2 else "rcn1:")
    assert vector["aad"].encode("utf-8") == ctx.aad(vector["fingerprint"] if rcn2 else None)
    plain = cipher.decrypt(vector["stored"], vector["key_version"], ctx, vector["fingerprint"])
    assert plain.reveal() == vector["plaintext"]
    # Anywhere else (another row) it is refused.
    moved = CipherContext(ctx.table, ctx.column, ctx.tenant_id, ctx.row_key + "x")
    with pytest.raises(DecryptFailed):
        cipher.decrypt(vector["stored"], vector["key_version"], moved, vector["fingerprint"])


if __name__ == "__main__":
    VECTORS.parent.mkdir(parents=True, exist_ok=True)
    VECTORS.write_text(
        json.dumps(generate(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"wrote {VECTORS}")
