"""The append-only, hash-chained audit log (``configuration_audit_logs``).

Every change the reconciler writes gets one row, in the same transaction as the change. Rows
form one hash chain per tenant::

    entry_hash = sha256(canonical JSON of the row's immutable columns, including prev_hash)
    prev_hash  = entry_hash of the tenant's previous row (by id), NULL for its first row

so editing a row breaks its own hash, and deleting, inserting or reordering rows breaks the
next row's link. The review columns (``reviewed_at``, ``reviewed_by``, ``review_decision``,
``review_note``) are outside the hash: they are the one part of a row that changes later, and
a database trigger refuses any other UPDATE and every DELETE.

The canonical JSON is ``json.dumps(record, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` of the fields named in :data:`HASHED_FIELDS` plus
``"format": "reconciler-audit/v1"``. JSONB columns enter it as PostgreSQL's own text
rendering of the stored value (``changes::text``), so that number formatting can never make a
faithful row look tampered; timestamps as UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ``; addresses as
``host(ip_address)``.

Appends are serialized by :data:`~reconciler.store.locks.AUDIT_CHAIN_LOCK_KEY` (held to the end
of the appending transaction), so two writers never both extend the same head.

The chain detects any change to the table's history except removal of a tenant's newest
rows; ``audit verify`` prints each tenant's head hash so that it can be recorded elsewhere.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from reconciler.errors import ConfigError
from reconciler.model.enums import AuditAction, EntityType, ReviewDecision, RiskLevel
from reconciler.model.sensitive import Sensitive
from reconciler.store import tables
from reconciler.store.locks import AUDIT_CHAIN_LOCK_KEY, acquire_xact_lock

HASH_FORMAT = "reconciler-audit/v1"
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
"""Columns covered by ``entry_hash``: all but ``entry_hash`` itself and the review columns."""

_TABLE = tables.configuration_audit_logs.name
_VERIFY_FETCH_ROWS = 2000


@dataclass(frozen=True, slots=True)
class AuditContext:
    """Who and what performs the changes of one run; the same for all its audit rows.

    Attributes:
        performed_by: the actor (see :func:`reconciler.context.resolve_actor`).
        ip_address: the client's address; None records the address the server sees
            (``inet_client_addr()``, itself NULL over a Unix socket).
        user_agent: ``reconciler/<version>`` plus the CI run.
        session_id: identifies one invocation of the reconciler.
        git_commit: the manifests' commit, when known.
        apply_run_id: the ``apply_runs`` row of an apply; None for other writers (rotation).
    """

    performed_by: str
    ip_address: str | None
    user_agent: str
    session_id: str
    git_commit: str | None = None
    apply_run_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit row to append.

    Attributes:
        tenant_id: the tenant whose chain the row extends.
        entity_type: the kind of row changed.
        entity_id: its ``id`` (None when the row no longer exists or has none yet).
        entity_address: its stable identity, e.g. ``acme/stripe/production/integration/API_KEY``.
        action: what happened.
        changes: JSON-able ``{field: {"before": ..., "after": ...}}``, already masked by the
            caller; a :class:`~reconciler.model.sensitive.Sensitive` anywhere in it is refused.
        risk_level: the change's risk.
        risk_reasons: the matched rules, each ``{"code", "level", "message"}``.
        requires_review: whether a reviewer must approve or reject the row.
        source_path: the manifest file the change came from, when there is one.
    """

    tenant_id: str
    entity_type: EntityType
    entity_id: int | None
    entity_address: str
    action: AuditAction
    changes: Mapping[str, Any]
    risk_level: RiskLevel
    risk_reasons: Sequence[Mapping[str, Any]] = ()
    requires_review: bool = False
    source_path: str | None = None


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first place a tenant's chain does not verify.

    Attributes:
        tenant_id: the tenant.
        audit_id: the id of the first row that fails.
        kind: ``edited`` (the row's content does not match its hash) or ``link`` (its
            ``prev_hash`` is not the previous row's hash: a row before it was deleted or
            inserted, or rows were reordered).
        detail: one line for people.
    """

    tenant_id: str
    audit_id: int
    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What :func:`inspect_chains` found.

    Attributes:
        breaks: the first break of each broken tenant chain, by tenant.
        rows: how many rows were checked.
        heads: each verified tenant's newest ``entry_hash`` (record it to detect truncation).
    """

    breaks: list[ChainBreak]
    rows: int
    heads: dict[str, str] = field(default_factory=dict)


