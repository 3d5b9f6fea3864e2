from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable

import pytest

from reconciler.crypto.fingerprint import FINGERPRINT_KEY_ENV, Fingerprinter
from reconciler.errors import ConfigError
from reconciler.model.sensitive import Sensitive


def test_stable_hex_and_key_dependent() -> None:
    key = os.urandom(32)
    a, b = Fingerprinter(key), Fingerprinter(key)
    other = Fingerprinter(os.urandom(32))
    value = "sk_test_EXAMPLE123"
    assert a(value) == b.fingerprint(value)
    assert re.fullmatch(r"[0-9a-f]{64}", a(value))
    assert a(value) != other(value)
    assert a(value) != a(value + "x")
    assert a(Sensitive(value)) == a(value)


def test_domain_separated_from_plain_hmac() -> None:
    import hashlib
    import hmac

    key = os.urandom(32)
    assert Fingerprinter(key)("v") != hmac.new(key, b"v", hashlib.sha256).hexdigest()


def test_usable_as_callable() -> None:
    fp: Callable[[str], str] = Fingerprinter(os.urandom(32))
    assert len(fp("x")) == 64


def test_from_environ() -> None:
    key = base64.b64encode(os.urandom(48)).decode()
    fp = Fingerprinter.from_environ({FINGERPRINT_KEY_ENV: key})
    assert fp is not None
    assert Fingerprinter.from_environ({}) is None
    assert key not in repr(fp)


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"short").decode()])
def test_bad_keys_rejected_without_echo(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        Fingerprinter.from_environ({FINGERPRINT_KEY_ENV: value})
    assert FINGERPRINT_KEY_ENV in str(info.value)
    assert value not in str(info.value)
