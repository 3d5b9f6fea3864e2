"""Every published vector: ``expect: ok`` decrypts to sops's output, ``expect: error`` fails."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from reconciler.errors import DecryptFailed, KeyUnavailable
from reconciler.sops import decrypt_documents, read_file
from reconciler.sops.codec import ValueCipher
from reconciler.sops.metadata import Metadata
from reconciler.sops.operations import split_metadata, unwrap_data_key
from tests.unit.sops.helpers import (
    IDENTITY_1,
    IDENTITY_2,
    MANIFEST,
    RECIPIENT_2,
    VECTORS,
    identities_from,
    normalize,
)

COMMENT_REGEX = "generated-sops-3.11.0/enc/comments.encrypted_comment_regex.enc.yaml"
OK = [v for v in MANIFEST if v["expect"] == "ok" and v["file"] != COMMENT_REGEX]
ERRORS = [v for v in MANIFEST if v["expect"] == "error"]
WITH_KEY = [v for v in OK if "data_key_hex" in v]
REASONS = {
    "basic.tampered-unencrypted-value": "MAC mismatch",
    "basic.reordered-keys": "MAC mismatch",
    "simple.removed-key": "MAC mismatch",
    "simple.lastmodified-changed": "cannot decrypt the MAC",
    "simple.plaintext-injected": "password: value must be encrypted but is plaintext",
    "simple.swapped-ciphertexts": "username: cannot decrypt: authentication failed",
}


def _name(vector: dict[str, Any]) -> str:
    return str(vector["file"])


# The two "still valid" negatives have no expected file: sops's output for the file they
# were derived from, with the same edit applied.
STILL_VALID: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "basic.renamed-unencrypted-key-still-valid": (
        "basic.expected.json",
        lambda doc: {
            ("renamed_unencrypted" if k == "public_unencrypted" else k): v for k, v in doc.items()
        },
    ),
    "k8s-secret.mac_only_encrypted.unencrypted-changed-still-valid": (
        "k8s-secret.mac_only_encrypted.expected.json",
        lambda doc: {**doc, "metadata": {**doc["metadata"], "namespace": "staging"}},
    ),
}


def _expected(vector: dict[str, Any]) -> list[Any]:
    if "expected" not in vector:
        name, edit = STILL_VALID[vector["file"].split("/")[-1].removesuffix(".enc.yaml")]
        base = VECTORS / "generated-sops-3.11.0" / "expected" / name
        return [edit(json.loads(base.read_text()))]
    path = VECTORS / vector["expected"]
    if path.suffix == ".json":
        return [json.loads(path.read_text())]
    return read_file(path)[0]


def test_every_vector_is_covered() -> None:
    assert len(OK) + len(ERRORS) + 1 == len(MANIFEST)
    assert {v["file"].split("/")[-1].removesuffix(".enc.yaml") for v in ERRORS} == set(REASONS)


@pytest.mark.parametrize("vector", OK, ids=_name)
def test_ok_vector_decrypts_to_sops_output(vector: dict[str, Any]) -> None:
    documents, _ = read_file(VECTORS / vector["file"])
    identities = identities_from(*vector["decrypt_with"])
    plain = decrypt_documents(documents, identities, source=vector["file"])
    assert normalize(plain) == normalize(_expected(vector))
    assert all("sops" not in document for document in plain)


@pytest.mark.parametrize("vector", ERRORS, ids=_name)
def test_error_vector_is_refused_with_its_reason(vector: dict[str, Any]) -> None:
    documents, _ = read_file(VECTORS / vector["file"])
    identities = identities_from(*vector["decrypt_with"])
    with pytest.raises(DecryptFailed) as info:
        decrypt_documents(documents, identities, source=vector["file"])
    reason = REASONS[vector["file"].split("/")[-1].removesuffix(".enc.yaml")]
    assert str(info.value).startswith(vector["file"] + ": ")
    assert reason in str(info.value)


def test_comment_regex_vector_is_refused_as_unsupported() -> None:
    documents, _ = read_file(VECTORS / COMMENT_REGEX)
    with pytest.raises(DecryptFailed, match="encrypted_comment_regex is unsupported"):
        decrypt_documents(documents, identities_from(IDENTITY_1), source=COMMENT_REGEX)


@pytest.mark.parametrize("vector", WITH_KEY, ids=_name)
def test_data_key_and_mac_plaintext_match_the_manifest(vector: dict[str, Any]) -> None:
    documents, _ = read_file(VECTORS / vector["file"])
    _, metadata = split_metadata(documents, source="v")
    key = unwrap_data_key(metadata, identities_from(*vector["decrypt_with"]), source="v")
    assert key.hex() == vector["data_key_hex"]
    assert metadata.mac_aad == vector["mac_aad"]
    mac, _ = ValueCipher(key).decrypt(metadata.mac, metadata.mac_aad)
    assert mac == vector["mac_plaintext"]


def test_wrong_identity_is_key_unavailable_naming_file_and_recipients() -> None:
    file = "generated-sops-3.11.0/enc/basic.enc.yaml"
    documents, _ = read_file(VECTORS / file)
    with pytest.raises(KeyUnavailable) as info:
        decrypt_documents(documents, identities_from(IDENTITY_2), source=file)
    message = str(info.value)
    assert message.startswith(file)
    assert "age1wv4aqchh993px8rrsnxwypsj2yecaf92yavktg9akdvgnqjv3f4sxzl2en" in message


def test_shamir_file_needs_both_key_groups() -> None:
    file = "generated-sops-3.11.0/enc/simple.shamir-2-of-2.enc.yaml"
    documents, _ = read_file(VECTORS / file)
    with pytest.raises(KeyUnavailable, match="only 1 of 2 key groups"):
        decrypt_documents(documents, identities_from(IDENTITY_1), source=file)
    metadata = Metadata.parse(documents[0]["sops"], source=file)
    assert metadata.shamir_threshold == 2
    assert metadata.recipients[1] == RECIPIENT_2
