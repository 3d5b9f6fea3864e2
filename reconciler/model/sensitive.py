"""Secret values held in memory only.

:class:`Sensitive` wraps a decrypted secret. Every way of turning it into text (``str``,
``repr``, ``format``, logging, JSON, pickling, pydantic serialization) yields a mask; the
plaintext is reachable only through :meth:`Sensitive.reveal`, which the few places that must
use it (re-encryption for the database, fingerprinting, domain checks on key prefixes) call
explicitly.
"""

from __future__ import annotations

from typing import Any, Generic, NoReturn, TypeVar

T = TypeVar("T")

MASK = "(sensitive)"


class Sensitive(Generic[T]):
    """A secret value that refuses to be printed or serialized.

    Equality compares plaintext in constant time for strings and bytes, so two manifests with
    the same secret compare equal without revealing it.
    """

    __slots__ = ("_value",)

    def __init__(self, value: T) -> None:
        self._value = value

    def reveal(self) -> T:
        """Return the plaintext. Call sites must not log, print or persist the result."""
        return self._value

    def __repr__(self) -> str:
        return f"Sensitive({MASK})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sensitive):
            return NotImplemented
        import hmac

        a, b = self._value, other._value
        if isinstance(a, str) and isinstance(b, str):
            return hmac.compare_digest(a.encode(), b.encode())
        if isinstance(a, bytes) and isinstance(b, bytes):
            return hmac.compare_digest(a, b)
        return bool(a == b)

    def __hash__(self) -> int:
        return hash(("Sensitive", self._value))

    def __reduce__(self) -> NoReturn:
        raise TypeError("Sensitive values cannot be pickled")

    def __getstate__(self) -> NoReturn:
        raise TypeError("Sensitive values cannot be pickled")

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.no_info_plain_validator_function(
            lambda v: v if isinstance(v, Sensitive) else Sensitive(v),
            serialization=core_schema.plain_serializer_function_ser_schema(lambda _v: MASK),
        )
