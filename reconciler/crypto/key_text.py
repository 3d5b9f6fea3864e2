"""Keys given as text: base64 of random bytes, as every ``RECONCILER_*_KEY`` variable holds."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import ClassVar, Self

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


class TextKey:
    """Base of a key type made from base64 text: a value, or the environment variable
    :attr:`ENV`. The key is at least :data:`MIN_KEY_BYTES` long; its bytes never appear in an
    error message."""

    __slots__ = ()

    ENV: ClassVar[str]
    """The environment variable that holds the key."""
    NAME: ClassVar[str]
    """What the key is called in error messages (``the audit key``)."""

    def __init__(self, key: bytes) -> None:
        """Raises ConfigError when ``key`` is shorter than :data:`MIN_KEY_BYTES`."""
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(
                f"{self.NAME} is {len(key)} bytes; at least {MIN_KEY_BYTES} are required"
            )

    @classmethod
    def from_base64(cls, text: str, *, source: str) -> Self:
        """Decode a base64 key (from ``source``, named in errors).

        Raises:
            ConfigError: not base64, or shorter than :data:`MIN_KEY_BYTES`.
        """
        return cls(decode_key(text, source=source))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Self | None:
        """The key in the variable :attr:`ENV`; None when it is unset."""
        text = environ.get(cls.ENV, "").strip()
        return cls.from_base64(text, source=f"${cls.ENV}") if text else None
