"""Sensitive values print as a mask everywhere and refuse to be persisted."""

from __future__ import annotations

import json
import logging
import pickle

import pytest
from pydantic import BaseModel

from reconciler.model.sensitive import MASK, Sensitive

CANARY = "sk_live_canary0123456789"


def test_text_forms_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    secret = Sensitive(CANARY)
    assert str(secret) == MASK
    assert CANARY not in repr(secret)
    assert f"{secret}" == MASK and f"{secret:>40}" == MASK
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("key %s %r", secret, secret)
    assert CANARY not in caplog.text and MASK in caplog.text


def test_pydantic_serialization_is_masked() -> None:
    class Model(BaseModel):
        key: Sensitive[str]

    model = Model(key=CANARY)
    assert model.key.reveal() == CANARY
    assert CANARY not in model.model_dump_json()
    assert model.model_dump(mode="json") == {"key": MASK}


def test_json_and_pickle_refuse_rather_than_leak() -> None:
    with pytest.raises(TypeError):
        json.dumps({"key": Sensitive(CANARY)})
    with pytest.raises(TypeError):
        pickle.dumps(Sensitive(CANARY))


def test_equality_compares_plaintext() -> None:
    assert Sensitive("a") == Sensitive("a")
    assert Sensitive("a") != Sensitive("b")
