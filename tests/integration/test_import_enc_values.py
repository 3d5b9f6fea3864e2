"""``import`` never passes off an ``ENC[...]`` string from the database as a plaintext."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pyrage
import pytest
import sqlalchemy as sa
import yaml

from reconciler.crypto.aead import CipherContext, FieldCipher
from reconciler.crypto.fingerprint import Fingerprinter
from reconciler.crypto.keyring import Keyring
from reconciler.errors import ConfigError
from reconciler.importer import import_manifests

STORED = (
    "ENC[AES256_GCM,data:c2VjcmV0,iv:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,"
    "tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]"
)
ENVIRON = {
    "RECONCILER_KEYRING": "1:" + base64.b64encode(os.urandom(32)).decode(),
    "RECONCILER_FINGERPRINT_KEY": base64.b64encode(os.urandom(32)).decode(),
}


def test_an_enc_string_stored_as_a_secret_is_not_imported(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    """A row written before ENC strings were refused holds one as its "plaintext"."""
    fingerprinter = Fingerprinter(base64.b64decode(ENVIRON["RECONCILER_FINGERPRINT_KEY"]))
    cipher = FieldCipher(Keyring.parse(ENVIRON["RECONCILER_KEYRING"], source="test"), fingerprinter)
    ctx = CipherContext.webhook("acme", "STRIPE", "PRODUCTION", "billing", "signing_secret")
    fingerprint = fingerprinter.fingerprint(STORED)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO webhook_configurations (tenant_id, platform, environment, name,
                       webhook_type, endpoint_url, auth_type, signing_secret,
                       signing_secret_fingerprint, encryption_key_version, subscribed_events,
                       retry_max_attempts,
                       retry_initial_delay_seconds, retry_backoff_multiplier,
                       retry_max_delay_seconds, circuit_breaker_threshold,
                       circuit_breaker_reset_seconds)
                   VALUES ('acme', 'STRIPE', 'PRODUCTION', 'billing', 'INBOUND',
                       'https://hooks.example.com/s', 'SIGNATURE', :s, :f, 1, '["invoice.paid"]',
                       5, 30, 2.0, 3600, 5, 300)"""
            ),
            {"s": cipher.encrypt(STORED, ctx, fingerprint), "f": fingerprint},
        )
    recipient = str(pyrage.x25519.Identity.generate().to_public())
    (tmp_path / ".sops.yaml").write_text(
        yaml.safe_dump(
            {
                "creation_rules": [
                    {
                        "path_regex": r"\.yaml$",
                        "age": recipient,
                        "encrypted_regex": "^(api_key|api_secret|signing_secret)$",
                    }
                ]
            }
        )
    )
    with pytest.raises(ConfigError, match=r"signing_secret: the value is already an ENC\[") as info:
        import_manifests(
            tenants=["acme"], out_dir=tmp_path / "m", database_url=database_url, environ=ENVIRON
        )
    assert STORED not in str(info.value)
    assert not (tmp_path / "m").exists() or list((tmp_path / "m").rglob("*.yaml")) == []