class SensitiveValueInAudit(TypeError):
    """A caller tried to audit an unmasked secret: a bug, refused before anything is written."""


# --- appending ----------------------------------------------------------------------------


def append_audit_entries(
    conn: sa.Connection,
    entries: Sequence[AuditEntry],
    context: AuditContext,
    *,
    now: datetime,
    lock_timeout_seconds: float = 60.0,
) -> int:
    """Append ``entries`` to their tenants' chains, in order, inside the caller's transaction.

    Three statements whatever the number of entries: one that reads every affected tenant's
    chain head (and allocates ids), one set-based INSERT, after taking the audit chain lock.

    Args:
        conn: a connection in the transaction that makes the audited changes.
        entries: rows to append; entries of one tenant are chained in the given order.
        context: who performs them.
        now: ``created_at`` of every row, given explicitly so the hash is reproducible;
            must be timezone-aware.
        lock_timeout_seconds: how long to wait for another appender to commit.

    Returns:
        The number of rows inserted.

    Raises:
        SensitiveValueInAudit: a ``Sensitive`` value is in ``changes`` or ``risk_reasons``.
        LockTimeout: another transaction kept the audit chain lock too long.
    """
    if not entries:
        return 0
    if now.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    created_at = _timestamp(now)
    changes = [_to_json(e.changes, e, "changes") for e in entries]
    reasons = [_to_json(list(e.risk_reasons), e, "risk_reasons") for e in entries]
    ip_address = _normalize_ip(context.ip_address)
    tenants = sorted({e.tenant_id for e in entries})

    acquire_xact_lock(
        conn, AUDIT_CHAIN_LOCK_KEY, timeout_seconds=lock_timeout_seconds, what="the audit lock"
    )
    prep = conn.execute(_PREPARE, _prepare_params(len(entries), changes, reasons, tenants)).one()
    heads: dict[str, str | None] = dict(zip(tenants, prep.heads, strict=True))
    client_ip = ip_address if context.ip_address is not None else prep.client
    ids = sorted(prep.ids)

    rows: list[dict[str, Any]] = []
    for entry, row_id, change_text, reason_text in zip(
        entries, ids, prep.changes, prep.reasons, strict=True
    ):
        record: dict[str, Any] = {
            "tenant_id": entry.tenant_id,
            "id": row_id,
            "entity_type": entry.entity_type.value,
            "entity_id": entry.entity_id,
            "entity_address": entry.entity_address,
            "action": entry.action.value,
            "changes": change_text,
            "risk_level": entry.risk_level.value,
            "risk_reasons": reason_text,
            "requires_review": entry.requires_review,
            "performed_by": context.performed_by,
            "ip_address": client_ip,
            "user_agent": context.user_agent,
            "session_id": context.session_id,
            "apply_run_id": str(context.apply_run_id) if context.apply_run_id else None,
            "git_commit": context.git_commit,
            "source_path": entry.source_path,
            "created_at": created_at,
            "prev_hash": heads[entry.tenant_id],
        }
        record["entry_hash"] = entry_hash(record)
        heads[entry.tenant_id] = record["entry_hash"]
        rows.append(record)

    conn.execute(_insert_statement(), _insert_params(rows, now))
    return len(rows)


def entry_hash(record: Mapping[str, Any]) -> str:
    """sha256 hex of the canonical JSON of ``record``'s :data:`HASHED_FIELDS`."""
    canonical = {name: record[name] for name in HASHED_FIELDS}
    canonical["format"] = HASH_FORMAT
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# One round trip: PostgreSQL's rendering of the JSON values (what the hash covers), new ids
# (so the hash can include them), the client address, and each tenant's chain head. The
# LATERAL ... LIMIT 1 is one index probe per tenant on the (tenant_id, id) primary key.
_PREPARE = sa.text(
    f"""
    SELECT host(inet_client_addr()) AS client,
           ARRAY(SELECT nextval(pg_get_serial_sequence('{_TABLE}', 'id'))
                   FROM generate_series(1, :n)) AS ids,
           ARRAY(SELECT c::jsonb::text
                   FROM json_array_elements(CAST(:changes AS json)) WITH ORDINALITY AS u(c, i)
                  ORDER BY i) AS changes,
           ARRAY(SELECT c::jsonb::text
                   FROM json_array_elements(CAST(:reasons AS json)) WITH ORDINALITY AS u(c, i)
                  ORDER BY i) AS reasons,
           ARRAY(SELECT h.entry_hash
                   FROM unnest(CAST(:tenants AS text[])) WITH ORDINALITY AS t(tenant_id, i)
                   LEFT JOIN LATERAL (
                        SELECT entry_hash FROM {_TABLE} a
                         WHERE a.tenant_id = t.tenant_id
                         ORDER BY a.id DESC LIMIT 1) h ON true
                  ORDER BY t.i) AS heads
    """
)


