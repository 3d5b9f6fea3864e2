"""Appending rows to the audit chain, signed with the audit key (see
:mod:`reconciler.store.audit`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from reconciler.crypto.audit_key import AUDIT_KEY_ENV, AuditKey
from reconciler.errors import ConfigError, KeyUnavailable, LockTimeout
from reconciler.model.enums import AuditAction, EntityType, RiskLevel
from reconciler.model.sensitive import Sensitive
from reconciler.store import tables
from reconciler.store.audit_hash import KeyedHasher, canonical_timestamp
from reconciler.store.database import is_distributed
from reconciler.store.jsonb_text import NotJson, jsonb_text
from reconciler.store.locks import AUDIT_CHAIN_LOCK_KEY, acquire_xact_lock, lock_key
from reconciler.store.staging import stage_and_merge_in_batches

_LOCK_NOT_AVAILABLE = "55P03"

AUDITED_WRITE_SETTING = "reconciler.audited_write"
"""Transaction-local setting that tells the recording trigger the reconciler audits the
transaction's writes itself (believed only from a login that may insert audit rows)."""


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


_TABLE = tables.configuration_audit_logs.name


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
    documents: Sequence[tuple[str, str]] | None = None,
    tenants: Iterable[str] | None = None,
) -> int:
    """Append ``entries`` to their tenants' chains, in order, inside the caller's transaction.

    After taking the audit chain lock: one statement that reads every affected tenant's chain
    head (and allocates ids), then per batch of
    :data:`~reconciler.store.staging.PIPELINE_ROWS` signed rows one binary ``COPY`` into a
    staging table and one set-based INSERT from it (each batch is signed while the database
    inserts the one before: :func:`~reconciler.store.staging.stage_and_merge_in_batches`).
    The ``jsonb`` text the hashes cover is rendered here (:mod:`~reconciler.store.jsonb_text`).

    Args:
        conn: a connection in the transaction that makes the audited changes.
        entries: rows to append; entries of one tenant are chained in the given order.
        context: who performs them, and the audit key that signs them.
        now: ``created_at`` of every row, given explicitly so the hash is reproducible;
            must be timezone-aware.
        lock_timeout_seconds: how long to wait for another appender to commit.
        documents: :func:`render_documents` of ``entries`` (or of entries differing only in
            ``entity_id``), when rendered beforehand, outside the transaction.
        tenants: the tenants of ``entries``, when the caller knows them without making every
            entry: ``entries`` is then read a slice at a time, as each batch is signed (a
            sequence that makes its entries when asked is made in the helper thread too).
            An entry of another tenant is refused (``ValueError``).

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
    created_at = canonical_timestamp(now)
    if documents is None:
        documents = render_documents(entries)
    elif len(documents) != len(entries):
        raise ValueError("one rendered (changes, risk_reasons) pair per entry is needed")
    ip_address = _normalize_ip(context.ip_address)
    tenants = sorted(set(tenants) if tenants is not None else {e.tenant_id for e in entries})

    acquire_xact_lock(
        conn, AUDIT_CHAIN_LOCK_KEY, timeout_seconds=lock_timeout_seconds, what="the audit lock"
    )
    _lock_tenant_chains(conn, tenants, lock_timeout_seconds)
    prepare = _PREPARE_DISTRIBUTED if is_distributed(conn) else _PREPARE
    prep = conn.execute(prepare, {"n": len(entries), "tenants": tenants}).one()
    heads: dict[str, str | None] = dict(zip(tenants, prep.heads, strict=True))
    client_ip = ip_address if context.ip_address is not None else prep.client
    ids = sorted(prep.ids)

    shared: dict[str, Any] = {
        "performed_by": context.performed_by,
        "ip_address": client_ip,
        "user_agent": context.user_agent,
        "session_id": context.session_id,
        "apply_run_id": str(context.apply_run_id) if context.apply_run_id else None,
        "git_commit": context.git_commit,
        "created_at": created_at,
    }
    hasher = KeyedHasher(shared, key)
    assert hasher.fields == _ROW_FIELDS

    def rows(start: int, stop: int) -> list[Sequence[Any]]:
        # Signed a batch at a time, in order (each row's hash chains to the one before it):
        # the signed rows are never all held at once.
        batch: list[Sequence[Any]] = []
        signed = zip(entries[start:stop], ids[start:stop], documents[start:stop], strict=True)
        for entry, row_id, (change_text, reason_text) in signed:
            tenant = entry.tenant_id
            if tenant not in heads:
                raise ValueError(f"an audit entry of {tenant!r} is not among the given tenants")
            # In the order of _ROW_FIELDS (the hashed fields no two rows share).
            values = (
                entry.action.value,
                change_text,
                entry.entity_address,
                entry.entity_id,
                entry.entity_type.value,
                row_id,
                heads[tenant],
                entry.requires_review,
                entry.risk_level.value,
                reason_text,
                entry.source_path,
                tenant,
            )
            entry_hash = hasher.hash(values)
            heads[tenant] = entry_hash
            batch.append((*values, entry_hash))
        return batch

    params = {**shared, "created_at": now.astimezone(UTC)}
    stage_and_merge_in_batches(
        conn,
        _STAGED_COLUMNS,
        len(entries),
        rows,
        lambda staged: conn.execute(_insert_statement(staged), params),
    )
    return len(entries)


def render_documents(entries: Iterable[AuditEntry]) -> list[tuple[str, str]]:
    """Each entry's ``changes`` and ``risk_reasons`` as the database prints them once stored
    (the text the hash covers), checked for unmasked secrets.

    Raises:
        SensitiveValueInAudit: a ``Sensitive`` value is in ``changes`` or ``risk_reasons``.
        TypeError: a value JSON cannot hold.
    """
    # Equal texts are kept once (most rows of a fleet-wide apply share their risk reasons,
    # and adopted accounts their changes): they are all held until the rows are written.
    seen: dict[str, str] = {}
    out: list[tuple[str, str]] = []
    for e in entries:
        changes = _to_json(e.changes, e, "changes")
        reasons = _to_json(list(e.risk_reasons), e, "risk_reasons")
        out.append((seen.setdefault(changes, changes), seen.setdefault(reasons, reasons)))
    return out


FLEET_CHAIN_LOCK_KEY = lock_key("reconciler/audit-chains")
"""Taken by every chain writer before its tenants' locks: shared by a writer of at most
:data:`FLEET_THRESHOLD` tenants, exclusively (instead of tenant locks) by a writer of more.
The recording function takes it too (migration ``fleet_chain_lock``)."""
FLEET_THRESHOLD = 256
"""Most tenants a writer locks one by one; the database's recording function uses the same."""


