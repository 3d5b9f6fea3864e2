"""The audit chain's formats, hashes and verification (see :mod:`reconciler.store.audit`).

Every row's ``entry_hash`` is recomputed here from the columns of :data:`HASHED_FIELDS`;
:func:`inspect_chains` walks each tenant's chain and reports the first break and what the
chain does not prove.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

import sqlalchemy as sa

from reconciler.crypto.audit_key import AuditKey
from reconciler.store import tables

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
_TABLE = tables.configuration_audit_logs.name
_VERIFY_FETCH_ROWS = 2000


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first place a tenant's chain does not verify.

    Attributes:
        tenant_id: the tenant.
        audit_id: the id of the first row that fails (for ``truncated``: the checkpoint's).
        kind: ``edited`` (the row's content does not match its hash), ``link`` (its
            ``prev_hash`` is not the previous row's hash: a row before it was deleted or
            inserted, or rows were reordered), ``unkeyed`` (an unkeyed row after keyed or
            database-recorded ones), ``format`` (an ``entry_hash`` of no known format, or a
            database-recorded row claiming an apply run or a review), ``checkpoint`` (the row at the
            checkpoint's position is not the one recorded) or ``truncated`` (the chain is
            shorter than the checkpoint).
        detail: one line for people.
    """

    tenant_id: str
    audit_id: int
    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class ChainHead:
    """A tenant's newest row as a checkpoint records it.

    Attributes:
        audit_id: the row's id.
        entry_hash: its ``entry_hash``.
        rows: how many rows the tenant's chain had up to and including it.
    """

    audit_id: int
    entry_hash: str
    rows: int


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Chain heads recorded at some moment, kept outside the database (see module docstring).

    Attributes:
        heads: by tenant.
        created_at: when it was taken (informational; not trusted for anything).
    """

    heads: dict[str, ChainHead]
    created_at: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What :func:`inspect_chains` found.

    Attributes:
        breaks: the first break of each broken tenant chain, by tenant.
        rows: how many rows were checked.
        heads: each verified tenant's newest ``entry_hash``.
        tips: each verified tenant's newest row with its position (what a checkpoint holds).
        keyed_rows: keyed rows seen.
        keyed_unverified: keyed rows whose content was not checked because no key was given
            (only their links were); zero when a key was given.
        unkeyed_rows: v1 rows seen (their hashes and links were checked).
        unkeyed_only: v1 rows that neither a verified keyed row nor the checkpoint covers.
            The database owner could have rewritten them, or written them in place of keyed
            rows (a whole tenant chain recomputed in the unkeyed format verifies as such):
            callers must not call such a chain intact without being told to accept them.
        database_rows: rows recorded by the database (their hashes and links were checked).
        database_uncovered: of those, the rows after their tenant's newest verified keyed
            row or checkpoint: normal (writes since the reconciler last wrote), but only a
            checkpoint protects them against the database owner.
    """

    breaks: list[ChainBreak]
    rows: int
    heads: dict[str, str] = field(default_factory=dict)
    tips: dict[str, ChainHead] = field(default_factory=dict)
    keyed_rows: int = 0
    keyed_unverified: int = 0
    unkeyed_rows: int = 0
    unkeyed_only: int = 0
    database_rows: int = 0
    database_uncovered: int = 0


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


# --- verifying ----------------------------------------------------------------------------


_VERIFY_SELECT = f"""
    SELECT tenant_id, id, entity_type::text AS entity_type, entity_id, entity_address,
           action::text AS action, changes::text AS changes, risk_level::text AS risk_level,
           risk_reasons::text AS risk_reasons, requires_review, performed_by,
           host(ip_address) AS ip_address, user_agent, session_id,
           apply_run_id::text AS apply_run_id, git_commit, source_path, created_at,
           prev_hash, entry_hash
      FROM {_TABLE}
"""


