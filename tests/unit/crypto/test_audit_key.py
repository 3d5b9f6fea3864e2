"""Where the audit key comes from: the environment, or the embedded database's keys.env."""

from __future__ import annotations

import base64
import io
import os
import stat
from pathlib import Path

import pytest

from reconciler.crypto.audit_key import AUDIT_KEY_ENV, AuditKey, load_audit_key
from reconciler.crypto.fingerprint import FINGERPRINT_KEY_ENV
from reconciler.crypto.keyring import KEYRING_ENV
from reconciler.errors import ConfigError, KeyUnavailable
from reconciler.store.database import DatabaseSource, DatabaseTarget


def _embedded(data_dir: Path) -> DatabaseTarget:
    return DatabaseTarget(
        "postgresql+psycopg://x@/y", DatabaseSource.EMBEDDED, True, data_dir / "pgdata"
    )


def _external() -> DatabaseTarget:
    return DatabaseTarget("postgresql+psycopg://x@db/y", DatabaseSource.RECONCILER_DATABASE_URL)


def test_the_environment_wins_and_the_key_is_never_shown(tmp_path: Path) -> None:
    raw = os.urandom(32)
    env = {AUDIT_KEY_ENV: base64.b64encode(raw).decode()}
    key = load_audit_key(_external(), env, create=True)
    assert key is not None and repr(key) == "AuditKey(key=(sensitive))"
    assert key.mac(b"m") == AuditKey(raw).mac(b"m") != AuditKey(os.urandom(32)).mac(b"m")
    assert not (tmp_path / "keys.env").exists()


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"short").decode()])
def test_a_malformed_key_is_a_one_line_error(value: str) -> None:
    with pytest.raises(ConfigError, match=f"\\${AUDIT_KEY_ENV}") as info:
        load_audit_key(_external(), {AUDIT_KEY_ENV: value}, create=False)
    assert value not in str(info.value)


def test_an_external_database_needs_the_variable_to_write() -> None:
    assert load_audit_key(_external(), {}, create=False) is None
    with pytest.raises(KeyUnavailable, match=AUDIT_KEY_ENV):
        load_audit_key(_external(), {}, create=True)


def test_embedded_adds_the_key_to_keys_env_once(tmp_path: Path) -> None:
    target = _embedded(tmp_path)
    # A reader never creates it.
    assert load_audit_key(target, {}, create=False) is None
    assert not (tmp_path / "keys.env").exists()
    err = io.StringIO()
    first = load_audit_key(target, {}, create=True, stderr=err)
    path = tmp_path / "keys.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    # The other development keys are made as before; the audit key is added beside them.
    assert KEYRING_ENV in text and FINGERPRINT_KEY_ENV in text and text.count(AUDIT_KEY_ENV) == 1
    again = load_audit_key(target, {}, create=True)
    reader = load_audit_key(target, {}, create=False)
    assert first is not None and again is not None and reader is not None
    assert first.mac(b"m") == again.mac(b"m") == reader.mac(b"m")
    assert path.read_text() == text


def test_an_older_keys_env_gets_the_key_appended(tmp_path: Path) -> None:
    path = tmp_path / "keys.env"
    path.write_text(f"{KEYRING_ENV}=1:{base64.b64encode(os.urandom(32)).decode()}\n")
    path.chmod(0o600)
    key = load_audit_key(_embedded(tmp_path), {}, create=True)
    assert key is not None
    lines = path.read_text().splitlines()
    assert lines[0].startswith(KEYRING_ENV) and lines[1].startswith(f"{AUDIT_KEY_ENV}=")


def test_configured_keys_mean_the_audit_key_is_configured_too(tmp_path: Path) -> None:
    env = {FINGERPRINT_KEY_ENV: base64.b64encode(os.urandom(32)).decode()}
    with pytest.raises(KeyUnavailable, match=AUDIT_KEY_ENV):
        load_audit_key(_embedded(tmp_path), env, create=True)
    assert not (tmp_path / "keys.env").exists()
