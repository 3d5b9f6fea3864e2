"""Shamir secret sharing over GF(2^8), as sops (forked from Vault) uses for key groups.

With several key groups each group's master keys wrap one *share* of the data key instead of
the key itself: ``len(secret)`` bytes of polynomial values followed by one byte, the share's
x-coordinate (1..255). The field is GF(2^8) with the AES reduction polynomial 0x11B; the
secret is the value of the polynomial at x = 0, found by Lagrange interpolation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

_POLY: Final = 0x11B


def gf_mul(a: int, b: int) -> int:
    """Multiply two field elements (carry-less product reduced by 0x11B)."""
    product = 0
    while b:
        if b & 1:
            product ^= a
        a <<= 1
        if a & 0x100:
            a ^= _POLY
        b >>= 1
    return product


def gf_inv(a: int) -> int:
    """Multiplicative inverse: a^254, since a^255 = 1 for every non-zero a."""
    if a == 0:
        raise ZeroDivisionError("0 has no inverse in GF(2^8)")
    result, base, exponent = 1, a, 254
    while exponent:
        if exponent & 1:
            result = gf_mul(result, base)
        base = gf_mul(base, base)
        exponent >>= 1
    return result


def combine(shares: Sequence[bytes]) -> bytes:
    """Recover the secret from at least ``threshold`` shares.

    Raises:
        ValueError: fewer than two shares, shares of different lengths, or repeated x values.
    """
    if len(shares) < 2:
        raise ValueError("at least two shares are needed")
    length = len(shares[0])
    if length < 2 or any(len(share) != length for share in shares):
        raise ValueError("shares must all have the same length")
    xs = [share[-1] for share in shares]
    if len(set(xs)) != len(xs) or 0 in xs:
        raise ValueError("shares must have distinct, non-zero x coordinates")
    # Lagrange basis at x = 0: prod_{j != i} x_j / (x_i ^ x_j); subtraction is XOR.
    basis = []
    for i, xi in enumerate(xs):
        numerator, denominator = 1, 1
        for j, xj in enumerate(xs):
            if i != j:
                numerator = gf_mul(numerator, xj)
                denominator = gf_mul(denominator, xi ^ xj)
        basis.append(gf_mul(numerator, gf_inv(denominator)))
    secret = bytearray(length - 1)
    for position in range(length - 1):
        value = 0
        for share, weight in zip(shares, basis, strict=True):
            value ^= gf_mul(share[position], weight)
        secret[position] = value
    return bytes(secret)
