"""The first ``ENC[`` value of a document: document order, ``sops`` left out, any depth."""

from __future__ import annotations

import sys
from typing import Any

from reconciler.load.analyze import first_encrypted

ENC = "ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]"


def test_document_order_and_the_sops_block_left_out() -> None:
    doc = {
        "sops": {"mac": ENC},
        "a": {"b": "clear", "c": [1, {"d": None}, {"e": ENC}]},
        "f": ENC,
    }
    assert first_encrypted(doc) == ("a", "c", 2, "e")
    assert first_encrypted({"sops": ENC, "x": "clear"}) is None
    assert first_encrypted({"x": {"sops": ENC}}) == ("x", "sops")  # only the top level's
    assert first_encrypted([{"sops": ENC}]) == (0, "sops")
    assert first_encrypted(ENC) == ()
    assert first_encrypted({"x": "ENC", "y": 1}) is None


def test_deeper_than_the_recursion_limit() -> None:
    doc: Any = ENC
    depth = sys.getrecursionlimit() + 100
    for _ in range(depth):
        doc = {"a": [doc]}
    assert first_encrypted(doc) == ("a", 0) * depth
