"""Write a plan's changes: set-based statements inside the caller's transaction.

One statement per table and action, never a round trip per row: the rows are staged with one
binary ``COPY`` into a temporary table (:mod:`reconciler.store.staging`), then merged by
``INSERT ... SELECT`` or ``UPDATE ... FROM`` it. Secrets are encrypted with the keyring's
active version just before the rows are staged, bound to the fingerprint stored beside them
(``rcn2``, see ``crypto.aead``); a row whose secrets did not change keeps its ciphertext (and
key version) untouched. Every write bumps ``row_version`` and is guarded by the version the
plan saw, so a row that moved underneath the plan fails the apply instead of being
overwritten. Runtime-owned columns are only initialised on create (health UNKNOWN, circuit
CLOSED, next sync from the interval).

When a statement fails (a constraint, a trigger), the rows of that statement are retried
one by one under savepoints to name the object that failed; the caller's transaction is
rolled back either way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from reconciler.crypto.aead import Cipher, CipherContext
from reconciler.errors import ApplyFailed, PlanStale
from reconciler.model.desired import DesiredState, SecretValue
from reconciler.model.fields import (
    INTEGRATION_FIELDS,
    WEBHOOK_FIELDS,
    FieldSpec,
    Kind,
    attribute_path,
    call,
    compile_record,
    identity_of,
    secrets_of,
)
from reconciler.model.plan import Action, Change, ResourceKind
from reconciler.store.staging import cast, stage_rows, staged_type

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
            (:func:`_tuples`).
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
        if kind not in _TABLES or action not in (Action.CREATE, Action.UPDATE):
            continue
        table = _TABLES[kind]
        if action is Action.CREATE:
            dicts = _upsert_rows(group, objects[kind], cipher, table)
            columns = _upsert_columns(table)
        else:
            dicts = _update_rows(group, objects[kind], cipher, table)
            columns = _update_columns(table)
        keys = [tuple(str(row[n]) for n in table.identity) for row in dicts]
        rows[kind, action] = (keys, _tuples(columns, dicts))
    return PreparedWrites(changes, rows)


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
                written += _upsert(conn, group, prepared.rows[kind, action], ctx, _INTEGRATION)
            case (ResourceKind.WEBHOOK, Action.CREATE):
                written += _upsert(conn, group, prepared.rows[kind, action], ctx, _WEBHOOK)
            case (ResourceKind.INTEGRATION, Action.UPDATE):
                written += _update(conn, group, prepared.rows[kind, action], ctx, _INTEGRATION)
            case (ResourceKind.WEBHOOK, Action.UPDATE):
                written += _update(conn, group, prepared.rows[kind, action], ctx, _WEBHOOK)
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


# -- table descriptions ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Table:
    """How one table's reconciled columns are bound, cast and keyed (from the field table)."""

    name: str
    identity: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]
    """(column, SQL type) of the identity and the reconciled non-secret columns."""
    values: Callable[[Any], dict[str, Any]]
    """The bound values of a desired object's identity and reconciled columns."""
    secrets: tuple[tuple[str, str, Callable[[Any], Any]], ...]
    """(ciphertext column, fingerprint column, secret of a desired object)."""
    context: Callable[[Any, str], CipherContext]
    interval_column: str | None
    runtime_on_create: tuple[tuple[str, str], ...]
    """(column, SQL value) of runtime-owned columns a create initialises."""
    runtime_on_restore: str
    """SET clause resetting runtime-owned columns when a soft-deleted row is declared again."""

    @classmethod
    def build(
        cls,
        name: str,
        fields: tuple[FieldSpec, ...],
        context: Callable[..., CipherContext],
        runtime_on_create: tuple[tuple[str, str], ...],
        runtime_on_restore: str,
    ) -> _Table:
        written = [f for f in fields if (f.identity or f.reconciled) and not f.secret]
        identity = tuple(_column(f) for f in identity_of(fields))
        identity_getters = tuple(_bound(f) for f in identity_of(fields))

        def bound_context(d: Any, column: str) -> CipherContext:
            return context(*(get(d) for get in identity_getters), column)

        return cls(
            name=name,
            identity=identity,
            columns=tuple((_column(f), f.sql_type) for f in written),
            values=compile_record(
                [
                    (_column(f), call(_BOUND_AS.get(f.kind, ""), attribute_path(f.desired_path)))
                    for f in written
                ],
                {"label": _label},
            ),
            secrets=tuple(
                (_column(f), f.fingerprint_column, f.read_desired) for f in secrets_of(fields)
            ),
            context=bound_context,
            interval_column=next((_column(f) for f in fields if f.schedules), None),
            runtime_on_create=runtime_on_create,
            runtime_on_restore=runtime_on_restore,
        )


