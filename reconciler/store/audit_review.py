"""Reading the audit log and reviewing its rows (see :mod:`reconciler.store.audit`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

import sqlalchemy as sa

from reconciler.core.approval import same_person
from reconciler.errors import ConfigError
from reconciler.model.enums import AuditAction, EntityType, ReviewDecision, RiskLevel
from reconciler.store import tables
from reconciler.store.audit_hash import DATABASE_PREFIX
from reconciler.store.audit_write import AuditContext, AuditEntry, append_audit_entries
from reconciler.store.locks import AUDIT_CHAIN_LOCK_KEY, acquire_xact_lock

# --- reading and reviewing ----------------------------------------------------------------

_TABLE = tables.configuration_audit_logs.name


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An audit row as ``audit list``/``pending`` show it (JSON-able via :meth:`to_dict`).

    The review fields are derived, not stored on the row: from the ``REVIEW`` row that
    decides on it (``review_id``), else, for a v1 row only, from the legacy review columns
    (``review_source`` ``legacy``: written before reviews were chained, so not covered by it).

    The security context: ``ip_address`` (the client address the server saw, None over a
    Unix socket), ``user_agent`` (the reconciler's ``reconciler/<version>``, or for a row
    recorded by the database the client's ``application_name``, which the client chooses),
    ``session_id`` (the reconciler's run, or the database backend ``<start>.<pid>`` as the
    server log's ``%c`` shows it) and ``recorded_by``: ``reconciler`` (keyed or v1 rows,
    written by the reconciler) or ``database`` (written by the database's recording trigger
    for a write made outside the reconciler; ``performed_by`` is then the database login).
    """

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
    review_id: int | None
    review_source: str | None
    performed_by: str
    git_commit: str | None
    apply_run_id: str | None
    source_path: str | None
    ip_address: str | None = None
    user_agent: str | None = None
    session_id: str | None = None
    recorded_by: str = "reconciler"

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


# The review of row a: its REVIEW row (one at most: unique index
# idx_configuration_audit_logs_review_of, which also serves this lookup), else for a v1 row
# the legacy columns. A keyed row's legacy columns are ignored: they are outside its hash.
_RECORD_SELECT = f"""
    SELECT a.id, a.tenant_id, a.created_at, a.entity_type::text AS entity_type, a.entity_id,
           a.entity_address, a.action::text AS action, a.risk_level::text AS risk_level,
           a.risk_reasons, a.changes, a.requires_review,
           CASE WHEN r.id IS NOT NULL THEN r.created_at
                WHEN {{legacy}} THEN a.reviewed_at END AS reviewed_at,
           CASE WHEN r.id IS NOT NULL THEN r.performed_by
                WHEN {{legacy}} THEN a.reviewed_by END AS reviewed_by,
           CASE WHEN r.id IS NOT NULL THEN r.changes ->> 'decision'
                WHEN {{legacy}} THEN a.review_decision::text END AS review_decision,
           CASE WHEN r.id IS NOT NULL THEN r.changes ->> 'note'
                WHEN {{legacy}} THEN a.review_note END AS review_note,
           r.id AS review_id,
           CASE WHEN r.id IS NOT NULL THEN 'chain'
                WHEN {{legacy}} THEN 'legacy' END AS review_source,
           a.performed_by, a.git_commit, a.apply_run_id::text AS apply_run_id, a.source_path,
           host(a.ip_address) AS ip_address, a.user_agent, a.session_id,
           CASE WHEN left(a.entry_hash, 1) = '{DATABASE_PREFIX}' THEN 'database'
                ELSE 'reconciler' END AS recorded_by
      FROM {_TABLE} a
      LEFT JOIN {_TABLE} r
        ON r.tenant_id = a.tenant_id AND r.action = 'REVIEW'
       AND r.changes ->> 'reviews' = a.id::text
""".replace("{legacy}", "a.review_decision IS NOT NULL AND left(a.entry_hash, 1) NOT IN ('k', 't')")


def _records(result: sa.CursorResult[Any]) -> list[AuditRecord]:
    return [AuditRecord(**row._mapping) for row in result]


class AuditFilters(TypedDict, total=False):
    """Which rows :func:`list_entries` returns besides its age filter (all optional): rows of
    ``tenant``, at ``min_risk`` or above, of apply ``run`` (an id or a unique prefix of one),
    of the object at ``address``; at most ``limit`` of them (default 50)."""

    tenant: str | None
    min_risk: RiskLevel | None
    limit: int
    run: str | None
    address: str | None