def verify_chain(
    conn: sa.Connection,
    tenants: Iterable[str] | None = None,
    *,
    key: AuditKey | None = None,
) -> list[ChainBreak]:
    """Recompute the hash chains; return the first break of each broken tenant (none: intact).

    Args:
        conn: any connection (read-only use).
        tenants: only these tenants; None checks every tenant.
        key: the audit key; without it keyed rows' contents are not checked (see
            :attr:`ChainReport.keyed_unverified`).
    """
    return inspect_chains(conn, tenants, key=key).breaks


def inspect_chains(
    conn: sa.Connection,
    tenants: Iterable[str] | None = None,
    *,
    key: AuditKey | None = None,
    checkpoint: Checkpoint | None = None,
) -> ChainReport:
    """Like :func:`verify_chain`, also counting rows, returning heads and checking a checkpoint.

    Rows are streamed in ``(tenant_id, id)`` order through a server-side cursor, so memory
    stays flat however long the log is.

    Args:
        checkpoint: heads recorded earlier; each (selected) tenant's chain must still hold
            the recorded row at the recorded position, else a ``checkpoint`` or ``truncated``
            break.
    """
    selected = None if tenants is None else sorted(set(tenants))
    expected = dict(checkpoint.heads) if checkpoint is not None else {}
    if selected is not None:
        expected = {t: h for t, h in expected.items() if t in selected}
    state = _ChainState(key)
    for row in _stream(conn, selected):
        state.feed(row, expected.get(row.tenant_id))
    state.finish()
    breaks = state.breaks
    for tenant, head in sorted(expected.items()):
        if tenant in state.checkpoint_seen or tenant in state.broken:
            continue
        have = state.counts.get(tenant, 0)
        breaks.append(
            ChainBreak(
                tenant,
                head.audit_id,
                "truncated",
                f"tenant {tenant} has {have} audit row(s), but the checkpoint recorded "
                f"{head.rows} ending at row {head.audit_id}: rows were removed from the end "
                "of its chain",
            )
        )
        state.tips.pop(tenant, None)
    breaks.sort(key=lambda b: b.tenant_id)
    return ChainReport(
        breaks=breaks,
        rows=state.rows,
        heads={t: tip.entry_hash for t, tip in state.tips.items()},
        tips=state.tips,
        keyed_rows=state.keyed_rows,
        keyed_unverified=state.keyed_unverified,
        unkeyed_rows=state.unkeyed_rows,
        unkeyed_only=state.unkeyed_only,
        database_rows=state.database_rows,
        database_uncovered=state.database_uncovered,
    )


