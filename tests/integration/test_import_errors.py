"""``import_manifests`` refusals: each one says why in one line and writes nothing."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pyrage
import pytest
import sqlalchemy as sa
import yaml

from reconciler.crypto.aead import CipherContext, FieldCipher
from reconciler.crypto.keyring import Keyring
from reconciler.errors import ConfigError, DecryptFailed
from reconciler.export import import_manifests

SECRET = "whsec_" + "ImportErrorCanary0123456789"
ENVIRON = {
    "RECONCILER_KEYRING": "1:" + base64.b64encode(os.urandom(32)).decode(),
    "RECONCILER_FINGERPRINT_KEY": base64.b64encode(os.urandom(32)).decode(),
}


@pytest.fixture
def seeded(engine: sa.Engine) -> sa.Engine:
    cipher = FieldCipher(Keyring.parse(ENVIRON["RECONCILER_KEYRING"], source="test"))
    ctx = CipherContext.webhook("acme", "STRIPE", "PRODUCTION", "billing", "signing_secret")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO webhook_configurations (tenant_id, platform, environment, name,
                       webhook_type, endpoint_url, auth_type, signing_secret,
                       encryption_key_version, subscribed_events, retry_max_attempts,
                       retry_initial_delay_seconds, retry_backoff_multiplier,
                       retry_max_delay_seconds, circuit_breaker_threshold,
                       circuit_breaker_reset_seconds)
                   VALUES ('acme', 'STRIPE', 'PRODUCTION', 'billing', 'INBOUND',
                       'https://hooks.example.com/s', 'SIGNATURE', :s, 1, '["invoice.paid"]',
                       5, 30, 2.0, 3600, 5, 300)"""
            ),
            {"s": cipher.encrypt(SECRET, ctx)},
        )
    return engine


def _sops_config(root: Path, regex: str) -> None:
    recipient = str(pyrage.x25519.Identity.generate().to_public())
    (root / ".sops.yaml").write_text(
        yaml.safe_dump(
            {
                "creation_rules": [
                    {"path_regex": r"\.yaml$", "age": recipient, "encrypted_regex": regex}
                ]
            }
        )
    )


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.yaml") if p.name != ".sops.yaml")


def test_unknown_tenant(seeded: sa.Engine, database_url: str, tmp_path: Path) -> None:
    _sops_config(tmp_path, "^signing_secret$")
    with pytest.raises(ConfigError, match=r"nothing to import for tenant\(s\) nobody"):
        import_manifests(
            tenants=["acme", "nobody"],
            out_dir=tmp_path / "m",
            database_url=database_url,
            environ=ENVIRON,
        )
    assert _files(tmp_path) == []
    with pytest.raises(ConfigError, match="invalid tenant name"):
        import_manifests(tenants=["Bad Name"], out_dir=tmp_path / "m", environ=ENVIRON)


def test_no_sops_config(seeded: sa.Engine, database_url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no \.sops\.yaml"):
        import_manifests(
            tenants=["acme"], out_dir=tmp_path / "m", database_url=database_url, environ=ENVIRON
        )
    assert _files(tmp_path) == []


def test_rule_that_would_leave_a_secret_in_plaintext(
    seeded: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    _sops_config(tmp_path, "^api_key$")
    with pytest.raises(ConfigError, match=r"signing_secret .* unencrypted") as failure:
        import_manifests(
            tenants=["acme"], out_dir=tmp_path / "m", database_url=database_url, environ=ENVIRON
        )
    assert SECRET not in str(failure.value)
    assert _files(tmp_path) == []


def test_wrong_keyring(seeded: sa.Engine, database_url: str, tmp_path: Path) -> None:
    _sops_config(tmp_path, "^signing_secret$")
    wrong = {**ENVIRON, "RECONCILER_KEYRING": "1:" + base64.b64encode(os.urandom(32)).decode()}
    with pytest.raises(DecryptFailed, match=r"webhook_configurations\.signing_secret tenant=acme"):
        import_manifests(
            tenants=["acme"], out_dir=tmp_path / "m", database_url=database_url, environ=wrong
        )
    assert _files(tmp_path) == []


def test_written_file_holds_only_ciphertext(
    seeded: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    _sops_config(tmp_path, "^signing_secret$")
    result = import_manifests(
        tenants=["acme"], out_dir=tmp_path / "m", database_url=database_url, environ=ENVIRON
    )
    (written,) = result.written
    assert written.path == tmp_path / "m/tenants/acme/stripe.yaml" and written.secrets == 1
    text = written.path.read_text()
    assert SECRET not in text and "signing_secret: ENC[AES256_GCM," in text
    # The seeded row has no fingerprint: plan would show the secret as changed, and says so.
    (note,) = result.notes
    assert note.field == "environments.production.webhooks.billing.signing_secret"
    assert "fingerprint does not match" in note.message and SECRET not in note.message
