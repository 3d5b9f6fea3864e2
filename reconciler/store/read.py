"""Read the actual state: one set-based query per table, restricted to the selectors.

Secrets are never decrypted here (no database key is needed): the diff compares their
fingerprints, and each stored ciphertext's binding tag is checked with the fingerprint key,
so a ciphertext that is not the one written with its fingerprint (copied back from an
earlier value, swapped in from another row or column, or in the unbound legacy ``rcn1``
form) is reported in ``doubted`` and planned as a change. Soft-deleted rows are read too
(the diff restores them when a manifest declares them again).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from types import MappingProxyType
from typing import Any

import msgspec
import psycopg
import sqlalchemy as sa
from psycopg.types.json import set_json_loads

from reconciler.crypto.aead import Place, check_binding_at, integration_place, webhook_place
from reconciler.crypto.fingerprint import Fingerprinter
from reconciler.model.actual import (
    ActualIntegration,
    ActualState,
    ActualToken,
    ActualWebhook,
    SecretDoubt,
)
from reconciler.model.field_spec import call, compile_constructor, item
from reconciler.model.fields import (
    ACCOUNT_ID,
    INTEGRATION_FIELDS,
    ROW_FIELDS,
    TOKEN_FIELDS,
    WEBHOOK_FIELDS,
    FieldSpec,
    Kind,
    identity_of,
)
from reconciler.model.plan import RowRef, Selectors
from reconciler.store.row_state import VERSION

_ROW_ID, *_ROW_STATE = ROW_FIELDS

_WHERE = """
    (cardinality(CAST(:tenants AS text[])) = 0 OR tenant_id = ANY(CAST(:tenants AS text[])))
    AND (cardinality(CAST(:platforms AS text[])) = 0
         OR CAST(platform AS text) = ANY(CAST(:platforms AS text[])))
    AND NOT (tenant_id = ANY(CAST(:excluded AS text[])))
"""

ACCOUNT_ID_SQL = """CASE platform WHEN 'STRIPE' THEN stripe_account_id
    WHEN 'HUBSPOT' THEN hubspot_portal_id WHEN 'QUICKBOOKS' THEN quickbooks_realm_id END"""

_KEY_VERSION = "encryption_key_version"
_STORED = "__stored"
"""Suffix of the label a secret's ciphertext is selected under."""


def select_item(spec: FieldSpec) -> str:
    """The SELECT item of one field, labelled with the field's name (enums as their text)."""
    if spec is ACCOUNT_ID:
        return f"{ACCOUNT_ID_SQL} AS {spec.name}"
    column = spec.column or spec.name
    if spec.kind is Kind.ENUM:
        return f"{column}::text AS {spec.name}"
    return column if column == spec.name else f"{column} AS {spec.name}"


class _Labels(dict[str | None, Any]):
    """Enum label -> member (and NULL -> None) with one dictionary lookup per value.

    A label the enum does not know raises the enum's own ``ValueError``.
    """

    def __init__(self, enum_type: type[enum.StrEnum]) -> None:
        super().__init__({m.value: m for m in enum_type})
        self[None] = None
        self.enum_type = enum_type

    def __missing__(self, label: str) -> Any:
        return self.enum_type(label)


def converter(spec: FieldSpec) -> Callable[[Any], Any] | None:
    """How a selected value becomes the model's (None: it is used as read)."""
    if spec.kind is Kind.ENUM and spec.enum is not None:
        return _Labels(spec.enum).__getitem__
    if spec.kind is Kind.JSON:
        return _mapping
    if spec.kind is Kind.LIST:
        return _strings
    return None


def _mapping(value: Any) -> Any:
    return value or {}


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(value or ())


