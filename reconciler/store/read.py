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
import json
import json.scanner
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.types.json import set_json_loads

from reconciler.crypto.aead import CipherContext, check_binding
from reconciler.crypto.fingerprint import Fingerprinter
from reconciler.model.actual import (
    ActualIntegration,
    ActualState,
    ActualToken,
    ActualWebhook,
    SecretDoubt,
)
from reconciler.model.field_spec import call, compile_record, item
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


@dataclass(frozen=True, slots=True)
class _Reader:
    """One table's query and how its rows become model objects, built from the field table.

    Rows are mapped by the labels of the SELECT list, never by literal positions.
    """

    sql: str
    driver_sql: str
    """``sql`` with psycopg's placeholders, for :meth:`rows`."""
    labels: tuple[str, ...]
    record: Callable[[Sequence[Any]], dict[str, Any]]
    """A row's values by label, converted to the model's types (compiled from the labels)."""
    identity: tuple[str, ...]
    """Fields binding a ciphertext to its row (their labels are the context's parts)."""
    secrets: tuple[tuple[str, str, str], ...]
    """(secret field, ciphertext label, fingerprint label)."""

    @classmethod
    def build(cls, table: str, fields: tuple[FieldSpec, ...], secrets_too: bool) -> _Reader:
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
        # One generated dict display per row (positions come from the SELECT list built
        # above, never written by hand): a loop over labels and converters costs twice as much.
        helpers = {f"convert_{spec.name}": converter(spec) for spec in fields if not spec.secret}
        helpers = {name: convert for name, convert in helpers.items() if convert is not None}
        expressions = []
        for position, label in enumerate(labels):
            helper = f"convert_{label}" if f"convert_{label}" in helpers else ""
            expressions.append((label, call(helper, item("row", position))))
        record = compile_record(expressions, helpers, "row")
        sql = f"SELECT {', '.join(items)}\nFROM {table} WHERE {_WHERE}"
        driver_sql = sql
        for name in _PARAMS:
            driver_sql = driver_sql.replace(f":{name} ", f"%({name})s ")
        assert "%" not in sql and ":t" not in driver_sql.replace("::text", "")
        identity = tuple(f.name for f in identity_of(fields) if f.column is not None)
        return cls(sql, driver_sql, tuple(labels), record, identity, tuple(secrets))

    def rows(self, conn: sa.Connection, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        record, width = self.record, len(self.labels)
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
                    yield record(row)


_FETCH_ROWS = 2000
"""Rows converted from the query's result at a time (see :meth:`_Reader.rows`)."""

_PARAMS = ("tenants", "platforms", "excluded")
"""The bind parameters of :data:`_WHERE`."""

_DECODER = json.JSONDecoder()
_scan_json = json.scanner.make_scanner(_DECODER)  # type: ignore[arg-type]  # (typeshed)


def _json_loads(data: str | bytes) -> Any:
    """``json.loads(data)`` for the server's UTF-8 text, without guessing each value's
    encoding first or matching whitespace around it (the server writes none); the empty
    objects most JSON columns hold are not parsed at all. Anything unusual goes through
    ``json``'s own decoding, errors included."""
    text = data if isinstance(data, str) else data.decode("utf-8", "surrogatepass")
    if text == "{}":
        return {}
    try:
        value, end = _scan_json(text, 0)
    except StopIteration:
        end = -1
    return value if end == len(text) else _DECODER.decode(text)


_INTEGRATIONS = _Reader.build(
    "integration_configs", (_ROW_ID, *INTEGRATION_FIELDS, *_ROW_STATE), secrets_too=True
)
_WEBHOOKS = _Reader.build(
    "webhook_configurations", (_ROW_ID, *WEBHOOK_FIELDS, *_ROW_STATE), secrets_too=True
)
_TOKENS = _Reader.build("oauth_tokens", TOKEN_FIELDS, secrets_too=False)


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
    context: Callable[[str], CipherContext],
    reader: _Reader,
    values: dict[str, Any],
) -> Mapping[str, SecretDoubt]:
    """The doubted secrets of one row: each ciphertext checked against its fingerprint.

    Takes the ciphertexts and the key version out of ``values``.
    """
    version = values.pop(_KEY_VERSION)
    out: dict[str, SecretDoubt] | None = None
    for column, stored_label, fingerprint_label in reader.secrets:
        stored = values.pop(stored_label)
        fingerprint = values[fingerprint_label]
        if stored is None and fingerprint is None:
            continue  # nothing stored: nothing to doubt (and no context to make)
        doubt = check_binding(fingerprinter, stored, fingerprint, version, context(column))
        if doubt is not None:
            out = out or {}
            out[column] = doubt
    # Nearly every row has no doubt: they share one empty mapping (one dict fewer per row
    # to make, hold and free at fleet scale).
    return _NO_DOUBTS if out is None else out


_NO_DOUBTS: Mapping[str, SecretDoubt] = MappingProxyType({})


def _objects(
    conn: sa.Connection,
    params: Mapping[str, Any],
    reader: _Reader,
    make: Callable[..., Any],
    fingerprinter: Fingerprinter,
    context: Callable[..., CipherContext],
) -> Iterator[Any]:
    identity = reader.identity
    for values in reader.rows(conn, params):
        # The binding context is the row's identity as stored (enum members are labels).
        where = partial(context, *[values[n] for n in identity])
        doubted = _doubts(fingerprinter, where, reader, values)
        yield make(**values, doubted=doubted)


def read_actual_state(
    conn: sa.Connection,
    selectors: Selectors,
    fingerprinter: Fingerprinter,
    on_read: Callable[[int], None] | None = None,
) -> ActualState:
    """Read integrations, webhooks and OAuth token identities (three queries).

    ``fingerprinter`` (the fingerprint key, no database key) checks each stored ciphertext's
    binding to its fingerprint; see the module docstring. ``on_read``, when given, is called
    with the number of rows after each table is read (for progress).
    """
    params = selector_params(selectors)
    integrations = tuple(
        _objects(
            conn,
            params,
            _INTEGRATIONS,
            ActualIntegration,
            fingerprinter,
            CipherContext.integration,
        )
    )
    if on_read is not None:
        on_read(len(integrations))
    webhooks = tuple(
        _objects(conn, params, _WEBHOOKS, ActualWebhook, fingerprinter, CipherContext.webhook)
    )
    if on_read is not None:
        on_read(len(webhooks))
    tokens = tuple(ActualToken(**values) for values in _TOKENS.rows(conn, params))
    if on_read is not None:
        on_read(len(tokens))
    return ActualState(integrations, webhooks, tokens)


def read_row_versions(conn: sa.Connection, selectors: Selectors) -> tuple[RowRef, ...]:
    """The (table, id, version) of every selected row: the cheap under-lock stale check."""
    rows = conn.execute(sa.text(_VERSIONS), selector_params(selectors))
    return tuple(sorted(RowRef(entity, row_id, version) for entity, row_id, version in rows))
