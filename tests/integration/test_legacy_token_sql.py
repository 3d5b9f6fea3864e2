"""The SQL test for a managed (``rcn1``) token agrees with :func:`is_managed_token`."""

from __future__ import annotations

import base64
import random

import pytest
import sqlalchemy as sa

from reconciler.crypto.legacy_tokens import MANAGED_TOKEN_SQL, is_managed_token

# Fixed bytes, not os.urandom: test ids must be the same in every pytest-xdist worker.
_RANDOM = random.Random(20261201)


def _bytes(n: int) -> bytes:
    return _RANDOM.randbytes(n)


SAMPLES = [
    "rcn1:" + base64.b64encode(_bytes(28)).decode(),
    "rcn1:" + base64.b64encode(_bytes(29)).decode(),
    "rcn1:" + base64.b64encode(_bytes(27)).decode(),
    "rcn1:" + base64.b64encode(_bytes(60)).decode().rstrip("="),
    "rcn1:" + base64.b64encode(_bytes(60)).decode()[:-2] + "!!",
    "rcn2:" + base64.b64encode(_bytes(60)).decode(),
    "RCN1:" + base64.b64encode(_bytes(60)).decode(),
    "sk_live_" + "x" * 40,
    "0123456789abcdef0123456789abcdef:00112233445566778899aabbccddeeff:abcd",
    base64.b64encode(_bytes(60)).decode(),
    "rcn1:",
    "",
]


@pytest.mark.parametrize("value", SAMPLES)
def test_sql_and_python_agree(engine: sa.Engine, value: str) -> None:
    with engine.connect() as conn:
        managed = conn.execute(
            sa.text(f"SELECT {MANAGED_TOKEN_SQL.format(col='v')} FROM (SELECT :v AS v) s"),
            {"v": value},
        ).scalar_one()
    assert managed is is_managed_token(value)