def list_entries(
    conn: sa.Connection,
    *,
    tenant: str | None = None,
    min_risk: RiskLevel | None = None,
    since: datetime | None = None,
    limit: int = 50,
    run: str | None = None,
    address: str | None = None,
) -> list[AuditRecord]:
    """Newest audit rows first (review rows included), filtered by tenant, risk, age, apply
    run (an id or a unique prefix of one) and object address."""
    clauses = ["true"]
    params: dict[str, Any] = {
        "limit": limit,
        "tenant": tenant,
        "since": since,
        "run": f"{run.lower()}%" if run else None,
        "address": address,
    }
    if run is not None:
        clauses.append("a.apply_run_id::text LIKE :run")
    if address is not None:
        clauses.append("a.entity_address = :address")
    if tenant is not None:
        clauses.append("a.tenant_id = :tenant")
    if min_risk is not None:
        clauses.append("a.risk_level::text = ANY(:levels)")
        params["levels"] = [r.value for r in RiskLevel if r >= min_risk]
    if since is not None:
        clauses.append("a.created_at >= :since")
    query = f"{_RECORD_SELECT} WHERE {' AND '.join(clauses)} ORDER BY a.created_at DESC, a.id DESC"
    return _records(conn.execute(sa.text(query + " LIMIT :limit"), params))


def pending_reviews(conn: sa.Connection, tenant: str | None = None) -> list[AuditRecord]:
    """HIGH and CRITICAL rows that require review and have no review yet, oldest first."""
    query = (
        f"{_RECORD_SELECT} WHERE a.requires_review AND a.risk_level >= 'HIGH'"
        " AND r.id IS NULL"
        " AND NOT (a.review_decision IS NOT NULL AND left(a.entry_hash, 1) NOT IN ('k', 't'))"
        + (" AND a.tenant_id = :tenant" if tenant is not None else "")
    )
    return _records(
        conn.execute(sa.text(query + " ORDER BY a.created_at, a.id"), {"tenant": tenant})
    )


def rejected_reviews(conn: sa.Connection, tenant: str | None = None) -> list[AuditRecord]:
    """Rows whose review decision is REJECTED, oldest first (what a compliance job fails on)."""
    query = f"SELECT * FROM ({_RECORD_SELECT}) x WHERE x.review_decision = 'REJECTED'" + (
        " AND x.tenant_id = :tenant" if tenant is not None else ""
    )
    return _records(
        conn.execute(sa.text(query + " ORDER BY x.created_at, x.id"), {"tenant": tenant})
    )


def review_entry(
    conn: sa.Connection,
    *,
    tenant: str | None,
    audit_id: int,
    decision: ReviewDecision,
    context: AuditContext,
    note: str | None,
    now: datetime,
) -> AuditRecord:
    """Append the review decision on one row that requires review and has none yet.

    The decision is a ``REVIEW`` row in the reviewed row's tenant chain, signed like every
    row, with the reviewer (``context.performed_by``) as its performer. Audit ids are unique
    across tenants; ``tenant``, when given, must match the row.

    Raises:
        ConfigError: no such row; the row does not require review; it was already reviewed
            (the message says by whom and when); or the reviewer is who performed the change.
        KeyUnavailable: ``context`` has no audit key.
    """
    # Under the chain lock, so the checks below still hold when the review row is appended.
    acquire_xact_lock(conn, AUDIT_CHAIN_LOCK_KEY, timeout_seconds=60.0, what="the audit lock")
    found = _records(
        conn.execute(
            sa.text(
                f"{_RECORD_SELECT} WHERE (CAST(:tenant AS text) IS NULL OR a.tenant_id = :tenant)"
                " AND a.id = :id"
            ),
            {"tenant": tenant, "id": audit_id},
        )
    )
    if not found:
        raise ConfigError(f"no audit row {audit_id}" + (f" for tenant {tenant}" if tenant else ""))
    record = found[0]
    where = f"audit row {audit_id} of tenant {record.tenant_id}"
    if not record.requires_review:
        raise ConfigError(f"{where} does not require review")
    if record.review_decision:
        when = record.reviewed_at.isoformat(timespec="seconds") if record.reviewed_at else "?"
        raise ConfigError(
            f"{where} was already reviewed: "
            f"{record.review_decision} by {record.reviewed_by} at {when}"
        )
    if same_person(context.performed_by, record.performed_by):
        raise ConfigError(
            f"{where} was performed by {record.performed_by}: "
            "a change must be reviewed by someone else"
        )
    append_audit_entries(
        conn,
        [
            AuditEntry(
                tenant_id=record.tenant_id,
                entity_type=EntityType(record.entity_type),
                entity_id=record.entity_id,
                entity_address=record.entity_address or "",
                action=AuditAction.REVIEW,
                changes={"reviews": audit_id, "decision": decision.value, "note": note},
                risk_level=RiskLevel(record.risk_level),
            )
        ],
        context,
        now=now,
    )
    return _records(
        conn.execute(
            sa.text(f"{_RECORD_SELECT} WHERE a.tenant_id = :tenant AND a.id = :id"),
            {"tenant": record.tenant_id, "id": audit_id},
        )
    )[0]


@dataclass(frozen=True, slots=True)
class SummaryRow:
    """One group of the daily audit summary."""

    audit_date: str
    entity_type: str
    action: str
    risk_level: str
    count: int


def daily_summary(conn: sa.Connection, days: int = 7) -> list[SummaryRow]:
    """The daily audit summary: counts per day, entity type, action and risk."""
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
