"""A live database adopted with tokens the application wrote in its own forms.

The application's OAuth flow wrote ``oauth_tokens`` before the reconciler existed: some rows
in plaintext, some AES-256-GCM-encrypted with its own key in the Node.js layouts. After
``db upgrade`` the seed's data step marks them all key version 1. ``keys status`` must call
them legacy, ``keys rotate`` must leave them and succeed, and ``keys adopt-tokens`` must
bring them into ``rcn1`` with their values intact and the audit chain whole.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from reconciler.crypto.aead import CipherContext, FieldCipher
from reconciler.crypto.fingerprint import Fingerprinter
from reconciler.crypto.keyring import Keyring
from reconciler.crypto.legacy_tokens import (
    LAYOUTS,
    LegacyTokenError,
    is_managed_token,
    layout,
)
from tests.e2e.workspace import Workspace

APP_KEY = os.urandom(32)
OTHER_KEY = os.urandom(32)


def node_colon(plain: str, key: bytes = APP_KEY, iv_len: int = 16) -> str:
    """What ``iv.toString('hex') + ':' + tag.toString('hex') + ':' + enc`` stores."""
    iv = os.urandom(iv_len)
    sealed = AESGCM(key).encrypt(iv, plain.encode(), None)
    return f"{iv.hex()}:{sealed[-16:].hex()}:{sealed[:-16].hex()}"


def node_blob(plain: str, key: bytes = APP_KEY) -> str:
    """``Buffer.concat([iv, cipher.update(t), cipher.final(), cipher.getAuthTag()])``."""
    iv = os.urandom(12)
    return base64.b64encode(iv + AESGCM(key).encrypt(iv, plain.encode(), None)).decode()


PLAIN = {
    "stripe-plain": "sk_live_" + "P" * 24,
    "hubspot-plain": "CJSP5qf1KhICAQEYs-gDIIGOBii1hQIyGQAf3xBK",
}
ENCRYPTED = {
    "stripe-node": "sk_live_" + "N" * 24,
    "quickbooks-node": "eyJhbGciOiJIUzI1NiJ9.quickbooks-access.signature",
    "quickbooks-refresh": "AB11" + "R" * 40,
}


def _live_database(ws: Workspace) -> dict[int, tuple[str, str | None]]:
    """The application's table and tokens, then the reconciler's upgrade; id -> originals."""
    assert ws.run("db", "upgrade", "baseline").returncode == 0
    rows = [
        ("acme", "STRIPE", PLAIN["stripe-plain"], None),
        ("acme", "HUBSPOT", PLAIN["hubspot-plain"], None),
        ("globex", "STRIPE", node_colon(ENCRYPTED["stripe-node"]), None),
        (
            "globex",
            "QUICKBOOKS",
            node_blob(ENCRYPTED["quickbooks-node"]),
            node_colon(ENCRYPTED["quickbooks-refresh"], iv_len=12),
        ),
    ]
    for tenant, platform, access, refresh in rows:
        ws.sql(
            "INSERT INTO oauth_tokens (tenant_id, platform, access_token, refresh_token)"
            " VALUES (%s, %s, %s, %s)",
            tenant,
            platform,
            access,
            refresh,
        )
    upgraded = ws.run("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert ws.sql("SELECT DISTINCT encryption_key_version FROM oauth_tokens") == [(1,)]
    originals = {}
    for (token_id, tenant), (_, _, access, refresh) in zip(
        ws.sql("SELECT id, tenant_id FROM oauth_tokens ORDER BY id"), rows, strict=True
    ):
        del tenant
        originals[token_id] = (access, refresh)
    return originals


def _cipher(ws: Workspace) -> FieldCipher:
    keyring = Keyring.parse(ws.env["RECONCILER_KEYRING"], source="test")
    fingerprint = Fingerprinter(base64.b64decode(ws.env["RECONCILER_FINGERPRINT_KEY"]))
    return FieldCipher(keyring, fingerprint)


def _decrypted(ws: Workspace) -> dict[int, tuple[str, str | None]]:
    cipher = _cipher(ws)
    out: dict[int, tuple[str, str | None]] = {}
    for token_id, tenant, version, access, refresh in ws.sql(
        "SELECT id, tenant_id, encryption_key_version, access_token, refresh_token"
        " FROM oauth_tokens ORDER BY id"
    ):
        values = []
        for column, stored in (("access_token", access), ("refresh_token", refresh)):
            ctx = CipherContext.oauth_token(tenant, token_id, column)
            values.append(
                None if stored is None else cipher.decrypt(stored, version, ctx, None).reveal()
            )
        assert values[0] is not None
        out[token_id] = (values[0], values[1])
    return out


@pytest.fixture
def live(
    tmp_path: Path, empty_database_url: str
) -> tuple[Workspace, dict[int, tuple[str, str | None]]]:
    ws = Workspace.create(tmp_path, empty_database_url)
    ws.env["RECONCILER_LEGACY_TOKEN_KEY"] = APP_KEY.hex()
    return ws, _live_database(ws)


def test_legacy_tokens_status_rotate_adopt(
    live: tuple[Workspace, dict[int, tuple[str, str | None]]],
) -> None:
    ws, originals = live
    status = ws.run("keys", "status")
    assert status.returncode == 0, status.stderr
    lines = [line.split() for line in status.stdout.splitlines()]
    assert [
        "oauth_tokens.access_token",
        "legacy",
        "4",
        "not",
        "in",
        "the",
        "managed",
        "format",
    ] in lines
    assert [
        "oauth_tokens.refresh_token",
        "legacy",
        "1",
        "not",
        "in",
        "the",
        "managed",
        "format",
    ] in lines
    assert not any(line[:2] == ["oauth_tokens", "1"] for line in lines), status.stdout
    assert "5 legacy OAuth token value(s)" in status.stdout

    # A new key version: the rotation finds nothing it manages to fail on, and says so.
    ws.env["RECONCILER_KEYRING"] += "," + Keyring.generate_entry(2)
    rotate = ws.run("keys", "rotate")
    assert rotate.returncode == 0, rotate.stderr
    assert "Re-encrypted 0 row(s) under key version 2" in rotate.stdout
    assert "4 OAuth token row(s) hold legacy values" in rotate.stderr

    # The plaintext layout refuses the Node.js colon form, and adopts the rest... after a
    # dry run that writes nothing.
    before = ws.sql("SELECT * FROM oauth_tokens ORDER BY id")
    dry = ws.run("keys", "adopt-tokens", "--from", "plaintext", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert ws.sql("SELECT * FROM oauth_tokens ORDER BY id") == before
    assert ws.sql("SELECT count(*) FROM configuration_audit_logs") == [(0,)]

    plain = ws.run("keys", "adopt-tokens", "--from", "plaintext", "--batch-size", "1")
    assert plain.returncode == 0, plain.stderr
    # The base64 blob is indistinguishable from a base64 token, so only a dry run or the
    # right --from keeps it out; the colon forms are refused.
    assert "looks like the node-aes-256-gcm layout" in plain.stderr
    managed = ws.sql("SELECT id FROM oauth_tokens WHERE access_token LIKE 'rcn1:%' ORDER BY id")
    ids = sorted(originals)
    assert [r[0] for r in managed] == ids[:2]

    # The rest with the application's key; a wrong key refuses everything it reads.
    ws.env["WRONG_KEY"] = base64.b64encode(OTHER_KEY).decode()
    wrong = ws.run(
        "keys", "adopt-tokens", "--from", "node-aes-256-gcm", "--legacy-key-env", "WRONG_KEY"
    )
    assert wrong.returncode == 0, wrong.stderr
    assert "refused: oauth_tokens.access_token tenant=globex" in wrong.stderr
    assert "does not authenticate" in wrong.stderr
    assert "Adopted 0 OAuth token row(s)" in wrong.stdout

    node = ws.run("keys", "adopt-tokens", "--from", "node-aes-256-gcm")
    assert node.returncode == 0, node.stderr
    assert "Adopted 2 OAuth token row(s) from node-aes-256-gcm" in node.stdout
    for output in (status, rotate, dry, plain, wrong, node):
        text = output.stdout + output.stderr
        assert APP_KEY.hex() not in text and ws.env["WRONG_KEY"] not in text
        for value in (*PLAIN.values(), *ENCRYPTED.values()):
            assert value not in text

    # Everything managed: status and a rotation to a third version see every token.
    status = ws.run("keys", "status")
    assert "legacy" not in status.stdout
    assert ws.sql("SELECT DISTINCT encryption_key_version FROM oauth_tokens") == [(2,)]
    expected = {
        ids[0]: (PLAIN["stripe-plain"], None),
        ids[1]: (PLAIN["hubspot-plain"], None),
        ids[2]: (ENCRYPTED["stripe-node"], None),
        ids[3]: (ENCRYPTED["quickbooks-node"], ENCRYPTED["quickbooks-refresh"]),
    }
    assert _decrypted(ws) == expected
    ws.env["RECONCILER_KEYRING"] += "," + Keyring.generate_entry(3)
    rotate = ws.run("keys", "rotate")
    assert rotate.returncode == 0, rotate.stderr
    assert "Re-encrypted 4 row(s) under key version 3" in rotate.stdout
    assert "legacy" not in rotate.stderr
    assert _decrypted(ws) == expected

    audit = ws.sql(
        "SELECT risk_level::text, risk_reasons->0->>'code', action::text"
        " FROM configuration_audit_logs ORDER BY id"
    )
    assert audit[:4] == [("LOW", "TOKEN_ADOPTED", "ROTATE")] * 4
    assert audit[4:] == [("LOW", "KEY_ROTATION", "ROTATE")] * 4
    verify = ws.run("audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_adopt_needs_the_key_in_the_environment(
    live: tuple[Workspace, dict[int, tuple[str, str | None]]],
) -> None:
    ws, _ = live
    del ws.env["RECONCILER_LEGACY_TOKEN_KEY"]
    missing = ws.run("keys", "adopt-tokens", "--from", "node-aes-256-gcm")
    assert missing.returncode == 1
    assert "$RECONCILER_LEGACY_TOKEN_KEY is not set" in missing.stderr
    ws.env["SHORT"] = "abcd"
    short = ws.run(
        "keys", "adopt-tokens", "--from", "node-aes-256-gcm", "--legacy-key-env", "SHORT"
    )
    assert short.returncode == 1 and "$SHORT is not a 32-byte key" in short.stderr
    assert "abcd" not in short.stderr
    assert ws.sql("SELECT count(*) FROM oauth_tokens WHERE access_token LIKE 'rcn1:%'") == [(0,)]


def test_layouts_read_the_node_variants_and_refuse_the_rest() -> None:
    node = layout("node-aes-256-gcm")
    for iv_len in (12, 16):
        assert node.decode(node_colon("tok", iv_len=iv_len), APP_KEY).reveal() == "tok"
    assert node.decode(node_blob("tok"), APP_KEY).reveal() == "tok"
    iv = os.urandom(12)
    sealed = AESGCM(APP_KEY).encrypt(iv, b"tok", None)
    swapped = f"{iv.hex()}:{sealed[:-16].hex()}:{sealed[-16:].hex()}"
    assert node.decode(swapped, APP_KEY).reveal() == "tok"
    tag_first = base64.b64encode(iv + sealed[-16:] + sealed[:-16]).decode()
    assert node.decode(tag_first, APP_KEY).reveal() == "tok"
    with pytest.raises(LegacyTokenError, match="does not authenticate"):
        node.decode(node_colon("tok"), OTHER_KEY)
    with pytest.raises(LegacyTokenError, match="not in the node-aes-256-gcm layout"):
        node.decode("sk_live_abc", APP_KEY)
    plaintext = layout("plaintext")
    assert plaintext.decode("sk_live_abc", None).reveal() == "sk_live_abc"
    with pytest.raises(LegacyTokenError, match="damaged reconciler ciphertext"):
        plaintext.decode("rcn1:!!", None)
    assert set(LAYOUTS) >= {"plaintext", "node-aes-256-gcm"}
    assert is_managed_token("rcn1:" + base64.b64encode(os.urandom(40)).decode())
    assert not is_managed_token("rcn1:" + base64.b64encode(os.urandom(10)).decode())
    assert not is_managed_token("sk_live_abc")
