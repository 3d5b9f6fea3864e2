"""Write a plan's changes: set-based statements inside the caller's transaction.

One statement per table and action, never a round trip per row: the rows are staged with one
binary ``COPY`` into a temporary table (:mod:`reconciler.store.staging`), then merged by
``INSERT ... SELECT`` or ``UPDATE ... FROM`` it. Secrets are encrypted with the keyring's
active version just before the rows are staged, bound to the fingerprint stored beside them
(``rcn2``, see ``crypto.aead``); a row whose secrets did not change keeps its ciphertext (and
key version) untouched. Every write bumps the row's version and is guarded by the version the
plan saw, so a row that moved underneath the plan fails the apply instead of being
overwritten. Runtime-owned columns are only initialised on create (health UNKNOWN, circuit
CLOSED, next sync from the interval).

When a statement fails (a constraint, a trigger), the rows of that statement are retried
one by one under savepoints to name the object that failed; the caller's transaction is
rolled back either way.

The rows themselves (the description of each written table, secrets encrypted, values
bound and encoded for staging) are made by :mod:`reconciler.store.write_rows`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from reconciler.crypto.aead import Cipher
from reconciler.errors import ApplyFailed, PlanStale
from reconciler.model.desired import DesiredState
from reconciler.model.plan import Action, Change, ResourceKind
from reconciler.store.row_state import (
    DELETED,
    MANAGED,
    REVOKED,
    SWITCHED_ON,
    TOKEN_ON,
    VERSION,
    bump_version,
    deleted,
    not_deleted,
    version_matches,
)
from reconciler.store.staging import cast, stage_rows, staged_type
from reconciler.store.write_rows import (
    INTEGRATION,
    KEYED,
    TABLES,
    WEBHOOK,
    Table,
    keyed_rows,
    next_sync_immutable,
    secret_types,
    tuples,
    update_columns,
    update_rows,
    upsert_columns,
    upsert_rows,
)

_LOCATE_LIMIT = 2000
"""Retry at most this many rows one by one to name a failing object."""


@dataclass(frozen=True, slots=True)
class WrittenChange:
    """A change as written: the change and the id of the row it wrote."""

    change: Change
    entity_id: int


@dataclass(frozen=True, slots=True)
class WriteContext:
    now: datetime
    actor: str
    cipher: Cipher


_GroupRows = tuple[list[tuple[str, ...]], list[tuple[Any, ...]]]


@dataclass(frozen=True, slots=True)
class PreparedWrites:
    """The rows of a plan's creates and updates, secrets encrypted, made before the
    transaction (:func:`prepare_writes`) so that it holds its locks only to send them.

    Attributes:
        changes: the changes they were made for; :func:`write_changes` uses them only for
            these very changes (a plan made again under the lock gets its rows made there).
        rows: by (kind, action) group, one row per change of the group, in order: the
            identity of each (as ``RETURNING`` gives it back: text) and the row as staged
            (:func:`tuples`).
    """

    changes: Sequence[Change]
    rows: Mapping[tuple[ResourceKind, Action], _GroupRows]


def _groups(changes: Sequence[Change]) -> dict[tuple[ResourceKind, Action], list[Change]]:
    by_group: dict[tuple[ResourceKind, Action], list[Change]] = {}
    for c in changes:
        by_group.setdefault((c.address.kind, c.action), []).append(c)
    return by_group


def write_order(changes: Sequence[Change]) -> list[Change]:
    """``changes`` in the order :func:`write_changes` writes and returns them: grouped by
    (kind, action), groups in order of first appearance, each group in plan order."""
    return [c for group in _groups(changes).values() for c in group]


def _by_address(desired: DesiredState) -> dict[ResourceKind, dict[str, Any]]:
    return {
        ResourceKind.INTEGRATION: {str(d.address): d for d in desired.integrations},
        ResourceKind.WEBHOOK: {str(d.address): d for d in desired.webhooks},
    }


def prepare_writes(
    changes: Sequence[Change], desired: DesiredState, cipher: Cipher
) -> PreparedWrites:
    """Make the rows of ``changes``' creates and updates (encrypting their secrets) now.

    Nothing here touches the database; :func:`write_changes` sends the rows.
    """
    objects = _by_address(desired)
    rows: dict[tuple[ResourceKind, Action], _GroupRows] = {}
    for (kind, action), group in _groups(changes).items():
        if kind not in TABLES or action not in (Action.CREATE, Action.UPDATE):
            continue
        table = TABLES[kind]
        if action is Action.CREATE:
            dicts = upsert_rows(group, objects[kind], cipher, table)
            columns = upsert_columns(table)
        else:
            dicts = update_rows(group, objects[kind], cipher, table)
            columns = update_columns(table)
        keys: list[tuple[str, ...]] = []
        rows[kind, action] = (keys, tuples(columns, _keyed(dicts, table.identity, keys)))
    return PreparedWrites(changes, rows)


def _keyed(
    rows: Iterable[dict[str, Any]], identity: Sequence[str], keys: list[tuple[str, ...]]
) -> Iterator[dict[str, Any]]:
    """``rows``, one at a time, with each one's identity (as text) appended to ``keys``: a
    row's dict lives only until its staged tuple is made."""
    for row in rows:
        keys.append(tuple(str(row[n]) for n in identity))
        yield row