class _ChainState:
    """The verifier's running state over rows in ``(tenant_id, id)`` order."""

    def __init__(self, key: AuditKey | None) -> None:
        self.key = key
        self.breaks: list[ChainBreak] = []
        self.tips: dict[str, ChainHead] = {}
        self.counts: dict[str, int] = {}
        self.broken: set[str] = set()
        self.checkpoint_seen: set[str] = set()
        self.rows = self.keyed_rows = self.keyed_unverified = 0
        self.unkeyed_rows = self.unkeyed_only = 0
        self.database_rows = self.database_uncovered = 0
        self._tenant: str | None = None
        self._prev: str | None = None
        self._keyed_seen = False
        self._trailing_unkeyed = 0
        self._trailing_database = 0

    def feed(self, row: sa.Row[Any], expected: ChainHead | None) -> None:
        self.rows += 1
        if row.tenant_id != self._tenant:
            self._end_tenant()
            self._tenant, self._prev, self._keyed_seen = row.tenant_id, None, False
        position = self.counts[row.tenant_id] = self.counts.get(row.tenant_id, 0) + 1
        if row.tenant_id in self.broken:
            return
        problem = self._check(row, expected, position)
        if problem is not None:
            self.breaks.append(problem)
            self.broken.add(row.tenant_id)
            self.tips.pop(row.tenant_id, None)
            self._trailing_unkeyed = self._trailing_database = 0
            return
        self._prev = row.entry_hash
        self.tips[row.tenant_id] = ChainHead(row.id, row.entry_hash, position)

    def finish(self) -> None:
        self._end_tenant()

    def _end_tenant(self) -> None:
        self.unkeyed_only += self._trailing_unkeyed
        self.database_uncovered += self._trailing_database
        self._trailing_unkeyed = self._trailing_database = 0

    def _check(
        self, row: sa.Row[Any], expected: ChainHead | None, position: int
    ) -> ChainBreak | None:
        where = f"audit row {row.id} of tenant {row.tenant_id}"
        version = chain_format(row.entry_hash)
        if version is None:
            return ChainBreak(
                row.tenant_id,
                row.id,
                "format",
                f"{where} has an entry_hash of no known chain format: written by a newer "
                "reconciler, or altered",
            )
        if version == 1 and self._keyed_seen:
            return ChainBreak(
                row.tenant_id,
                row.id,
                "unkeyed",
                f"{where} is not keyed but follows keyed or database-recorded rows: it was "
                "written or rewritten without the audit key",
            )
        if version == 3 and (row.apply_run_id is not None or row.action == "REVIEW"):
            # The database records writes made outside the reconciler; a row of that form
            # claiming an apply run or a review decision is trying to pass for a keyed one.
            return ChainBreak(
                row.tenant_id,
                row.id,
                "format",
                f"{where} is recorded by the database but claims "
                + ("an apply run" if row.apply_run_id is not None else "a review decision")
                + ": only keyed rows may",
            )
        record = dict(row._mapping)
        record["created_at"] = canonical_timestamp(row.created_at)
        if version == 1:
            self.unkeyed_rows += 1
            if entry_hash(record) != row.entry_hash:
                return _edited(row, where, "its hash")
        elif version == 3:
            self.database_rows += 1
            # Like keyed rows, they mark the end of the pre-keyed era: a v1 row after one
            # was not written by a reconciler.
            self._keyed_seen = True
            if database_entry_hash(record) != row.entry_hash:
                return _edited(row, where, "its hash")
        else:
            self.keyed_rows += 1
            self._keyed_seen = True
            if self.key is None:
                self.keyed_unverified += 1
            elif not hmac.compare_digest(keyed_entry_hash(record, self.key), row.entry_hash):
                return _edited(
                    row,
                    where,
                    "its keyed hash (or the audit key is not the one it was written with)",
                )
        if row.prev_hash != self._prev:
            previous = "the chain start" if self._prev is None else "the previous row"
            return ChainBreak(
                row.tenant_id,
                row.id,
                "link",
                f"{where} does not follow {previous}: "
                "a row before it was deleted or inserted, or rows were reordered",
            )
        if expected is not None and position == expected.rows:
            self.checkpoint_seen.add(row.tenant_id)
            if row.id != expected.audit_id or row.entry_hash != expected.entry_hash:
                return ChainBreak(
                    row.tenant_id,
                    row.id,
                    "checkpoint",
                    f"{where} is not the row the checkpoint recorded at position "
                    f"{expected.rows} (row {expected.audit_id}): the chain was rewritten",
                )
        if version == 1:
            self._trailing_unkeyed += 1
        if version == 3:
            self._trailing_database += 1
        if (version == 2 and self.key is not None) or (
            expected is not None and position == expected.rows
        ):
            # Everything up to here is covered: by a verified keyed row's prev_hash, or by
            # the checkpoint kept outside the database.
            self._trailing_unkeyed = self._trailing_database = 0
        return None


def _edited(row: sa.Row[Any], where: str, what: str) -> ChainBreak:
    return ChainBreak(
        row.tenant_id,
        row.id,
        "edited",
        f"{where} does not match {what}: its content was changed after it was written",
    )


def _stream(conn: sa.Connection, tenants: list[str] | None) -> Iterator[sa.Row[Any]]:
    where, params = "", {}
    if tenants is not None:
        where, params = " WHERE tenant_id = ANY(:tenants)", {"tenants": tenants}
    query = sa.text(_VERIFY_SELECT + where + " ORDER BY tenant_id, id")
    # Per statement: Connection.execution_options() would change the caller's connection.
    options = {"stream_results": True, "yield_per": _VERIFY_FETCH_ROWS}
    yield from conn.execute(query, params, execution_options=options)
