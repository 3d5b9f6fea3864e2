"""Decryption paths with files encrypted by the real sops binary and generated keys."""

from __future__ import annotations

import dataclasses
import re
import shutil
import weakref
from pathlib import Path
from typing import Any

from reconciler import sops
from reconciler.load.analyze import analyze_file
from reconciler.load.stage import load_desired_state

from .conftest import AgeKey

CASE = Path(__file__).resolve().parents[2] / "cases" / "invalid" / "test-key-in-production"


def _encrypted_tree(tmp_path: Path, key: AgeKey, api_key: str = "rk_live_51H8abcdefghij") -> Path:
    root = tmp_path / "manifests"
    shutil.copytree(CASE / "manifests", root)
    file = root / "tenants/acme/stripe.yaml"
    file.write_text(file.read_text().replace("sk_test_51H8abcdefghijklmnopqrstuv", api_key))
    key.encrypt(tmp_path, file)
    return root


def test_valid_file_decrypts_and_fingerprints(tmp_path: Path) -> None:
    key = AgeKey()
    root = _encrypted_tree(tmp_path, key)
    result = load_desired_state(root, identities=key.identities(), fingerprint=lambda s: "fp")
    assert [d.format() for d in result.diagnostics] == []
    assert result.state is not None
    (integration,) = result.state.integrations
    assert integration.api_key is not None and integration.api_key.fingerprint == "fp"
    assert integration.api_key.value is not None
    assert integration.api_key.value.reveal() == "rk_live_51H8abcdefghij"


def test_wrong_key_is_reported_at_the_sops_block(tmp_path: Path) -> None:
    root = _encrypted_tree(tmp_path, AgeKey())
    result = load_desired_state(root, identities=AgeKey().identities())
    (diag,) = list(result.diagnostics)
    assert diag.code == "RCN-SOPS-2" and diag.path == "sops"
    text = (root / "tenants/acme/stripe.yaml").read_text().splitlines()
    assert diag.line is not None and text[diag.line - 1].startswith("sops:")


def test_tampered_value_fails_the_mac(tmp_path: Path) -> None:
    key = AgeKey()
    root = _encrypted_tree(tmp_path, key)
    file = root / "tenants/acme/stripe.yaml"
    text = file.read_text()
    # Swap two encrypted values: each is authenticated with its own path, so this must fail.
    values = re.findall(r"ENC\[AES256_GCM,data:[^\]]+\]", text)
    text = text.replace(values[0], "@@").replace(values[1], values[0]).replace("@@", values[1])
    file.write_text(text)
    result = load_desired_state(root, identities=key.identities())
    assert {d.code for d in result.diagnostics} == {"RCN-SOPS-3"}
    assert result.state is None


def test_non_secret_edits_keep_the_file_valid(tmp_path: Path) -> None:
    key = AgeKey()
    root = _encrypted_tree(tmp_path, key)
    file = root / "tenants/acme/stripe.yaml"
    file.write_text(file.read_text().replace("interval_minutes: 15", "interval_minutes: 30"))
    result = load_desired_state(root, identities=key.identities())
    assert [d.format() for d in result.diagnostics] == []
    assert result.state is not None and result.state.integrations[0].sync_interval == 30


def test_a_batch_is_dropped_before_the_next_is_read(tmp_path: Path, monkeypatch: Any) -> None:
    """Each batch's parse trees and plaintext documents are freed (by reference counting
    alone, as bulk loading pauses the cyclic collector) before the next batch is loaded:
    memory holds the desired objects of the files loaded so far, not their intermediate
    forms."""
    key = AgeKey()
    root = _encrypted_tree(tmp_path, key)
    source = (CASE / "manifests/tenants/acme/stripe.yaml").read_text()
    source = source.replace("sk_test_51H8abcdefghijklmnopqrstuv", "rk_live_51H8abcdefghij")
    for tenant in ("beta", "gamma", "delta"):
        (root / "tenants" / tenant).mkdir()
        file = root / "tenants" / tenant / "stripe.yaml"
        file.write_text(source.replace("tenant: acme", f"tenant: {tenant}"))
        key.encrypt(tmp_path, file)

    class Tracked(dict[str, Any]):
        """A document that can be watched for being freed."""

    alive: list[weakref.ref[Any]] = []
    decrypt = sops.decrypt_documents

    def tracked(doc: Any) -> Any:
        copy = Tracked(doc)
        alive.append(weakref.ref(copy))
        return copy

    def analyzing(job: Any, templates: Any) -> Any:
        assert [r for r in alive if r() is not None] == [], "an earlier file is still held"
        result = analyze_file(job, templates)
        return dataclasses.replace(result, document=tracked(result.document))

    def decrypting(docs: Any, identities: Any, *, source: str) -> Any:
        return [tracked(d) for d in decrypt(docs, identities, source=source)]

    monkeypatch.setattr("reconciler.load.pool.BATCH_FILES", 1)  # batches of one file
    monkeypatch.setattr("reconciler.load.pool.analyze_file", analyzing)
    monkeypatch.setattr(sops, "decrypt_documents", decrypting)
    result = load_desired_state(
        root, identities=key.identities(), fingerprint=lambda s: "fp", workers=1
    )
    assert [d.format() for d in result.diagnostics] == []
    assert result.state is not None and len(result.state.integrations) == 4
    assert len(alive) == 8  # each file's encrypted and plaintext documents were watched