def write_changes(
    conn: sa.Connection,
    changes: Sequence[Change],
    desired: DesiredState,
    ctx: WriteContext,
    on_written: Callable[[int], None] | None = None,
    prepared: PreparedWrites | None = None,
) -> list[WrittenChange]:
    """Apply ``changes`` (already ordered) and return them with their row ids.

    ``on_written``, when given, is called with the number of changes written after each
    (kind, action) group's statements (for progress). ``prepared``: rows made beforehand by
    :func:`prepare_writes`, used when they were made for these very ``changes``.
    """
    if prepared is None or prepared.changes is not changes:
        prepared = prepare_writes(changes, desired, ctx.cipher)
    written: list[WrittenChange] = []
    for (kind, action), group in _groups(changes).items():
        before = len(written)
        match (kind, action):
            case (ResourceKind.INTEGRATION, Action.CREATE):
                written += _upsert(conn, group, prepared.rows[kind, action], ctx, INTEGRATION)
            case (ResourceKind.WEBHOOK, Action.CREATE):
                written += _upsert(conn, group, prepared.rows[kind, action], ctx, WEBHOOK)
            case (ResourceKind.INTEGRATION, Action.UPDATE):
                written += _update(conn, group, prepared.rows[kind, action], ctx, INTEGRATION)
            case (ResourceKind.WEBHOOK, Action.UPDATE):
                written += _update(conn, group, prepared.rows[kind, action], ctx, WEBHOOK)
            case (ResourceKind.INTEGRATION, Action.DELETE):
                written += _soft_delete(conn, group, ctx, "integration_configs")
            case (ResourceKind.WEBHOOK, Action.DELETE):
                written += _soft_delete(conn, group, ctx, "webhook_configurations")
            case (ResourceKind.OAUTH_ACCOUNT, Action.REVOKE):
                written += _revoke(conn, group, ctx)
            case (ResourceKind.OAUTH_ACCOUNT, Action.UPDATE):
                written += _mark_managed(conn, group, ctx)
            case _:
                raise ApplyFailed(f"cannot apply {action.value} to {kind.value}")
        if on_written is not None:
            on_written(len(written) - before)
    return written


# -- statements ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Staged:
    """Rows of one statement, staged: the table's name and what names each row."""

    name: str
    changes: list[Change]


def _stage(
    conn: sa.Connection,
    changes: list[Change],
    names_types: Sequence[tuple[str, str]],
    rows: Sequence[tuple[Any, ...]],
    key: Sequence[str] = (),
) -> _Staged:
    """Stage ``rows`` (from :func:`tuples`) for one statement over ``changes``."""
    columns = [("n", "integer"), *((n, staged_type(t)) for n, t in names_types)]
    return _Staged(stage_rows(conn, columns, rows, key=key), changes)