def _getter(positions: Sequence[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """The values at ``positions`` of a row, as a tuple (a row's own when it keeps all)."""
    if list(positions) == list(range(len(positions))):
        return tuple  # psycopg's rows are tuples already: returned as they are
    if len(positions) < 2:
        raise ValueError("a kept row has at least two values")
    getter: Callable[[Sequence[Any]], tuple[Any, ...]] = itemgetter(*positions)
    return getter


@dataclass(frozen=True, slots=True)
class _Reader:
    """One table's query and how its rows become model objects, built from the field table.

    Rows are mapped by the labels of the SELECT list, never by literal positions.
    """

    sql: str
    driver_sql: str
    """``sql`` with psycopg's placeholders, for :meth:`raw_batches`."""
    labels: tuple[str, ...]
    identity: tuple[str, ...]
    """Fields binding a ciphertext to its row (their labels are the context's parts)."""
    secrets: tuple[tuple[str, str, str], ...]
    """(secret field, ciphertext label, fingerprint label)."""
    keep: Callable[[Sequence[Any]], tuple[Any, ...]]
    """A row's values the model object is made of, as read (ciphertexts and the key
    version left out): what :class:`RowBatch` holds."""
    make: Callable[[tuple[Any, ...], Mapping[str, SecretDoubt]], Any]
    """The model object of a kept row and its doubts (compiled from the labels)."""
    positions: Mapping[str, int]
    """Each label's position in a row as read."""

    @classmethod
    def build(
        cls, table: str, fields: tuple[FieldSpec, ...], secrets_too: bool, model: type[Any]
    ) -> _Reader:
        items: list[str] = []
        labels: list[str] = []
        secrets: list[tuple[str, str, str]] = []
        for spec in fields:
            if spec.secret:
                items.append(spec.fingerprint_column)
                labels.append(spec.fingerprint_column)
                stored = f"{spec.name}{_STORED}"
                items.append(f"{spec.column} AS {stored}")
                labels.append(stored)
                secrets.append((spec.name, stored, spec.fingerprint_column))
            else:
                items.append(select_item(spec))
                labels.append(spec.name)
        if secrets_too:
            items.append(_KEY_VERSION)
            labels.append(_KEY_VERSION)
        helpers = {f"convert_{spec.name}": converter(spec) for spec in fields if not spec.secret}
        helpers = {name: convert for name, convert in helpers.items() if convert is not None}
        # One generated constructor call per row (positions come from the SELECT list built
        # above, never written by hand): no dict per row, no loop over labels and converters.
        dropped = {stored for _, stored, _ in secrets} | ({_KEY_VERSION} if secrets_too else set())
        kept = [label for label in labels if label not in dropped]
        values = {"doubted": "doubted"} if secrets_too else {}
        for position, label in enumerate(kept):
            helper = f"convert_{label}" if f"convert_{label}" in helpers else ""
            values[label] = call(helper, item("row", position))
        make = compile_constructor(model, values, helpers, "row, doubted")
        positions = {label: i for i, label in enumerate(labels)}
        keep = _getter([positions[label] for label in kept])
        sql = f"SELECT {', '.join(items)}\nFROM {table} WHERE {_WHERE}"
        driver_sql = sql
        for name in _PARAMS:
            driver_sql = driver_sql.replace(f":{name} ", f"%({name})s ")
        assert "%" not in sql and ":t" not in driver_sql.replace("::text", "")
        identity = tuple(f.name for f in identity_of(fields) if f.column is not None)
        return cls(
            sql,
            driver_sql,
            tuple(labels),
            identity,
            tuple(secrets),
            keep,
            make,
            positions,
        )

    def raw_batches(
        self, conn: sa.Connection, params: Mapping[str, Any]
    ) -> Iterator[list[Sequence[Any]]]:
        """The selected rows as read (JSON parsed, nothing else converted), a fetch at a
        time."""
        width = len(self.labels)
        # psycopg's own cursor, in the connection's transaction: SQLAlchemy's result rows
        # cost more than the values they carry, and JSON is read by _json_loads.
        driver = conn.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        with driver.cursor() as cursor:
            set_json_loads(_json_loads, cursor)
            cursor.execute(self.driver_sql, params)
            # Converted to Python a batch at a time: the rows of a whole table as Python
            # values (ciphertexts included) would live beside the objects made of them.
            while batch := cursor.fetchmany(_FETCH_ROWS):
                for row in batch:
                    if len(row) != width:
                        raise ValueError(f"expected {width} columns, got {len(row)}")
                yield batch


_FETCH_ROWS = 2000
"""Rows converted from the query's result at a time (see :meth:`_Reader.raw_batches`)."""

_PARAMS = ("tenants", "platforms", "excluded")
"""The bind parameters of :data:`_WHERE`."""

_json_loads = msgspec.json.Decoder().decode
"""The server's JSON text as :func:`json.loads` reads it (integers of any size included),
decoded from the bytes psycopg hands over, without making text of them first."""


_INTEGRATIONS = _Reader.build(
    "integration_configs",
    (_ROW_ID, *INTEGRATION_FIELDS, *_ROW_STATE),
    secrets_too=True,
    model=ActualIntegration,
)
_WEBHOOKS = _Reader.build(
    "webhook_configurations",
    (_ROW_ID, *WEBHOOK_FIELDS, *_ROW_STATE),
    secrets_too=True,
    model=ActualWebhook,
)
_TOKENS = _Reader.build("oauth_tokens", TOKEN_FIELDS, secrets_too=False, model=ActualToken)
_TABLES: tuple[tuple[_Reader, Callable[..., Place] | None], ...] = (
    (_INTEGRATIONS, integration_place),
    (_WEBHOOKS, webhook_place),
    (_TOKENS, None),
)
"""The tables the actual state is read from, in :attr:`RowBatch.table` order, with the
place (binding context but for the column) of their stored ciphertexts."""


_VERSIONS = f"""
SELECT 'integration_configs' AS entity, id, {VERSION} FROM integration_configs WHERE {_WHERE}
UNION ALL
SELECT 'webhook_configurations', id, {VERSION} FROM webhook_configurations WHERE {_WHERE}
UNION ALL
SELECT 'oauth_tokens', id, {VERSION} FROM oauth_tokens WHERE {_WHERE}
"""


def selector_params(selectors: Selectors) -> dict[str, Any]:
    """Bind parameters for the selector filter shared by every read."""
    return {
        "tenants": list(selectors.tenants),
        "platforms": [p.value for p in selectors.platforms],
        "excluded": list(selectors.exclude_tenants),
    }


def _doubts(
    fingerprinter: Fingerprinter,
    place: Place,
    secrets: Sequence[tuple[str, int, int]],
    version: int | None,
    row: Sequence[Any],
) -> Mapping[str, SecretDoubt] | None:
    """The doubted secrets of one row as read (None: none), each ciphertext checked
    against its fingerprint; ``secrets``: (column, ciphertext position, fingerprint
    position) of each."""
    out: dict[str, SecretDoubt] | None = None
    for column, stored_at, fingerprint_at in secrets:
        stored = row[stored_at]
        fingerprint = row[fingerprint_at]
        if stored is None and fingerprint is None:
            continue  # nothing stored: nothing to doubt
        doubt = check_binding_at(fingerprinter, stored, fingerprint, version, place, column)
        if doubt is not None:
            out = out or {}
            out[column] = doubt
    return out


_NO_DOUBTS: Mapping[str, SecretDoubt] = MappingProxyType({})
"""Nearly every row has no doubt: they share one empty mapping (one dict fewer per row to
make, hold and free at fleet scale)."""


@dataclass(frozen=True, slots=True)
class RowBatch:
    """Up to a fetch's worth of one table's rows, read and checked but not yet made into
    model objects (:class:`ActualObjects` makes them).

    Plain values only (text, numbers, timestamps, parsed JSON), so that a batch travels
    between processes cheaply; no ciphertext is kept (its binding was checked when it was
    read).
    """

    table: int
    """Which table: 0 integrations, 1 webhooks, 2 OAuth tokens."""
    rows: tuple[tuple[Any, ...], ...]
    """Each row's kept values (see ``_Reader.keep``), in the order read."""
    doubts: Mapping[int, Mapping[str, SecretDoubt]]
    """The doubted secrets of the rows that have any, by the row's index in :attr:`rows`."""


def read_row_batches(
    conn: sa.Connection,
    selectors: Selectors,
    fingerprinter: Fingerprinter,
    on_read: Callable[[int], None] | None = None,
) -> Iterator[RowBatch]:
    """Read integrations, webhooks and OAuth token identities (three queries, in that
    order), a batch at a time, each stored ciphertext's binding checked with
    ``fingerprinter`` (the fingerprint key, no database key; see the module docstring).
    ``on_read``, when given, is called with the number of rows after each table is read
    (for progress)."""
    params = selector_params(selectors)
    for table, (reader, place_of) in enumerate(_TABLES):
        keep = reader.keep
        at = reader.positions
        identity = itemgetter(*(at[n] for n in reader.identity))
        secrets = [(column, at[stored], at[fp]) for column, stored, fp in reader.secrets]
        count = 0
        for fetched in reader.raw_batches(conn, params):
            rows: list[tuple[Any, ...]] = []
            doubts: dict[int, Mapping[str, SecretDoubt]] = {}
            for row in fetched:
                if place_of is not None:
                    # The binding context is the row's identity as stored (enums as labels).
                    place = place_of(*identity(row))
                    doubted = _doubts(fingerprinter, place, secrets, row[at[_KEY_VERSION]], row)
                    if doubted is not None:
                        doubts[len(rows)] = doubted
                rows.append(keep(row))
            count += len(rows)
            yield RowBatch(table, tuple(rows), doubts)
        if on_read is not None:
            on_read(count)


class ActualObjects:
    """The actual state made from :class:`RowBatch` es, one batch at a time (so that the
    plain values of a whole table never live beside the objects made of them)."""

    def __init__(self) -> None:
        self._made: tuple[list[Any], list[Any], list[Any]] = ([], [], [])

    def add(self, batch: RowBatch) -> None:
        """Make the objects of ``batch``'s rows."""
        make, doubts = _TABLES[batch.table][0].make, batch.doubts
        if doubts:
            self._made[batch.table].extend(
                make(row, doubts.get(i, _NO_DOUBTS)) for i, row in enumerate(batch.rows)
            )
        else:
            self._made[batch.table].extend([make(row, _NO_DOUBTS) for row in batch.rows])

    def __len__(self) -> int:
        return sum(map(len, self._made))

    def state(self) -> ActualState:
        """Everything added, as the actual state."""
        integrations, webhooks, tokens = self._made
        return ActualState(tuple(integrations), tuple(webhooks), tuple(tokens))


def read_actual_state(
    conn: sa.Connection,
    selectors: Selectors,
    fingerprinter: Fingerprinter,
    on_read: Callable[[int], None] | None = None,
) -> ActualState:
    """Read integrations, webhooks and OAuth token identities (three queries): the objects
    of :func:`read_row_batches`' rows."""
    objects = ActualObjects()
    for batch in read_row_batches(conn, selectors, fingerprinter, on_read):
        objects.add(batch)
    return objects.state()


def read_row_versions(conn: sa.Connection, selectors: Selectors) -> tuple[RowRef, ...]:
    """The (table, id, version) of every selected row: the cheap under-lock stale check."""
    rows = conn.execute(sa.text(_VERSIONS), selector_params(selectors))
    return tuple(sorted(RowRef(entity, row_id, version) for entity, row_id, version in rows))
