"""A service in Node.js, with nothing but its built-in ``crypto``, can read what the reconciler
stores and store an OAuth token the reconciler reads (``docs/stored-secrets.md``).

``node`` is required: without it these tests fail (CI installs it), because the point is to
prove the format works outside Python.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from reconciler.crypto.aead import CipherContext, FieldCipher
from reconciler.crypto.fingerprint import Fingerprinter
from reconciler.crypto.keyring import Keyring
from tests.e2e.workspace import Workspace, stripe_manifest
from tests.unit.crypto.test_stored_secret_vectors import load as load_vectors

SCRIPT = Path(__file__).with_name("stored_secrets.mjs")
API_KEY = "rk_live_" + "N0deInter0pKey1234567890"
SIGNING_SECRET = "whsec_" + "Q" * 32


def run_node(mode: str, payload: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    found = shutil.which("node")
    if found is None:
        pytest.fail("node (Node.js 18 or newer) is required for the interop tests; install it")
    return subprocess.run(
        [found, str(SCRIPT), mode],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def node(mode: str, payload: dict[str, Any]) -> dict[str, Any]:
    result = run_node(mode, payload)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def keyring_json(text: str) -> dict[str, str]:
    """``VERSION:BASE64[,...]`` as the script's ``{"VERSION": "BASE64"}``."""
    return dict(entry.split(":", 1) for entry in text.split(","))


def test_node_decrypts_every_committed_vector() -> None:
    data = load_vectors()
    fields = ("table", "column", "tenant", "row_key", "key_version", "fingerprint", "stored")
    out = node(
        "decrypt",
        {
            "keyring": data["keyring"],
            "fingerprint_key": data["fingerprint_key"],
            "items": [{k: v[k] for k in fields} for v in data["vectors"]],
        },
    )
    assert out["plaintexts"] == [v["plaintext"] for v in data["vectors"]]


def test_node_refuses_a_value_moved_to_another_row() -> None:
    data = load_vectors()
    vector = dict(data["vectors"][0])
    vector["row_key"] = "STRIPE/SANDBOX/API_KEY"
    payload = {
        "keyring": data["keyring"],
        "fingerprint_key": data["fingerprint_key"],
        "items": [vector],
    }
    result = run_node("decrypt", payload)
    assert result.returncode != 0 and "binding tag does not verify" in result.stderr


def test_node_reads_what_apply_stored_and_stores_a_token_the_reconciler_reads(
    tmp_path: Path, database_url: str
) -> None:
    ws = Workspace.create(tmp_path, database_url)
    hooks = {
        "billing-events": {
            "type": "INBOUND",
            "endpoint_url": "https://hooks.example.com/stripe",
            "auth_type": "SIGNATURE",
            "signing_secret": SIGNING_SECRET,
            "events": ["invoice.paid"],
        }
    }
    ws.write("acme", "stripe", stripe_manifest("acme", api_key=API_KEY, webhooks=hooks))
    applied = ws.run("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    keyring = keyring_json(ws.env["RECONCILER_KEYRING"])
    fingerprint_key = ws.env["RECONCILER_FINGERPRINT_KEY"]

    # 1. Node decrypts what the reconciler stored (rcn2, with its fingerprint and binding).
    ((tenant, platform, env, config_type, api_key, api_fp, version),) = ws.sql(
        "SELECT tenant_id, platform::text, environment::text, config_type::text, api_key, "
        "api_key_fingerprint, encryption_key_version FROM integration_configs"
    )
    ((name, secret, secret_fp, hook_version),) = ws.sql(
        "SELECT name, signing_secret, signing_secret_fingerprint, encryption_key_version "
        "FROM webhook_configurations"
    )
    assert api_key.startswith("rcn2:") and secret.startswith("rcn2:")
    out = node(
        "decrypt",
        {
            "keyring": keyring,
            "fingerprint_key": fingerprint_key,
            "items": [
                {
                    "table": "integration_configs",
                    "column": "api_key",
                    "tenant": tenant,
                    "row_key": f"{platform}/{env}/{config_type}",
                    "key_version": version,
                    "fingerprint": api_fp,
                    "stored": api_key,
                },
                {
                    "table": "webhook_configurations",
                    "column": "signing_secret",
                    "tenant": tenant,
                    "row_key": f"{platform}/{env}/{name}",
                    "key_version": hook_version,
                    "fingerprint": secret_fp,
                    "stored": secret,
                },
            ],
        },
    )
    assert out["plaintexts"] == [API_KEY, SIGNING_SECRET]

    # 2. The OAuth flow, in Node: a row is created, its tokens encrypted for that row.
    ((token_id, token_version),) = ws.sql(
        "INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id, "
        "stripe_livemode, created_by) VALUES ('acme', 'STRIPE', '', 'acct_node', true, "
        "'node-service') RETURNING id, encryption_key_version"
    )
    tokens = {"access_token": "sk_acct_from_node_é", "refresh_token": "rt_from_node"}
    stored = node(
        "encrypt-token",
        {
            "keyring": keyring,
            "items": [
                {
                    "tenant": "acme",
                    "id": token_id,
                    "column": column,
                    "key_version": token_version,
                    "token": token,
                }
                for column, token in tokens.items()
            ],
        },
    )["stored"]
    ws.sql(
        "UPDATE oauth_tokens SET access_token = %s, refresh_token = %s WHERE id = %s",
        *stored,
        token_id,
    )

    # The reconciler reads it: its own cipher decrypts it, `keys status` finds no legacy
    # token, and `keys rotate` re-encrypts it under a new key version.
    cipher = FieldCipher(
        Keyring({int(v): base64.b64decode(k) for v, k in keyring.items()}),
        Fingerprinter(base64.b64decode(fingerprint_key)),
    )
    for (column, token), value in zip(tokens.items(), stored, strict=True):
        ctx = CipherContext.oauth_token("acme", token_id, column)
        assert cipher.decrypt(value, token_version, ctx, None).reveal() == token
    status = ws.run("keys", "status")
    assert status.returncode == 0, status.stderr
    assert "Every stored secret is under the active key." in status.stdout
    assert "legacy" not in status.stdout.lower()

    new_key = base64.b64encode(os.urandom(32)).decode()
    ws.env["RECONCILER_KEYRING"] += f",2:{new_key}"
    rotated = ws.run("keys", "rotate")
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    ((access, refresh, now_version),) = ws.sql(
        "SELECT access_token, refresh_token, encryption_key_version FROM oauth_tokens"
    )
    assert now_version == 2 and access != stored[0]
    rotated_cipher = FieldCipher(
        Keyring({1: base64.b64decode(keyring["1"]), 2: base64.b64decode(new_key)}),
        Fingerprinter(base64.b64decode(fingerprint_key)),
    )
    assert [
        rotated_cipher.decrypt(v, 2, CipherContext.oauth_token("acme", token_id, c), None).reveal()
        for c, v in (("access_token", access), ("refresh_token", refresh))
    ] == list(tokens.values())