def _column(spec: FieldSpec) -> str:
    return spec.column or spec.name


def _label(value: Any) -> Any:
    return None if value is None else value.value


_BOUND_AS: Mapping[Kind, str] = {Kind.ENUM: "label", Kind.LIST: "list", Kind.FLOAT: "float"}
"""How a desired value is bound when it is not a plain JSON value (enum labels, tuples)."""


def _bound(spec: FieldSpec) -> Callable[[Any], Any]:
    """A desired identity value as the statement binds it (enum labels)."""
    get = spec.read_desired
    if spec.kind is Kind.ENUM:
        return lambda d: _label(get(d))
    return get  # type: ignore[no-any-return]


def _next_sync(column: str, alias: str = "v") -> str:
    return f"CAST(:now AS timestamptz) + make_interval(mins => {alias}.{column})"


def _next_sync_immutable(column: str, alias: str) -> str:
    """:func:`_next_sync` built from IMMUTABLE parts only, from ``:now_utc`` (UTC, no zone).

    ``timestamptz + interval`` is STABLE, and Citus refuses a STABLE function over a column
    in an UPDATE of a distributed table. Minutes add the same on both types, so
    ``(utc + minutes) AT TIME ZONE 'UTC'`` is the same instant.
    """
    return (
        f"((CAST(:now_utc AS timestamp) + make_interval(mins => {alias}.{column}))"
        " AT TIME ZONE 'UTC')"
    )


_INTERVAL = next(f.name for f in INTEGRATION_FIELDS if f.schedules)

_INTEGRATION = _Table.build(
    "integration_configs",
    INTEGRATION_FIELDS,
    CipherContext.integration,
    runtime_on_create=(("health_status", "'UNKNOWN'"), ("next_sync_at", _next_sync(_INTERVAL))),
    runtime_on_restore=(
        "health_status = 'UNKNOWN', health_message = NULL, next_sync_at = EXCLUDED.next_sync_at"
    ),
)

_WEBHOOK = _Table.build(
    "webhook_configurations",
    WEBHOOK_FIELDS,
    CipherContext.webhook,
    runtime_on_create=(("circuit_breaker_status", "'CLOSED'"),),
    runtime_on_restore=(
        "circuit_breaker_status = 'CLOSED', consecutive_failures = 0, circuit_opened_at = NULL"
    ),
)


_TABLES: Mapping[ResourceKind, _Table] = {
    ResourceKind.INTEGRATION: _INTEGRATION,
    ResourceKind.WEBHOOK: _WEBHOOK,
}
"""The table of each kind whose creates and updates are written from desired objects."""


# -- secrets -------------------------------------------------------------------------------------


def _secret_columns(table: _Table, d: Any, cipher: Cipher) -> dict[str, Any]:
    """Encrypt every secret of a row with the active key version (None when absent)."""
    out: dict[str, Any] = {}
    any_secret = False
    for col, fingerprint_col, get in table.secrets:
        secret: SecretValue | None = get(d)
        if secret is None:
            out[col], out[fingerprint_col] = None, None
            continue
        if secret.value is None or secret.fingerprint is None:
            raise ApplyFailed(f"{d.address}: {col} was not decrypted; cannot apply")
        # Bound to the fingerprint stored beside it: a ciphertext copied back later next
        # to another fingerprint neither decrypts nor passes the plan's binding check.
        out[col] = cipher.encrypt(secret.value, table.context(d, col), secret.fingerprint)
        out[fingerprint_col] = secret.fingerprint
        any_secret = True
    out["encryption_key_version"] = cipher.active_version if any_secret else None
    return out


# -- statements ---------------------------------------------------------------------------------

_JSON = json.JSONEncoder(default=lambda v: _json_default(v))
"""Encodes one ``jsonb`` value (a mapping, a list or a tuple) for its staging column."""