def _prepare_params(
    n: int, changes: list[str], reasons: list[str], tenants: list[str]
) -> dict[str, Any]:
    # Each document is already JSON text: join them into one JSON array (one parameter,
    # escaped once in C) instead of a text[] whose elements psycopg escapes one by one.
    return {
        "n": n,
        "changes": "[" + ",".join(changes) + "]",
        "reasons": "[" + ",".join(reasons) + "]",
        "tenants": tenants,
    }


_ARRAY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("tenant_id", "text"),
    ("id", "bigint"),
    ("entity_type", "text"),
    ("entity_id", "bigint"),
    ("entity_address", "text"),
    ("action", "text"),
    ("changes", "text"),
    ("risk_level", "text"),
    ("risk_reasons", "text"),
    ("requires_review", "boolean"),
    ("source_path", "text"),
    ("prev_hash", "text"),
    ("entry_hash", "text"),
)


def _insert_statement() -> sa.TextClause:
    """INSERT ... SELECT FROM json_to_recordset(:rows): one statement for any number of rows."""
    casts = {
        "entity_type": tables.entity_type_enum.name,
        "action": tables.audit_action_enum.name,
        "risk_level": tables.risk_level_enum.name,
        "changes": "jsonb",
        "risk_reasons": "jsonb",
    }
    per_row = [name for name, _ in _ARRAY_COLUMNS]
    selected = [f"u.{n}::{casts[n]}" if n in casts else f"u.{n}" for n in per_row]
    columns = ", ".join(f"{n} {t}" for n, t in _ARRAY_COLUMNS)
    shared = ["performed_by", "ip_address", "user_agent", "session_id", "apply_run_id"]
    shared += ["git_commit", "created_at"]
    selected += [
        ":performed_by",
        "CAST(:ip_address AS inet)",
        ":user_agent",
        ":session_id",
        "CAST(:apply_run_id AS uuid)",
        ":git_commit",
        ":created_at",
    ]
    return sa.text(
        f"INSERT INTO {_TABLE} ({', '.join(per_row + shared)}) "
        f"SELECT {', '.join(selected)} "
        f"FROM json_to_recordset(CAST(:rows AS json)) AS u({columns})"
    )


def _insert_params(rows: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    names = [name for name, _ in _ARRAY_COLUMNS]
    params: dict[str, Any] = {"rows": json.dumps([{n: row[n] for n in names} for row in rows])}
    first = rows[0]
    for name in ("performed_by", "ip_address", "user_agent", "session_id", "apply_run_id"):
        params[name] = first[name]
    params["git_commit"] = first["git_commit"]
    params["created_at"] = now.astimezone(UTC)
    return params


def _to_json(value: Any, entry: AuditEntry, column: str) -> str:
    def refuse(obj: Any) -> Any:
        # Only reached for values JSON cannot hold; walk again to name the offending path.
        if isinstance(obj, Sensitive):
            _refuse_sensitive(value, entry, column)
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")

    try:
        return json.dumps(
            value, sort_keys=True, ensure_ascii=False, allow_nan=False, default=refuse
        )
    except SensitiveValueInAudit:
        raise
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"audit entry {entry.entity_address}: {column} is not JSON: {exc}"
        ) from None


