"""The append-only, keyed hash chain of the audit log (``configuration_audit_logs``).

Every change the reconciler writes gets one row, in the same transaction as the change, and
so does every review decision. Rows form one chain per tenant, ordered by ``id``::

    prev_hash  = entry_hash of the tenant's previous row, NULL for its first row
    entry_hash = "k" + HMAC-SHA256(audit key, canonical JSON of the row)[:63 hex digits]

The audit key (:mod:`reconciler.crypto.audit_key`) is never stored in the database, so the
database owner, who can switch the append-only trigger off and rewrite any row, cannot make
an edited, inserted or reordered row verify. Removing a tenant's newest rows leaves a valid
but shorter chain: :func:`checkpoint_document` records the heads so that this is caught too
(keep the checkpoint outside the database, e.g. committed to git).

Chain formats, told apart by ``entry_hash`` itself (so the format survives a downgrade and
re-upgrade of the schema without a column to carry it):

* **v1** (64 hex digits): ``sha256`` of the canonical JSON with ``"format":
  "reconciler-audit/v1"``, unkeyed. Written before the keyed chain existed; still verified
  (anyone can recompute it, so on its own it proves nothing against the database owner) and
  extended: the first keyed row after v1 rows covers them through its ``prev_hash``.
* **v2** (``k`` + 63 hex digits): keyed as above, ``"format": "reconciler-audit/v2"``.
* **database-recorded** (``t`` + 63 hex digits): written by the database itself (the
  trigger function ``record_configuration_write()``) for a write to a configuration table
  that the reconciler does not audit itself, e.g. a service updating health columns. The
  database has no key, so the hash is an unkeyed ``sha256`` over a length-prefixed
  canonical text (:func:`database_entry_hash`). Such a row may follow keyed rows, and a
  keyed row after it covers it through ``prev_hash``. It can never stand in for a
  reconciler row: it may not carry an ``apply_run_id`` nor be a ``REVIEW`` (``format``
  break otherwise), ``audit list`` shows it as recorded by the database, and only the
  trigger function may insert one. Inserted between keyed rows it breaks the next keyed
  row's link; replacing a tenant's newest keyed rows with it is a truncation, which the
  checkpoint catches. Rows after a tenant's newest verified keyed row (or checkpoint) are
  counted in :attr:`ChainReport.database_uncovered`.
* anything else is refused as an unknown format (a newer reconciler's, or damage).

A v1 row after a keyed or database-recorded row of the same tenant is a break: the
reconciler never writes one, so it was written or rewritten by someone without the key.
The owner can still recompute a tenant's *whole* chain in the v1 format; so v1 rows that
no verified keyed row and no checkpoint covers are counted
(:attr:`ChainReport.unkeyed_only`), and ``audit verify`` fails on them unless told to
accept them (legitimately, right after the upgrade, for tenants that have had no change
since).

The canonical JSON is ``json.dumps(record, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` of the fields named in :data:`HASHED_FIELDS` plus the format. JSONB
columns enter it as PostgreSQL's own text rendering of the stored value (``changes::text``),
so that number formatting can never make a faithful row look tampered; timestamps as UTC
``YYYY-MM-DDTHH:MM:SS.ffffffZ``; addresses as ``host(ip_address)``.

Reviews are rows too: action ``REVIEW``, the reviewed row's entity, ``changes`` =
``{"reviews": <audit id>, "decision": "APPROVED"|"REJECTED", "note": ...}`` and the reviewer
as ``performed_by``. A unique index allows one review per row. The old review columns
(``reviewed_at``, ``reviewed_by``, ``review_decision``, ``review_note``) are no longer
written and the trigger refuses every UPDATE; a decision they hold from before the keyed
chain is still shown for v1 rows (as a ``legacy`` review) and ignored for keyed rows.

Appends are serialized by :data:`~reconciler.store.locks.AUDIT_CHAIN_LOCK_KEY` among
reconciler writers, and per tenant by :func:`tenant_chain_lock_key`, which the database's
recording function takes too (both held to the end of the appending transaction), so two
writers never both extend the same head. The unique index
``idx_configuration_audit_logs_successor`` (one successor per keyed or database-recorded
row) backs this for a writer whose snapshot predates the head (REPEATABLE READ).

A transaction whose configuration writes the reconciler audits itself calls
:func:`mark_audited_write` first, so that the database does not record them a second time.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from reconciler.crypto.audit_key import AUDIT_KEY_ENV, AuditKey
from reconciler.errors import ConfigError, KeyUnavailable, LockTimeout
from reconciler.model.enums import AuditAction, EntityType, ReviewDecision, RiskLevel
from reconciler.model.sensitive import Sensitive
from reconciler.store import tables
from reconciler.store.database import is_distributed
from reconciler.store.locks import AUDIT_CHAIN_LOCK_KEY, acquire_xact_lock, lock_key

_LOCK_NOT_AVAILABLE = "55P03"

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
AUDITED_WRITE_SETTING = "reconciler.audited_write"
"""Transaction-local setting that tells the recording trigger the reconciler audits the
transaction's writes itself (believed only from a login that may insert audit rows)."""
CHECKPOINT_FORMAT = "reconciler-audit-checkpoint/v1"

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
        key: the audit key that signs the rows (:func:`~reconciler.crypto.audit_key.
            load_audit_key`). Required to append: without it nothing is written.
    """

    performed_by: str
    ip_address: str | None
    user_agent: str
    session_id: str
    git_commit: str | None = None
    apply_run_id: UUID | None = None
    key: AuditKey | None = field(default=None, repr=False, compare=False)


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
        context: who performs them, and the audit key that signs them.
        now: ``created_at`` of every row, given explicitly so the hash is reproducible;
            must be timezone-aware.
        lock_timeout_seconds: how long to wait for another appender to commit.

    Returns:
        The number of rows inserted.

    Raises:
        KeyUnavailable: ``context`` has no audit key (nothing is written unsigned).
        SensitiveValueInAudit: a ``Sensitive`` value is in ``changes`` or ``risk_reasons``.
        LockTimeout: another transaction kept the audit chain lock too long.
    """
    if not entries:
        return 0
    key = context.key
    if key is None:
        raise KeyUnavailable(f"no audit key: set ${AUDIT_KEY_ENV} to write audit rows")
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
    _lock_tenant_chains(conn, tenants, lock_timeout_seconds)
    prepare = _PREPARE_DISTRIBUTED if is_distributed(conn) else _PREPARE
    prep = conn.execute(prepare, _prepare_params(len(entries), changes, reasons, tenants)).one()
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
        record["entry_hash"] = keyed_entry_hash(record, key)
        heads[entry.tenant_id] = record["entry_hash"]
        rows.append(record)

    conn.execute(_insert_statement(), _insert_params(rows, now))
    return len(rows)