def _json_default(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot write a value of type {type(value).__name__}")


def _json_text(value: Any) -> str | None:
    return None if value is None else _JSON.encode(value)


@dataclass(frozen=True, slots=True)
class _Staged:
    """Rows of one statement, staged: the table's name and what names each row."""

    name: str
    changes: list[Change]


def _tuples(
    names_types: Sequence[tuple[str, str]], rows: Sequence[Mapping[str, Any]]
) -> list[tuple[Any, ...]]:
    """``rows`` (dicts by column name) as staged: an ordinal ``n`` naming each row's change,
    then the values in column order, ``jsonb`` ones encoded as the JSON text they are cast
    from."""
    encoders = [(n, _json_text if t == "jsonb" else None) for n, t in names_types]
    return [
        (i, *[r[n] if enc is None else enc(r[n]) for n, enc in encoders])
        for i, r in enumerate(rows)
    ]


def _stage(
    conn: sa.Connection,
    changes: list[Change],
    names_types: Sequence[tuple[str, str]],
    rows: Sequence[tuple[Any, ...]],
    key: Sequence[str] = (),
) -> _Staged:
    """Stage ``rows`` (from :func:`_tuples`) for one statement over ``changes``."""
    columns = [("n", "integer"), *((n, staged_type(t)) for n, t in names_types)]
    return _Staged(stage_rows(conn, columns, rows, key=key), changes)


def _upsert_columns(table: _Table) -> list[tuple[str, str]]:
    return [*table.columns, *_secret_types(table)]


def _update_columns(table: _Table) -> list[tuple[str, str]]:
    return [
        ("id", "bigint"),
        ("row_version", "integer"),
        ("secrets_changed", "boolean"),
        *table.columns,
        *_secret_types(table),
    ]


def _secret_types(table: _Table) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for col, fingerprint_col, _ in table.secrets:
        out += [(col, "text"), (fingerprint_col, "text")]
    return [*out, ("encryption_key_version", "integer")]


def _upsert_rows(
    changes: list[Change], desired: Mapping[str, Any], cipher: Cipher, table: _Table
) -> list[dict[str, Any]]:
    rows = []
    for c in changes:
        d = desired[str(c.address)]
        rows.append({**table.values(d), **_secret_columns(table, d, cipher)})
    return rows


def _upsert(
    conn: sa.Connection,
    changes: list[Change],
    prepared: _GroupRows,
    ctx: WriteContext,
    table: _Table,
) -> list[WrittenChange]:
    """Insert new rows; restore soft-deleted ones (ON CONFLICT ... WHERE deleted)."""
    keys, staged_rows = prepared
    names_types = _upsert_columns(table)
    names = [n for n, _ in names_types]
    select_cols = ", ".join(cast(f"v.{n}", t) for n, t in names_types)
    runtime_cols = ", ".join(c for c, _ in table.runtime_on_create)
    runtime_values = ", ".join(v for _, v in table.runtime_on_create)
    restore = ", ".join(f"{n} = EXCLUDED.{n}" for n in names if n not in table.identity)
    staged = _stage(conn, changes, names_types, staged_rows)
    # WHERE before ON CONFLICT: the row filter of a retry names one row (see _locate).
    sql = f"""
        INSERT INTO {table.name} AS t ({", ".join(names)}, {runtime_cols},
            created_at, updated_at, created_by, updated_by, row_version)
        SELECT {select_cols}, {runtime_values},
            :now, :now, :actor, :actor, 1
        FROM {staged.name} AS v WHERE {{only}}
        ORDER BY v.n
        ON CONFLICT ({", ".join(table.identity)}) DO UPDATE SET {restore},
            {table.runtime_on_restore},
            deleted_at = NULL, deleted_by = NULL, updated_at = EXCLUDED.updated_at,
            updated_by = EXCLUDED.updated_by, row_version = t.row_version + 1
        WHERE t.deleted_at IS NOT NULL
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


def _update_rows(
    changes: list[Change], desired: Mapping[str, Any], cipher: Cipher, table: _Table
) -> list[dict[str, Any]]:
    rows = []
    for c in changes:
        d = desired[str(c.address)]
        secrets_changed = any(f.sensitive for f in c.fields)
        secret_cols = (
            _secret_columns(table, d, cipher)
            if secrets_changed
            else dict.fromkeys([n for n, _ in _secret_types(table)])
        )
        rows.append(
            {
                "id": c.row_id,
                "row_version": c.row_version,
                "secrets_changed": secrets_changed,
                **table.values(d),
                **secret_cols,
            }
        )
    return rows


def _update(
    conn: sa.Connection,
    changes: list[Change],
    prepared: _GroupRows,
    ctx: WriteContext,
    table: _Table,
) -> list[WrittenChange]:
    """Update changed rows, guarded by the row version the plan saw."""
    staged_rows = prepared[1]
    names_types = _update_columns(table)
    types = dict(names_types)
    plain = [n for n, _ in table.columns if n not in table.identity]
    sets = [f"{n} = v.{n}" for n in plain]
    sets += [
        f"{n} = CASE WHEN v.secrets_changed THEN v.{n} ELSE t.{n} END"
        for n, _ in _secret_types(table)
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
        values.append(f"{_next_sync_immutable(interval, 'r')} AS planned_next_sync_at")
    source = f"(SELECT {', '.join(values)} FROM {staged.name} AS r) AS v"
    sql = f"""
        UPDATE {table.name} AS t SET {", ".join(sets)},
            updated_at = :now, updated_by = :actor, row_version = t.row_version + 1
        FROM {source}
        WHERE t.tenant_id = v.tenant_id AND t.id = v.id AND t.row_version = v.row_version
          AND t.deleted_at IS NULL AND {{only}}
        RETURNING t.id
    """
    now_utc = ctx.now.astimezone(UTC).replace(tzinfo=None)
    params = {"now": ctx.now, "now_utc": now_utc, "actor": ctx.actor}
    result = _execute(conn, sql, params, staged)
    return _check_ids(changes, {r.id for r in result})


_KEYED = [("tenant_id", "text"), ("id", "bigint"), ("row_version", "integer")]
"""The staged columns of a write keyed by the row and the version the plan saw."""


def _keyed_rows(changes: list[Change]) -> list[dict[str, Any]]:
    return [
        {"tenant_id": c.address.tenant, "id": c.row_id, "row_version": c.row_version}
        for c in changes
    ]


def _soft_delete(
    conn: sa.Connection, changes: list[Change], ctx: WriteContext, table: str
) -> list[WrittenChange]:
    staged = _stage(
        conn, changes, _KEYED, _tuples(_KEYED, _keyed_rows(changes)), key=("tenant_id", "id")
    )
    sql = f"""
        UPDATE {table} AS t SET deleted_at = :now, deleted_by = :actor, is_active = false,
            updated_at = :now, updated_by = :actor, row_version = t.row_version + 1
        FROM {staged.name} AS v
        WHERE t.tenant_id = v.tenant_id AND t.id = v.id AND t.row_version = v.row_version
          AND {{only}}
        RETURNING t.id
    """
    result = _execute(conn, sql, {"now": ctx.now, "actor": ctx.actor}, staged)
    return _check_ids(changes, {r.id for r in result})


def _revoke(conn: sa.Connection, changes: list[Change], ctx: WriteContext) -> list[WrittenChange]:
    rows = [{**r, "reason": c.reason} for r, c in zip(_keyed_rows(changes), changes, strict=True)]
    columns = [*_KEYED, ("reason", "text")]
    staged = _stage(conn, changes, columns, _tuples(columns, rows), key=("tenant_id", "id"))
    sql = f"""
        UPDATE oauth_tokens AS t SET is_active = false, revoked_at = :now, revoked_by = :actor,
            revoked_reason = v.reason, updated_at = :now, row_version = t.row_version + 1
        FROM {staged.name} AS v
        WHERE t.tenant_id = v.tenant_id AND t.id = v.id AND t.row_version = v.row_version
          AND {{only}}
        RETURNING t.id
    """
    result = _execute(conn, sql, {"now": ctx.now, "actor": ctx.actor}, staged)
    return _check_ids(changes, {r.id for r in result})


def _mark_managed(
    conn: sa.Connection, changes: list[Change], ctx: WriteContext
) -> list[WrittenChange]:
    """Record that a manifest declares these tokens' accounts (``managed_since``).

    From then on the token is managed: when its account leaves the manifests, ``--prune``
    revokes it. Token material and the OAuth flow's columns are not touched.
    """
    staged = _stage(
        conn, changes, _KEYED, _tuples(_KEYED, _keyed_rows(changes)), key=("tenant_id", "id")
    )
    sql = f"""
        UPDATE oauth_tokens AS t SET managed_since = :now, row_version = t.row_version + 1
        FROM {staged.name} AS v
        WHERE t.tenant_id = v.tenant_id AND t.id = v.id AND t.row_version = v.row_version
          AND t.managed_since IS NULL AND {{only}}
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
