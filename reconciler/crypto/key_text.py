"""Keys given as text: base64 of random bytes, as every ``RECONCILER_*_KEY`` variable holds."""

from __future__ import annotations

import base64
import binascii

from reconciler.errors import ConfigError

MIN_KEY_BYTES = 32
"""Every symmetric key the reconciler accepts has at least 256 bits."""


def decode_key(text: str, *, source: str, min_bytes: int = MIN_KEY_BYTES) -> bytes:
    """The bytes of a base64 key from ``source`` (named in errors; the value never is).

    Raises:
        ConfigError: not base64, or shorter than ``min_bytes``.
    """
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{source} is not valid base64") from None
    if len(key) < min_bytes:
        raise ConfigError(
            f"{source} decodes to {len(key)} bytes; at least {min_bytes} are required"
        )
    return key
