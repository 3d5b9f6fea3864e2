from __future__ import annotations

import base64
import io
import os
import stat
from pathlib import Path

import pytest

from reconciler.crypto.fingerprint import FINGERPRINT_KEY_ENV
from reconciler.crypto.keyring import KEYRING_ENV, Keyring
from reconciler.crypto.local_keys import load_keys
from reconciler.errors import KeyUnavailable


def _env() -> dict[str, str]:
    return {
        KEYRING_ENV: Keyring.generate_entry(3),
        FINGERPRINT_KEY_ENV: base64.b64encode(os.urandom(32)).decode(),
    }


def test_configured_keys_win(tmp_path: Path) -> None:
    keyring, fingerprinter = load_keys(_env(), embedded=True, data_dir=tmp_path)
    assert keyring.active_version == 3
    assert len(fingerprinter("x")) == 64
    assert not (tmp_path / "keys.env").exists()


def test_embedded_creates_keys_once(tmp_path: Path) -> None:
    err = io.StringIO()
    ring1, fp1 = load_keys({}, embedded=True, data_dir=tmp_path / "d", stderr=err)
    path = tmp_path / "d" / "keys.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert err.getvalue().count("\n") == 1 and "Created" in err.getvalue()
    err = io.StringIO()
    ring2, fp2 = load_keys({}, embedded=True, data_dir=tmp_path / "d", stderr=err)
    assert "Using" in err.getvalue() and err.getvalue().count("\n") == 1
    assert ring1.to_text() == ring2.to_text()
    assert fp1("v") == fp2("v")
    assert ring1.to_text() not in err.getvalue()
    assert list((tmp_path / "d").iterdir()) == [path]


def test_external_database_never_uses_development_keys(tmp_path: Path) -> None:
    with pytest.raises(KeyUnavailable) as info:
        load_keys({}, embedded=False, data_dir=tmp_path)
    assert KEYRING_ENV in str(info.value) and FINGERPRINT_KEY_ENV in str(info.value)
    assert not (tmp_path / "keys.env").exists()


def test_half_configured_names_the_missing_variable(tmp_path: Path) -> None:
    env = _env()
    del env[FINGERPRINT_KEY_ENV]
    with pytest.raises(KeyUnavailable) as info:
        load_keys(env, embedded=True, data_dir=tmp_path)
    assert FINGERPRINT_KEY_ENV in str(info.value)
    assert KEYRING_ENV not in str(info.value)