def _refuse_sensitive(value: Any, entry: AuditEntry, path: str) -> None:
    if isinstance(value, Sensitive):
        raise SensitiveValueInAudit(
            f"audit entry {entry.entity_address}: {path} holds a Sensitive value; "
            "mask it before auditing (refusing to write it)"
        )
    if isinstance(value, Mapping):
        for key, item in value.items():
            _refuse_sensitive(item, entry, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _refuse_sensitive(item, entry, f"{path}[{index}]")


def _normalize_ip(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ConfigError(f"invalid client IP address {value!r}") from None


def _timestamp(value: datetime) -> str:
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


def verify_chain(conn: sa.Connection, tenants: Iterable[str] | None = None) -> list[ChainBreak]:
    """Recompute the hash chains; return the first break of each broken tenant (none: intact).

    Args:
        conn: any connection (read-only use).
        tenants: only these tenants; None checks every tenant.
    """
    return inspect_chains(conn, tenants).breaks


def inspect_chains(conn: sa.Connection, tenants: Iterable[str] | None = None) -> ChainReport:
    """Like :func:`verify_chain`, also counting rows and returning each intact chain's head.

    Rows are streamed in ``(tenant_id, id)`` order through a server-side cursor, so memory
    stays flat however long the log is.
    """
    breaks: list[ChainBreak] = []
    heads: dict[str, str] = {}
    rows = 0
    current: str | None = None
    expected_prev: str | None = None
    broken = False
    for row in _stream(conn, tenants):
        rows += 1
        if row.tenant_id != current:
            current, expected_prev, broken = row.tenant_id, None, False
        if broken:
            continue
        problem = _check_row(row, expected_prev)
        if problem is not None:
            breaks.append(problem)
            heads.pop(row.tenant_id, None)
            broken = True
            continue
        expected_prev = heads[row.tenant_id] = row.entry_hash
    return ChainReport(breaks=breaks, rows=rows, heads=heads)


def _stream(conn: sa.Connection, tenants: Iterable[str] | None) -> Iterator[sa.Row[Any]]:
    where, params = "", {}
    if tenants is not None:
        where, params = " WHERE tenant_id = ANY(:tenants)", {"tenants": sorted(set(tenants))}
    query = sa.text(_VERIFY_SELECT + where + " ORDER BY tenant_id, id")
    # Per statement: Connection.execution_options() would change the caller's connection.
    options = {"stream_results": True, "yield_per": _VERIFY_FETCH_ROWS}
    yield from conn.execute(query, params, execution_options=options)


def _check_row(row: sa.Row[Any], expected_prev: str | None) -> ChainBreak | None:
    record = dict(row._mapping)
    record["created_at"] = _timestamp(row.created_at)
    if entry_hash(record) != row.entry_hash:
        return ChainBreak(
            row.tenant_id,
            row.id,
            "edited",
            f"audit row {row.id} of tenant {row.tenant_id} does not match its hash: "
            "its content was changed after it was written",
        )
    if row.prev_hash != expected_prev:
        previous = "the chain start" if expected_prev is None else "the previous row"
        return ChainBreak(
            row.tenant_id,
            row.id,
            "link",
            f"audit row {row.id} of tenant {row.tenant_id} does not follow {previous}: "
            "a row before it was deleted or inserted, or rows were reordered",
        )
    return None


# --- reading and reviewing ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An audit row as ``audit list``/``pending`` show it (JSON-able via :meth:`to_dict`)."""

    id: int
    tenant_id: str
    created_at: datetime
    entity_type: str
    entity_id: int | None
    entity_address: str | None
    action: str
    risk_level: str
    risk_reasons: list[dict[str, Any]]
    changes: dict[str, Any]
    requires_review: bool
    reviewed_at: datetime | None
    reviewed_by: str | None
    review_decision: str | None
    review_note: str | None
    performed_by: str
    git_commit: str | None
    apply_run_id: str | None
    source_path: str | None

    @property
    def review_status(self) -> str:
        """``-`` (no review needed), ``PENDING``, ``APPROVED`` or ``REJECTED``."""
        if self.review_decision:
            return self.review_decision
        return "PENDING" if self.requires_review else "-"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (timestamps in ISO 8601)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for name in ("created_at", "reviewed_at"):
            data[name] = data[name].isoformat() if data[name] else None
        data["review_status"] = self.review_status
        return data


_RECORD_SELECT = f"""
    SELECT id, tenant_id, created_at, entity_type::text AS entity_type, entity_id,
           entity_address, action::text AS action, risk_level::text AS risk_level,
           risk_reasons, changes, requires_review, reviewed_at, reviewed_by,
           review_decision::text AS review_decision, review_note, performed_by, git_commit,
           apply_run_id::text AS apply_run_id, source_path
      FROM {_TABLE}
"""


def _records(result: sa.CursorResult[Any]) -> list[AuditRecord]:
    return [AuditRecord(**row._mapping) for row in result]


def list_entries(
    conn: sa.Connection,
    *,
    tenant: str | None = None,
    min_risk: RiskLevel | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> list[AuditRecord]:
    """Newest audit rows first, filtered by tenant, minimum risk and age."""
    clauses = ["true"]
    params: dict[str, Any] = {"limit": limit, "tenant": tenant, "since": since}
    if tenant is not None:
        clauses.append("tenant_id = :tenant")
    if min_risk is not None:
        clauses.append("risk_level::text = ANY(:levels)")
        params["levels"] = [r.value for r in RiskLevel if r >= min_risk]
    if since is not None:
        clauses.append("created_at >= :since")
    query = f"{_RECORD_SELECT} WHERE {' AND '.join(clauses)} ORDER BY created_at DESC, id DESC"
    return _records(conn.execute(sa.text(query + " LIMIT :limit"), params))


def pending_reviews(conn: sa.Connection, tenant: str | None = None) -> list[AuditRecord]:
    """Rows awaiting review: the seed's pending-reviews query (``idx_pending_reviews``)."""
    query = (
        f"{_RECORD_SELECT} WHERE requires_review = true AND reviewed_at IS NULL"
        " AND risk_level >= 'HIGH'" + (" AND tenant_id = :tenant" if tenant is not None else "")
    )
    return _records(conn.execute(sa.text(query + " ORDER BY created_at, id"), {"tenant": tenant}))


def review_entry(
    conn: sa.Connection,
    *,
    tenant: str | None,
    audit_id: int,
    decision: ReviewDecision,
    reviewed_by: str,
    note: str | None,
    now: datetime,
) -> AuditRecord:
    """Record a review decision on one row that requires review and has none yet.

    Audit ids are unique across tenants; ``tenant``, when given, must match the row.

    Raises:
        ConfigError: no such row, the row does not require review, or it was already reviewed
            (the message says by whom and when).
    """
    updated = conn.execute(
        sa.text(
            f"UPDATE {_TABLE} SET reviewed_at = :now, reviewed_by = :by,"
            f" review_decision = CAST(:decision AS {tables.review_decision_enum.name}),"
            " review_note = :note"
            " WHERE (CAST(:tenant AS text) IS NULL OR tenant_id = :tenant) AND id = :id"
            " AND requires_review AND reviewed_at IS NULL"
            " RETURNING id"
        ),
        {
            "now": now,
            "by": reviewed_by,
            "decision": decision.value,
            "note": note,
            "tenant": tenant,
            "id": audit_id,
        },
    ).one_or_none()
    current = _records(
        conn.execute(
            sa.text(
                f"{_RECORD_SELECT} WHERE (CAST(:tenant AS text) IS NULL OR tenant_id = :tenant)"
                " AND id = :id"
            ),
            {"tenant": tenant, "id": audit_id},
        )
    )
    if not current:
        raise ConfigError(f"no audit row {audit_id}" + (f" for tenant {tenant}" if tenant else ""))
    record = current[0]
    if updated is None and not record.requires_review:
        raise ConfigError(
            f"audit row {audit_id} of tenant {record.tenant_id} does not require review"
        )
    if updated is None:
        when = record.reviewed_at.isoformat(timespec="seconds") if record.reviewed_at else "?"
        raise ConfigError(
            f"audit row {audit_id} of tenant {record.tenant_id} was already reviewed: "
            f"{record.review_decision} by {record.reviewed_by} at {when}"
        )
    return record


@dataclass(frozen=True, slots=True)
class SummaryRow:
    """One group of the daily audit summary."""

    audit_date: str
    entity_type: str
    action: str
    risk_level: str
    count: int


def daily_summary(conn: sa.Connection, days: int = 7) -> list[SummaryRow]:
    """The seed's daily audit summary: counts per day, entity type, action and risk."""
    result = conn.execute(
        sa.text(
            "SELECT DATE(created_at)::text AS audit_date, entity_type::text AS entity_type,"
            "       action::text AS action, risk_level::text AS risk_level, COUNT(*) AS count"
            f"  FROM {_TABLE}"
            " WHERE created_at >= NOW() - make_interval(days => :days)"
            " GROUP BY DATE(created_at), entity_type, action, risk_level"
            # Qualified, so it sorts by the enum (LOW < ... < CRITICAL), not the text alias.
            f" ORDER BY 1 DESC, {_TABLE}.risk_level DESC, 2, 3"
        ),
        {"days": days},
    )
    return [SummaryRow(**row._mapping) for row in result]


_DURATION = re.compile(r"^(\d+)([mhdw])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, *, now: datetime) -> datetime:
    """``30d``/``12h``/``90m``/``2w`` before ``now``, or an ISO 8601 date or timestamp.

    Raises:
        ConfigError: neither form.
    """
    match = _DURATION.match(text.strip().lower())
    if match:
        return now - timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"--since {text!r}: expected a duration (30d, 12h, 90m, 2w) or a date (2024-05-01)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
