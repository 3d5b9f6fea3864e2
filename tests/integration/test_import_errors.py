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
from reconciler.crypto.fingerprint import Fingerprinter
from reconciler.crypto.keyring import Keyring
from reconciler.errors import ConfigError, DecryptFailed
from reconciler.importer import import_manifests

SECRET = "whsec_" + "ImportErrorCanary0123456789"
ENVIRON = {
    "RECONCILER_KEYRING": "1:" + base64.b64encode(os.urandom(32)).decode(),
    "RECONCILER_FINGERPRINT_KEY": base64.b64encode(os.urandom(32)).decode(),
}


FP = Fingerprinter.from_base64(ENVIRON["RECONCILER_FINGERPRINT_KEY"], source="test")
CIPHER = FieldCipher(Keyring.parse(ENVIRON["RECONCILER_KEYRING"], source="test"), FP)
CTX = CipherContext.webhook("acme", "STRIPE", "PRODUCTION", "billing", "signing_secret")


@pytest.fixture
def seeded(engine: sa.Engine) -> sa.Engine:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO webhook_configurations (tenant_id, platform, environment, name,
                       webhook_type, endpoint_url, auth_type, signing_secret,
                       signing_secret_fingerprint, encryption_key_version, subscribed_events,
                       retry_max_attempts, retry_initial_delay_seconds, retry_backoff_multiplier,
                       retry_max_delay_seconds, circuit_breaker_threshold,
                       circuit_breaker_reset_seconds)
                   VALUES ('acme', 'STRIPE', 'PRODUCTION', 'billing', 'INBOUND',
                       'https://hooks.example.com/s', 'SIGNATURE', :s, :f, 1, '["invoice.paid"]',
                       5, 30, 2.0, 3600, 5, 300)"""
            ),
            {"s": CIPHER.encrypt(SECRET, CTX, FP(SECRET)), "f": FP(SECRET)},
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
    assert result.notes == ()


@pytest.mark.parametrize("fingerprint", ["later", None], ids=["replayed", "no-fingerprint"])
def test_value_that_is_not_its_fingerprints_is_not_imported(
    seeded: sa.Engine, database_url: str, tmp_path: Path, fingerprint: str | None
) -> None:
    """An earlier credential copied back into the row must not become desired state in git."""
    _sops_config(tmp_path, "^signing_secret$")
    later = "whsec_" + "ImportErrorLaterCanary01234"
    with seeded.begin() as conn:
        # The row's fingerprint moves on to a later value; the ciphertext stays the earlier one.
        conn.execute(
            sa.text("UPDATE webhook_configurations SET signing_secret_fingerprint = :f"),
            {"f": FP(later) if fingerprint else None},
        )
    with pytest.raises(DecryptFailed) as failure:
        import_manifests(
            tenants=["acme"], out_dir=tmp_path / "m", database_url=database_url, environ=ENVIRON
        )
    message = str(failure.value)
    assert "webhook_configurations.signing_secret tenant=acme" in message
    assert "fingerprint" in message and "\n" not in message
    assert SECRET not in message and later not in message
    assert _files(tmp_path) == []
