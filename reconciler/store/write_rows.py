"""The rows a plan's creates, updates and deletes write, made ready for staging.

Describes each written table from the field table (:class:`Table`: its identity, the
reconciled columns and their SQL types, its secrets and the runtime-owned columns a create
or restore initialises) and builds the rows of a statement from desired objects and
changes: secrets encrypted with the keyring's active version, values bound as the statement
takes them, ``jsonb`` values encoded as JSON text, and each row as the tuple
:mod:`reconciler.store.staging` copies. Nothing here touches the database; the statements
that merge the rows are in :mod:`reconciler.store.write`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.crypto.aead import Cipher, Place, integration_place, webhook_place
from reconciler.errors import ApplyFailed
from reconciler.model.desired import SecretValue
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
from reconciler.model.plan import Change, ResourceKind
from reconciler.store.row_state import VERSION

# -- table descriptions ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Table:
    """How one table's reconciled columns are bound, cast and keyed (from the field table)."""

    name: str
    identity: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]
    """(column, SQL type) of the identity and the reconciled non-secret columns."""
    values: Callable[[Any], dict[str, Any]]
    """The bound values of a desired object's identity and reconciled columns."""
    secrets: tuple[tuple[str, str, Callable[[Any], Any]], ...]
    """(ciphertext column, fingerprint column, secret of a desired object)."""
    place: Callable[[Any], Place]
    """Where a desired object's row keeps its ciphertexts (:data:`Place`)."""
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
        place: Callable[..., Place],
        runtime_on_create: tuple[tuple[str, str], ...],
        runtime_on_restore: str,
    ) -> Table:
        written = [f for f in fields if (f.identity or f.reconciled) and not f.secret]
        identity = tuple(_column(f) for f in identity_of(fields))
        identity_getters = tuple(_bound(f) for f in identity_of(fields))

        def bound_place(d: Any) -> Place:
            return place(*[get(d) for get in identity_getters])

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
            place=bound_place,
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


def next_sync_immutable(column: str, alias: str) -> str:
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

INTEGRATION = Table.build(
    "integration_configs",
    INTEGRATION_FIELDS,
    integration_place,
    runtime_on_create=(("health_status", "'UNKNOWN'"), ("next_sync_at", _next_sync(_INTERVAL))),
    runtime_on_restore=(
        "health_status = 'UNKNOWN', health_message = NULL, next_sync_at = EXCLUDED.next_sync_at"
    ),
)

WEBHOOK = Table.build(
    "webhook_configurations",
    WEBHOOK_FIELDS,
    webhook_place,
    runtime_on_create=(("circuit_breaker_status", "'CLOSED'"),),
    runtime_on_restore=(
        "circuit_breaker_status = 'CLOSED', consecutive_failures = 0, circuit_opened_at = NULL"
    ),
)


TABLES: Mapping[ResourceKind, Table] = {
    ResourceKind.INTEGRATION: INTEGRATION,
    ResourceKind.WEBHOOK: WEBHOOK,
}
"""The table of each kind whose creates and updates are written from desired objects."""


# -- secrets -------------------------------------------------------------------------------------


def _secret_columns(table: Table, d: Any, cipher: Cipher) -> dict[str, Any]:
    """Encrypt every secret of a row with the active key version (None when absent)."""
    out: dict[str, Any] = {}
    any_secret = False
    place: Place | None = None
    for col, fingerprint_col, get in table.secrets:
        secret: SecretValue | None = get(d)
        if secret is None:
            out[col], out[fingerprint_col] = None, None
            continue
        if secret.value is None or secret.fingerprint is None:
            raise ApplyFailed(f"{d.address}: {col} was not decrypted; cannot apply")
        # Bound to the fingerprint stored beside it: a ciphertext copied back later next
        # to another fingerprint neither decrypts nor passes the plan's binding check.
        if place is None:
            place = table.place(d)
        out[col] = cipher.encrypt_at(secret.value, place, col, secret.fingerprint)
        out[fingerprint_col] = secret.fingerprint
        any_secret = True
    out["encryption_key_version"] = cipher.active_version if any_secret else None
    return out


# -- rows -------------------------------------------------------------------------------------

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


def tuples(
    names_types: Sequence[tuple[str, str]], rows: Iterable[Mapping[str, Any]]
) -> list[tuple[Any, ...]]:
    """``rows`` (dicts by column name) as staged: an ordinal ``n`` naming each row's change,
    then the values in column order, ``jsonb`` ones encoded as the JSON text they are cast
    from."""
    encoders = [(n, _json_text if t == "jsonb" else None) for n, t in names_types]
    return [
        (i, *[r[n] if enc is None else enc(r[n]) for n, enc in encoders])
        for i, r in enumerate(rows)
    ]


def upsert_columns(table: Table) -> list[tuple[str, str]]:
    return [*table.columns, *secret_types(table)]


def update_columns(table: Table) -> list[tuple[str, str]]:
    return [
        ("id", "bigint"),
        (VERSION, "integer"),
        ("secrets_changed", "boolean"),
        *table.columns,
        *secret_types(table),
    ]


def secret_types(table: Table) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for col, fingerprint_col, _ in table.secrets:
        out += [(col, "text"), (fingerprint_col, "text")]
    return [*out, ("encryption_key_version", "integer")]


def upsert_rows(
    changes: list[Change], desired: Mapping[str, Any], cipher: Cipher, table: Table
) -> Iterator[dict[str, Any]]:
    """The rows (by column name) of ``changes``' creates, one at a time (see
    :func:`tuples`: only the staged form of every row is kept)."""
    for c in changes:
        d = desired[str(c.address)]
        yield {**table.values(d), **_secret_columns(table, d, cipher)}


def update_rows(
    changes: list[Change], desired: Mapping[str, Any], cipher: Cipher, table: Table
) -> Iterator[dict[str, Any]]:
    """The rows (by column name) of ``changes``' updates, one at a time."""
    for c in changes:
        d = desired[str(c.address)]
        secrets_changed = any(f.sensitive for f in c.fields)
        secret_cols = (
            _secret_columns(table, d, cipher)
            if secrets_changed
            else dict.fromkeys([n for n, _ in secret_types(table)])
        )
        yield {
            "id": c.row_id,
            VERSION: c.pinned_version,
            "secrets_changed": secrets_changed,
            **table.values(d),
            **secret_cols,
        }


KEYED = [("tenant_id", "text"), ("id", "bigint"), (VERSION, "integer")]
"""The staged columns of a write keyed by the row and the version the plan saw."""


def keyed_rows(changes: list[Change]) -> list[dict[str, Any]]:
    return [
        {"tenant_id": c.address.tenant, "id": c.row_id, VERSION: c.pinned_version} for c in changes
    ]
