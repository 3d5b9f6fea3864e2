"""Encrypting and decrypting leave no reference cycles behind.

Bulk loading pauses the cyclic garbage collector; anything a file's decryption leaves in a
cycle (the walk's closure, with the cipher that holds the file's data key) would then stay
in memory for the whole run, one per file.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.sops import Identities, decrypt_documents, encrypt_documents

PLAIN: dict[str, Any] = {
    "apiVersion": "reconciler/v1",
    "environments": {
        "production": {
            "integrations": {"API_KEY": {"api_key": "sk_live_secret", "primary": True}},
            "webhooks": {"billing": {"signing_secret": "whsec_x", "events": ["a", "b"]}},
        }
    },
}


@pytest.fixture
def collector_paused() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_decrypting_leaves_no_cycles(identities: Identities, collector_paused: None) -> None:
    recipient = str(identities.identities[0].to_public())
    encrypted = encrypt_documents([PLAIN], [recipient], source="f.yaml")
    gc.collect()
    assert decrypt_documents(encrypted, identities, source="f.yaml") == [PLAIN]
    assert gc.collect() == 0


def test_encrypting_leaves_no_cycles(identities: Identities, collector_paused: None) -> None:
    recipient = str(identities.identities[0].to_public())
    gc.collect()
    encrypt_documents([PLAIN], [recipient], source="f.yaml")
    assert gc.collect() == 0