def _upsert(
    conn: sa.Connection,
    changes: list[Change],
    prepared: _GroupRows,
    ctx: WriteContext,
    table: Table,
) -> list[WrittenChange]:
    """Insert new rows; restore soft-deleted ones (ON CONFLICT ... WHERE deleted)."""
    keys, staged_rows = prepared
    names_types = upsert_columns(table)
    names = [n for n, _ in names_types]
    select_cols = ", ".join(cast(f"v.{n}", t) for n, t in names_types)
    runtime_cols = ", ".join(c for c, _ in table.runtime_on_create)
    runtime_values = ", ".join(v for _, v in table.runtime_on_create)
    restore = ", ".join(f"{n} = EXCLUDED.{n}" for n in names if n not in table.identity)
    staged = _stage(conn, changes, names_types, staged_rows)
    # WHERE before ON CONFLICT: the row filter of a retry names one row (see _locate).
    sql = f"""
        INSERT INTO {table.name} AS t ({", ".join(names)}, {runtime_cols},
            created_at, updated_at, created_by, updated_by, {VERSION})
        SELECT {select_cols}, {runtime_values},
            :now, :now, :actor, :actor, 1
        FROM {staged.name} AS v WHERE {{only}}
        ORDER BY v.n
        ON CONFLICT ({", ".join(table.identity)}) DO UPDATE SET {restore},
            {table.runtime_on_restore},
            {DELETED} = NULL, deleted_by = NULL, updated_at = EXCLUDED.updated_at,
            updated_by = EXCLUDED.updated_by, {bump_version()}
        WHERE {deleted("t")}
        RETURNING t.id, {", ".join(f"CAST(t.{n} AS text) AS {n}" for n in table.identity)}
    """
    params = {"now": ctx.now, "actor": ctx.actor}
    result = _execute(conn, sql, params, staged)
    # RETURNING t.id, then the identity columns in order.
    ids: dict[tuple[str, ...], int] = {tuple(r[1:]): r[0] for r in result}
    written = []
    for c, key in zip(changes, keys, strict=True):
        if key not in ids:
            raise PlanStale(f"{c.address} already exists: it was created after the plan was made")
        written.append(WrittenChange(c, ids[key]))
    return written


def _update(
    conn: sa.Connection,
    changes: list[Change],
    prepared: _GroupRows,
    ctx: WriteContext,
    table: Table,
) -> list[WrittenChange]:
    """Update changed rows, guarded by the row version the plan saw."""
    staged_rows = prepared[1]
    names_types = update_columns(table)
    types = dict(names_types)
    plain = [n for n, _ in table.columns if n not in table.identity]
    sets = [f"{n} = v.{n}" for n in plain]
    sets += [
        f"{n} = CASE WHEN v.secrets_changed THEN v.{n} ELSE t.{n} END"
        for n, _ in secret_types(table)
    ]
    staged = _stage(conn, changes, names_types, staged_rows, key=("tenant_id", "id"))
    # Every cast and computed value is in FROM, never in SET: Citus refuses a function that
    # is not IMMUTABLE (an enum's input, timestamptz + interval) over a column in an UPDATE
    # of a distributed table.
    values = [f"{cast(f'r.{n}', types[n])} AS {n}" for n in types]
    if table.interval_column:
        interval = table.interval_column
        sets.append(
            f"next_sync_at = CASE WHEN v.{interval} IS DISTINCT FROM t.{interval} "
            "THEN v.planned_next_sync_at ELSE t.next_sync_at END"
        )
        values.append(f"{next_sync_immutable(interval, 'r')} AS planned_next_sync_at")
    source = f"(SELECT {', '.join(values)} FROM {staged.name} AS r) AS v"
    sql = f"""
        UPDATE {table.name} AS t SET {", ".join(sets)},
            updated_at = :now, updated_by = :actor, {bump_version()}
        FROM {source}
        WHERE t.tenant_id = v.tenant_id AND t.id = v.id AND {version_matches()}
          AND {not_deleted("t")} AND {{only}}
        RETURNING t.id
    """
    now_utc = ctx.now.astimezone(UTC).replace(tzinfo=None)
    params = {"now": ctx.now, "now_utc": now_utc, "actor": ctx.actor}
    result = _execute(conn, sql, params, staged)
    return _check_ids(changes, {r.id for r in result})


def _soft_delete(
    conn: sa.Connection, changes: list[Change], ctx: WriteContext, table: str
) -> list[WrittenChange]:
    staged = _stage(
        conn, changes, KEYED, tuples(KEYED, keyed_rows(changes)), key=("tenant_id", "id")
    )
    sql = f"""
        UPDATE {table} AS t SET {DELETED} = :now, deleted_by = :actor, {SWITCHED_ON} = false,
            updated_at = :now, updated_by = :actor, {bump_version()}
        FROM {staged.name} AS v
        WHERE t.tenant_id = v.tenant_id AND t.id = v.id AND {version_matches()}
          AND {{only}}
        RETURNING t.id
    """
    result = _execute(conn, sql, {"now": ctx.now, "actor": ctx.actor}, staged)
    return _check_ids(changes, {r.id for r in result})


