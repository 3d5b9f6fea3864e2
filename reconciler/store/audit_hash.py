"""The audit chain's formats and hashes: what each row's ``entry_hash`` covers and how it is
computed (unkeyed v1, keyed v2, database-recorded), and the canonical text it is computed
from. The chain is verified by :mod:`reconciler.store.audit_chain`; rows are appended by
:mod:`reconciler.store.audit_write`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

from reconciler.crypto.audit_key import AuditKey

HASH_FORMAT = "reconciler-audit/v1"
"""The unkeyed format of rows written before the keyed chain (verified, never written)."""
KEYED_HASH_FORMAT = "reconciler-audit/v2"
"""The keyed format every new row is written in."""
KEYED_PREFIX = "k"
"""First character of a keyed ``entry_hash``; a v1 hash is 64 hex digits."""
DATABASE_PREFIX = "t"
"""First character of a database-recorded ``entry_hash`` (not a hex digit, unlike ``d``)."""
DATABASE_HASH_FORMAT = "reconciler-audit/db1"
"""First line of a database-recorded row's canonical text."""
HASHED_FIELDS = (
    "tenant_id",
    "id",
    "entity_type",
    "entity_id",
    "entity_address",
    "action",
    "changes",
    "risk_level",
    "risk_reasons",
    "requires_review",
    "performed_by",
    "ip_address",
    "user_agent",
    "session_id",
    "apply_run_id",
    "git_commit",
    "source_path",
    "created_at",
    "prev_hash",
)
"""Columns covered by ``entry_hash`` (both formats): all but ``entry_hash`` and the frozen
legacy review columns, which keyed rows never carry and whose content is ignored for them."""

_V1_HASH = re.compile(r"[0-9a-f]{64}")
_V2_HASH = re.compile(r"k[0-9a-f]{63}")
_DB_HASH = re.compile(r"t[0-9a-f]{63}")


def _canonical(record: Mapping[str, Any], fmt: str) -> bytes:
    canonical = {name: record[name] for name in HASHED_FIELDS}
    canonical["format"] = fmt
    return _CANONICAL_JSON.encode(canonical).encode("utf-8")


_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
"""What ``json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` uses,
built once (``json.dumps`` with options builds a new encoder per call)."""


def _json_scalar(value: Any) -> str:
    """One value of a canonical record as ``_CANONICAL_JSON`` encodes it."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return int.__repr__(value)
    if type(value) is str:
        return encode_basestring(value)
    return _CANONICAL_JSON.encode(value)


class KeyedHasher:
    """The keyed hashes of many rows that share the fields of one writer and one moment.

    The canonical JSON of :func:`keyed_entry_hash` is assembled from pieces encoded once (the
    shared fields, every key) and the row's own values, in the same key order, so it is the
    same bytes; a test holds the two to each other.

    Args:
        shared: the value of each hashed field every row shares (any subset of
            :data:`HASHED_FIELDS`).
        key: the audit key.
    """

    def __init__(self, shared: Mapping[str, Any], key: AuditKey) -> None:
        self._key = key
        keys = sorted([*HASHED_FIELDS, "format"])
        values = {**shared, "format": KEYED_HASH_FORMAT}
        self.fields = tuple(k for k in keys if k not in values)
        """The per-row fields, in the order :meth:`hash` takes their values."""
        # Between two per-row values: the constant text (shared fields and keys) in between.
        pieces: list[str] = []
        text = "{"
        for index, name in enumerate(keys):
            text += ("," if index else "") + encode_basestring(name) + ":"
            if name in values:
                text += _json_scalar(values[name])
            else:
                pieces.append(text)
                text = ""
        pieces.append(text + "}")
        self._pieces = pieces

    def hash(self, values: tuple[Any, ...]) -> str:
        """The keyed ``entry_hash`` of the row whose :attr:`fields` have ``values``."""
        pieces = self._pieces
        parts = [pieces[0]]
        append = parts.append
        for value, piece in zip(values, pieces[1:], strict=True):
            # The common scalars inline (a call per value is most of the cost).
            kind = type(value)
            if kind is str:
                append(encode_basestring(value))
            elif value is None:
                append("null")
            elif kind is int:
                append(int.__repr__(value))
            else:
                append(_json_scalar(value))
            append(piece)
        return KEYED_PREFIX + self._key.mac("".join(parts).encode("utf-8"))[:63]


def entry_hash(record: Mapping[str, Any]) -> str:
    """The unkeyed v1 hash: sha256 hex of the canonical JSON of :data:`HASHED_FIELDS`."""
    return hashlib.sha256(_canonical(record, HASH_FORMAT)).hexdigest()


def keyed_entry_hash(record: Mapping[str, Any], key: AuditKey) -> str:
    """The keyed v2 hash: ``k`` + the first 63 hex digits of the HMAC of the canonical JSON.

    63 digits (252 bits) keep it in the column's 64 characters with the format marker.
    """
    return KEYED_PREFIX + key.mac(_canonical(record, KEYED_HASH_FORMAT))[:63]


def database_entry_hash(record: Mapping[str, Any]) -> str:
    """The hash of a database-recorded row: ``t`` + 63 hex digits of ``sha256`` of its
    canonical text, as ``record_configuration_write()`` computes it in SQL.

    The canonical text is :data:`DATABASE_HASH_FORMAT`, a newline, then each field of
    :data:`HASHED_FIELDS` in order as ``<UTF-8 byte length>:<text>``, or ``-`` for NULL
    (booleans ``true``/``false``, numbers in decimal, the rest as :func:`inspect_chains`
    reads them). Length prefixes make it unambiguous without any escaping, so SQL and
    Python produce the same bytes.
    """
    parts = [DATABASE_HASH_FORMAT, "\n"]
    for name in HASHED_FIELDS:
        value = record[name]
        if value is None:
            parts.append("-")
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        parts.append(f"{len(text.encode('utf-8'))}:{text}")
    digest = hashlib.sha256("".join(parts).encode("utf-8")).hexdigest()
    return DATABASE_PREFIX + digest[:63]


def chain_format(value: str) -> int | None:
    """1 or 2 for a v1 or keyed ``entry_hash``, 3 for a database-recorded one; else None."""
    if _V2_HASH.fullmatch(value):
        return 2
    if _DB_HASH.fullmatch(value):
        return 3
    if _V1_HASH.fullmatch(value):
        return 1
    return None


def canonical_timestamp(value: datetime) -> str:
    """A timestamp as the hash covers it: UTC, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    if value.tzinfo is None:  # a timestamptz always comes back aware; be explicit anyway
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