def tenant_chain_lock_key(tenant: str) -> int:
    """The advisory lock key of ``tenant``'s chain, as the database's recording function
    computes it: the first 8 bytes of ``sha256("reconciler/audit-chain/<tenant>")``, signed."""
    return lock_key(f"reconciler/audit-chain/{tenant}")


def _lock_tenant_chains(conn: sa.Connection, tenants: Sequence[str], timeout: float) -> None:
    """Take every tenant's chain lock (key order, like the recording function), one statement."""
    keys = sorted({tenant_chain_lock_key(t) for t in tenants})
    savepoint = conn.begin_nested()
    try:
        previous = conn.execute(sa.text("SELECT current_setting('lock_timeout')")).scalar_one()
        milliseconds = f"{max(1, round(timeout * 1000))}ms"
        conn.execute(sa.text("SELECT set_config('lock_timeout', :v, true)"), {"v": milliseconds})
        conn.execute(
            sa.text(
                "SELECT count(pg_advisory_xact_lock(k))"
                " FROM unnest(CAST(:keys AS bigint[])) WITH ORDINALITY AS u(k, i)"
            ),
            {"keys": keys},
        )
        conn.execute(sa.text("SELECT set_config('lock_timeout', :v, true)"), {"v": previous})
    except DBAPIError as exc:
        savepoint.rollback()
        if getattr(exc.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
            raise
        raise LockTimeout(
            f"could not take the audit chain lock of {len(keys)} tenant(s) after {timeout:g}s: "
            "another transaction is writing to their configuration or audit rows"
        ) from None
    savepoint.commit()


def mark_audited_write(conn: sa.Connection, writer: str) -> None:
    """Tell the database that this transaction's configuration writes are audited here.

    Call at the start of a transaction that writes configuration rows and appends their
    keyed audit rows itself (apply, key rotation), so that the database's recording trigger
    does not record them a second time. Transaction-local; the database believes it only
    from a login that may insert audit rows itself (so a service setting it is still
    recorded).

    Args:
        conn: a connection inside the transaction.
        writer: what writes, for people reading ``pg_settings`` (e.g. ``apply <run id>``).
    """
    if is_distributed(conn):
        # On Citus the recording triggers fire on the shards, on the workers: SET LOCAL with
        # citus.propagate_set_commands = 'local' reaches them there (set_config() does not).
        literal = conn.execute(
            sa.text("SELECT quote_literal(:writer)"), {"writer": writer or "reconciler"}
        ).scalar_one()
        conn.execute(sa.text("SET LOCAL citus.propagate_set_commands = 'local'"))
        conn.execute(sa.text(f"SET LOCAL {AUDITED_WRITE_SETTING} = {literal}"))
        return
    conn.execute(
        sa.text("SELECT set_config(:name, :writer, true)"),
        {"name": AUDITED_WRITE_SETTING, "writer": writer or "reconciler"},
    )


def _canonical(record: Mapping[str, Any], fmt: str) -> bytes:
    canonical = {name: record[name] for name in HASHED_FIELDS}
    canonical["format"] = fmt
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


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


# One round trip: PostgreSQL's rendering of the JSON values (what the hash covers), new ids
# (so the hash can include them), the client address, and each tenant's chain head. The
# LATERAL ... LIMIT 1 is one index probe per tenant on the (tenant_id, id) primary key.
_HEADS = f"""
           ARRAY(SELECT h.entry_hash
                   FROM unnest(CAST(:tenants AS text[])) WITH ORDINALITY AS t(tenant_id, i)
                   LEFT JOIN LATERAL (
                        SELECT entry_hash FROM {_TABLE} a
                         WHERE a.tenant_id = t.tenant_id
                         ORDER BY a.id DESC LIMIT 1) h ON true
                  ORDER BY t.i) AS heads
"""
# On Citus (which cannot join a table function LATERALly with a distributed table): the
# heads as one DISTINCT ON query filtered by tenant, pushed down to the shards in parallel,
# then joined on the coordinator.
_HEADS_DISTRIBUTED = f"""
           ARRAY(SELECT h.entry_hash
                   FROM unnest(CAST(:tenants AS text[])) WITH ORDINALITY AS t(tenant_id, i)
                   LEFT JOIN (
                        SELECT DISTINCT ON (a.tenant_id) a.tenant_id, a.entry_hash
                          FROM {_TABLE} a
                         WHERE a.tenant_id = ANY(CAST(:tenants AS text[]))
                         ORDER BY a.tenant_id, a.id DESC) h ON h.tenant_id = t.tenant_id
                  ORDER BY t.i) AS heads
"""
_PREPARE_TEMPLATE = f"""
    SELECT host(inet_client_addr()) AS client,
           ARRAY(SELECT nextval(pg_get_serial_sequence('{_TABLE}', 'id'))
                   FROM generate_series(1, :n)) AS ids,
           ARRAY(SELECT c::jsonb::text
                   FROM json_array_elements(CAST(:changes AS json)) WITH ORDINALITY AS u(c, i)
                  ORDER BY i) AS changes,
           ARRAY(SELECT c::jsonb::text
                   FROM json_array_elements(CAST(:reasons AS json)) WITH ORDINALITY AS u(c, i)
                  ORDER BY i) AS reasons,
           {{heads}}
    """
_PREPARE = sa.text(_PREPARE_TEMPLATE.format(heads=_HEADS))
# On Citus the identity sequence hands out a different range on each node (the coordinator's
# and each worker's, where the recording trigger runs), so a new id is also taken above the
# highest id of the tenants appended to: each tenant's ids keep growing along its chain.
_IDS = f"""ARRAY(SELECT nextval(pg_get_serial_sequence('{_TABLE}', 'id'))
                   FROM generate_series(1, :n)) AS ids"""
_IDS_DISTRIBUTED = f"""ARRAY(SELECT greatest(nextval(pg_get_serial_sequence('{_TABLE}', 'id')),
                                 m.top + g)
                   FROM generate_series(1, :n) AS g,
                        (SELECT coalesce(max(a.id), 0) AS top FROM {_TABLE} a
                          WHERE a.tenant_id = ANY(CAST(:tenants AS text[]))) m) AS ids"""
assert _IDS in _PREPARE.text
_PREPARE_DISTRIBUTED = sa.text(
    _PREPARE_TEMPLATE.format(heads=_HEADS_DISTRIBUTED).replace(_IDS, _IDS_DISTRIBUTED)
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
        record["created_at"] = _timestamp(row.created_at)
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


# --- checkpoints --------------------------------------------------------------------------


def checkpoint_document(report: ChainReport, *, now: datetime) -> dict[str, Any]:
    """The JSON-able checkpoint of ``report``'s heads (call only for an intact report)."""
    if report.breaks:
        raise ValueError("a checkpoint of a broken chain would vouch for it")
    return {
        "format": CHECKPOINT_FORMAT,
        "created_at": _timestamp(now),
        "heads": {
            tenant: {"id": tip.audit_id, "entry_hash": tip.entry_hash, "rows": tip.rows}
            for tenant, tip in sorted(report.tips.items())
        },
    }


def chain_heads(conn: sa.Connection, tenants: Iterable[str]) -> dict[str, ChainHead]:
    """The newest row of each of ``tenants``' chains, as a checkpoint records it (no verification).

    For an apply's output, inside its transaction after :func:`append_audit_entries`: one
    statement, an index-only count per tenant on the ``(tenant_id, id)`` primary key.
    """
    rows = conn.execute(
        sa.text(
            f"""
            SELECT t.tenant_id, h.id, h.entry_hash, c.n
              FROM unnest(CAST(:tenants AS text[])) AS t(tenant_id)
              JOIN LATERAL (SELECT id, entry_hash FROM {_TABLE} a
                             WHERE a.tenant_id = t.tenant_id ORDER BY id DESC LIMIT 1) h ON true
              JOIN LATERAL (SELECT count(*) AS n FROM {_TABLE} a
                             WHERE a.tenant_id = t.tenant_id) c ON true
            """
        ),
        {"tenants": sorted(set(tenants))},
    )
    return {r.tenant_id: ChainHead(r.id, r.entry_hash, r.n) for r in rows}


def parse_checkpoint(text: str, *, source: str) -> Checkpoint:
    """Read a checkpoint written by :func:`checkpoint_document` (strict; nothing is executed).

    Raises:
        ConfigError: not JSON, another format or version, or a malformed head; the message
            names ``source`` and the place.
    """
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: not a JSON audit checkpoint ({exc})") from None
    fmt = data.get("format") if isinstance(data, dict) else None
    if fmt != CHECKPOINT_FORMAT:
        raise ConfigError(
            f"{source}: format {fmt!r} is not an audit checkpoint this reconciler reads "
            f"(expected {CHECKPOINT_FORMAT!r})"
        )
    raw = data.get("heads")
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: heads: expected an object of tenant heads")
    heads: dict[str, ChainHead] = {}
    for tenant, head in raw.items():
        place = f"{source}: heads.{tenant}"
        if not isinstance(head, dict) or set(head) != {"id", "entry_hash", "rows"}:
            raise ConfigError(f"{place}: expected exactly id, entry_hash and rows")
        audit_id, digest, rows = head["id"], head["entry_hash"], head["rows"]
        if type(audit_id) is not int or type(rows) is not int or rows < 1:
            raise ConfigError(f"{place}: id and rows must be integers, rows at least 1")
        if not isinstance(digest, str) or chain_format(digest) is None:
            raise ConfigError(f"{place}: entry_hash is not an audit chain hash")
        heads[tenant] = ChainHead(audit_id, digest, rows)
    created = data.get("created_at")
    return Checkpoint(heads=heads, created_at=created if isinstance(created, str) else "")


# --- reading and reviewing ----------------------------------------------------------------


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


def list_entries(
    conn: sa.Connection,
    *,
    tenant: str | None = None,
    min_risk: RiskLevel | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> list[AuditRecord]:
    """Newest audit rows first (review rows included), filtered by tenant, risk and age."""
    clauses = ["true"]
    params: dict[str, Any] = {"limit": limit, "tenant": tenant, "since": since}
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
    if _same_person(context.performed_by, record.performed_by):
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


def _same_person(a: str, b: str) -> bool:
    # Names are compared as people read them: "Root " and "root" are one person.
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


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
