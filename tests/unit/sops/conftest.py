"""Fixtures for the SOPS tests: an isolated key environment and fresh age identities."""

from __future__ import annotations

from pathlib import Path

import pyrage
import pytest

from reconciler.sops import Identities


@pytest.fixture(autouse=True)
def isolated_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No key source from the machine running the tests leaks in; HOME is empty; the
    runtime directory is the test's own."""
    for name in ("SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "XDG_CONFIG_HOME", "SOPS_EDITOR", "EDITOR"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    runtime = home / "run"  # where `secrets edit` keeps its plaintext: not the machine's
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    return home


@pytest.fixture
def identity() -> pyrage.x25519.Identity:
    """A new X25519 identity."""
    return pyrage.x25519.Identity.generate()


@pytest.fixture
def identities(identity: pyrage.x25519.Identity) -> Identities:
    """The fixture identity as an :class:`Identities`."""
    return Identities.of([identity], ["test"])


@pytest.fixture
def recipient(identity: pyrage.x25519.Identity) -> str:
    """The public key of the fixture identity."""
    return str(identity.to_public())