def _revoke(conn: sa.Connection, changes: list[Change], ctx: WriteContext) -> list[WrittenChange]:
    rows = [{**r, "reason": c.reason} for r, c in zip(keyed_rows(changes), changes, strict=True)]
    columns = [*KEYED, ("reason", "text")]
    staged = _stage(conn, changes, columns, tuples(columns, rows), key=("tenant_id", "id"))
    sql = f"""
        UPDATE oauth_tokens AS t SET {TOKEN_ON} = false, {REVOKED} = :now, revoked_by = :actor,
            revoked_reason = v.reason, updated_at = :now, {bump_version()}
        FROM {staged.name} AS v
        WHERE t.tenant_id = v.tenant_id AND t.id = v.id AND {version_matches()}
          AND {{only}}
        RETURNING t.id
    """
    result = _execute(conn, sql, {"now": ctx.now, "actor": ctx.actor}, staged)
    return _check_ids(changes, {r.id for r in result})


def _mark_managed(
    conn: sa.Connection, changes: list[Change], ctx: WriteContext
) -> list[WrittenChange]:
    """Record that a manifest declares these tokens' accounts (since when: now).

    From then on the token is managed: when its account leaves the manifests, ``--prune``
    revokes it. Token material and the OAuth flow's columns are not touched.
    """
    staged = _stage(
        conn, changes, KEYED, tuples(KEYED, keyed_rows(changes)), key=("tenant_id", "id")
    )
    sql = f"""
        UPDATE oauth_tokens AS t SET {MANAGED} = :now, {bump_version()}
        FROM {staged.name} AS v
        WHERE t.tenant_id = v.tenant_id AND t.id = v.id AND {version_matches()}
          AND t.{MANAGED} IS NULL AND {{only}}
        RETURNING t.id
    """
    result = _execute(conn, sql, {"now": ctx.now}, staged)
    return _check_ids(changes, {r.id for r in result})


def _check_ids(changes: list[Change], ids: set[int]) -> list[WrittenChange]:
    for c in changes:
        if c.row_id not in ids:
            raise PlanStale(f"{c.address} changed in the database after the plan was made")
    return [WrittenChange(c, c.row_id) for c in changes if c.row_id is not None]


def _execute(
    conn: sa.Connection, sql: str, params: dict[str, Any], staged: _Staged
) -> list[sa.Row[Any]]:
    """Run one set-based statement over the staged rows; on failure name the object.

    ``sql`` has an ``{only}`` slot: ``true`` here, one staged row's filter in a retry.
    """
    stmt = sa.text(sql.format(only="true"))
    savepoint = conn.begin_nested()
    try:
        result = list(conn.execute(stmt, params))
        savepoint.commit()
        return result
    except sa_exc.DBAPIError as exc:
        savepoint.rollback()
        if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            raise
        culprit = _locate(conn, sql, params, staged)
        raise ApplyFailed(_describe(exc, culprit), says_nothing_written=True) from exc


def _locate(
    conn: sa.Connection, sql: str, params: dict[str, Any], staged: _Staged
) -> Change | None:
    if len(staged.changes) == 1:
        return staged.changes[0]
    one = sa.text(sql.format(only="v.n = :only_row"))
    for n, change in enumerate(staged.changes[:_LOCATE_LIMIT]):
        sp = conn.begin_nested()
        try:
            conn.execute(one, {**params, "only_row": n})
        except sa_exc.DBAPIError:
            sp.rollback()
            return change
        sp.rollback()
    return None


def _describe(exc: sa_exc.DBAPIError, culprit: Change | None) -> str:
    orig = exc.orig
    diag = getattr(orig, "diag", None)
    constraint = getattr(diag, "constraint_name", None)
    table = getattr(diag, "table_name", None)
    primary = getattr(diag, "message_primary", None) or str(orig).splitlines()[0]
    where = f"{culprit.action.value} {culprit.address}" if culprit else "a batch write"
    detail = f" (constraint {constraint} on {table})" if constraint else ""
    return f"{where} failed: {primary}{detail}; rolled back, nothing applied"
