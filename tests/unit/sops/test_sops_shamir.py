"""Shamir share combination over GF(2^8) (0x11B), checked against the sops vector."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.sops.shamir import combine, gf_inv, gf_mul


def _split(secret: bytes, threshold: int, count: int, rng: random.Random) -> list[bytes]:
    """Vault-style split, for tests: random polynomial per byte, x = 1..count."""
    coefficients = [[b] + [rng.randrange(256) for _ in range(threshold - 1)] for b in secret]
    shares = []
    for x in range(1, count + 1):
        ys = []
        for poly in coefficients:
            y, power = 0, 1
            for c in poly:
                y ^= gf_mul(c, power)
                power = gf_mul(power, x)
            ys.append(y)
        shares.append(bytes(ys) + bytes([x]))
    return shares


def test_combines_the_sops_vector_shares() -> None:
    parts = [
        "4d09429989210dc026002553d9185e3f1c2192a965a99c3ebc777c3e8052766301",
        "82eda53737b806ed91fed8563c37fdf2586d90df9c51399a90b9ad55e4283b7d02",
    ]
    key = combine([bytes.fromhex(p) for p in parts])
    assert key.hex() == "08551f0ae356fddb4ba3875073f43f8d20ec65723208ffab51c433ee558d4d69"


def test_field_arithmetic() -> None:
    assert gf_mul(0x57, 0x83) == 0xC1  # the FIPS-197 example
    assert all(gf_mul(a, gf_inv(a)) == 1 for a in range(1, 256))


@given(
    secret=st.binary(min_size=1, max_size=40),
    threshold=st.integers(2, 5),
    extra=st.integers(0, 3),
    seed=st.integers(0, 2**32),
)
def test_any_threshold_subset_recovers_the_secret(
    secret: bytes, threshold: int, extra: int, seed: int
) -> None:
    rng = random.Random(seed)
    shares = _split(secret, threshold, threshold + extra, rng)
    assert combine(rng.sample(shares, threshold)) == secret


@pytest.mark.parametrize(
    "shares",
    [
        [b"\x01\x01"],
        [b"\x01\x01", b"\x02\x01"],
        [b"\x01\x01", b"\x02\x02\x02"],
        [b"\x01\x00", b"\x02\x01"],
    ],
)
def test_invalid_share_sets_are_refused(shares: list[bytes]) -> None:
    with pytest.raises(ValueError, match="share"):
        combine(shares)