def tenant_chain_lock_key(tenant: str) -> int:
    """The advisory lock key of ``tenant``'s chain, as the database's recording function
    computes it: the first 8 bytes of ``sha256("reconciler/audit-chain/<tenant>")``, signed."""
    return lock_key(f"reconciler/audit-chain/{tenant}")


def _lock_tenant_chains(conn: sa.Connection, tenants: Sequence[str], timeout: float) -> None:
    """Lock the chains of ``tenants`` as every chain writer does (the recording function too).

    The fleet chain lock first: exclusively for more than :data:`FLEET_THRESHOLD` tenants
    (and no tenant locks, so a write to the whole fleet holds one lock, not one per tenant,
    which would overflow the server's lock table); shared otherwise, then each tenant's lock
    in key order, in one statement.
    """
    keys = sorted({tenant_chain_lock_key(t) for t in tenants})
    params: dict[str, Any] = {"fleet": FLEET_CHAIN_LOCK_KEY}
    if len(keys) > FLEET_THRESHOLD:
        statement = "SELECT pg_advisory_xact_lock(CAST(:fleet AS bigint))"
    else:
        params["keys"] = keys
        statement = (
            "SELECT pg_advisory_xact_lock_shared(CAST(:fleet AS bigint)),"
            " (SELECT count(pg_advisory_xact_lock(k))"
            "  FROM unnest(CAST(:keys AS bigint[])) WITH ORDINALITY AS u(k, i))"
        )
    savepoint = conn.begin_nested()
    try:
        previous = conn.execute(sa.text("SELECT current_setting('lock_timeout')")).scalar_one()
        milliseconds = f"{max(1, round(timeout * 1000))}ms"
        conn.execute(sa.text("SELECT set_config('lock_timeout', :v, true)"), {"v": milliseconds})
        conn.execute(sa.text(statement), params)
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


# One round trip: new ids (so the hash can include them), the client address, and each
# tenant's chain head. The
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


_ROW_FIELDS = (
    "action",
    "changes",
    "entity_address",
    "entity_id",
    "entity_type",
    "id",
    "prev_hash",
    "requires_review",
    "risk_level",
    "risk_reasons",
    "source_path",
    "tenant_id",
)
"""The hashed fields of a row that are its own (the others are the writer's), in the order
:class:`~reconciler.store.audit_hash.KeyedHasher` takes them."""

_STAGED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("action", "text"),
    ("changes", "text"),
    ("entity_address", "text"),
    ("entity_id", "bigint"),
    ("entity_type", "text"),
    ("id", "bigint"),
    ("prev_hash", "text"),
    ("requires_review", "boolean"),
    ("risk_level", "text"),
    ("risk_reasons", "text"),
    ("source_path", "text"),
    ("tenant_id", "text"),
    ("entry_hash", "text"),
)
assert tuple(n for n, _ in _STAGED_COLUMNS[:-1]) == _ROW_FIELDS


def _insert_statement(staged: str) -> sa.TextClause:
    """INSERT ... SELECT from the staged rows: one statement for any number of rows."""
    casts = {
        "entity_type": tables.entity_type_enum.name,
        "action": tables.audit_action_enum.name,
        "risk_level": tables.risk_level_enum.name,
        "changes": "jsonb",
        "risk_reasons": "jsonb",
    }
    per_row = [name for name, _ in _STAGED_COLUMNS]
    selected = [f"CAST(u.{n} AS {casts[n]})" if n in casts else f"u.{n}" for n in per_row]
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
        f"SELECT {', '.join(selected)} FROM {staged} AS u"
    )


def _to_json(value: Any, entry: AuditEntry, column: str) -> str:
    """``value`` as the database prints it once stored as ``jsonb`` (what the hash covers)."""

    def refuse(obj: Any) -> None:
        # Only reached for values JSON cannot hold; walk again to name the offending path.
        if isinstance(obj, Sensitive):
            _refuse_sensitive(value, entry, column)

    try:
        return jsonb_text(value, refuse)
    except NotJson as exc:
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
