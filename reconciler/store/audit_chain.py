"""The audit chain's verification (see :mod:`reconciler.store.audit`).

Every row's ``entry_hash`` is recomputed here from the columns of
:data:`~reconciler.store.audit_hash.HASHED_FIELDS` (the formats and hashes are in
:mod:`reconciler.store.audit_hash`); :func:`inspect_chains` walks each tenant's chain and
reports the first break and what the chain does not prove.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from reconciler.crypto.audit_key import AuditKey
from reconciler.store import tables
from reconciler.store.audit_hash import (
    canonical_timestamp,
    chain_format,
    database_entry_hash,
    entry_hash,
    keyed_entry_hash,
)

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
