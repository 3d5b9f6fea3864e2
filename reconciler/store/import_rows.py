"""Read what ``reconciler import`` exports: one set-based query per table.

Unlike :mod:`reconciler.store.read` (which plans from fingerprints only), the import needs
the secrets themselves, so the ciphertext columns are read too; they are decrypted in memory
by :mod:`reconciler.importer.service` and never written anywhere in plaintext.
:func:`begin_snapshot` makes the reads one read-only snapshot. Soft-deleted
rows, revoked or inactive OAuth tokens and token material are not read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from reconciler.model.enums import Platform
from reconciler.model.fields import (
    INTEGRATION_FIELDS,
    OAUTH_ACCOUNT_FIELDS,
    ROW_FIELDS,
    TOKEN_FIELDS,
    WEBHOOK_FIELDS,
    ActualAccount,
    ActualIntegration,
    ActualWebhook,
    FieldSpec,
    identity_of,
)

from .read import converter, select_item
from .row_state import live_token, not_deleted

_ROW_ID, *_ROW_STATE = ROW_FIELDS


@dataclass(frozen=True, slots=True)
class StoredSecret:
    """One encrypted column of a row, as stored.

    Attributes:
        column: the column name (a secret field's column in the field table).
        ciphertext: the ``rcn2:`` (or legacy ``rcn1:``) value; decrypt only through the
            field cipher, with ``fingerprint``.
        fingerprint: the stored HMAC fingerprint the diff compares (may be ``None``, which
            the field cipher refuses).
    """

    column: str
    ciphertext: str
    fingerprint: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredIntegration(ActualIntegration):
    """A live ``integration_configs`` row as the plan reads it, plus its ciphertexts."""

    secrets: tuple[StoredSecret, ...]
    encryption_key_version: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredWebhook(ActualWebhook):
    """A live ``webhook_configurations`` row as the plan reads it, plus its ciphertexts.

    The retry and circuit-breaker columns are nullable in the schema; ``None`` means the
    row has no value, which a manifest cannot express (it always has the defaults).
    """

    secrets: tuple[StoredSecret, ...]
    encryption_key_version: int | None


_UNPLANNED = tuple(f for f in OAUTH_ACCOUNT_FIELDS if f.column and f not in TOKEN_FIELDS)
"""Account columns a manifest can declare but a plan does not read (the HubSpot user)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredAccount(ActualAccount):
    """An active, unrevoked ``oauth_tokens`` row as the plan reads it, with every account
    column (never the token).

    Attributes:
        environment_hint: ``metadata.environment`` when the OAuth flow recorded one; tokens
            have no column.
    """

    environment_hint: str | None


@dataclass(frozen=True, slots=True)
class StoredRows:
    """Everything the import reads for the selected tenants and platforms."""

    integrations: tuple[StoredIntegration, ...] = ()
    webhooks: tuple[StoredWebhook, ...] = ()
    accounts: tuple[StoredAccount, ...] = ()

    def files(self) -> frozenset[tuple[str, Platform]]:
        """``(tenant, platform)`` of every manifest these rows make."""
        rows: Sequence[Any] = (*self.integrations, *self.webhooks, *self.accounts)
        return frozenset((r.tenant_id, r.platform) for r in rows)

    def tenants(self) -> frozenset[str]:
        """Tenants that have at least one row."""
        return frozenset(tenant for tenant, _ in self.files())


_WHERE = """tenant_id = ANY(CAST(:tenants AS text[]))
    AND (cardinality(CAST(:platforms AS text[])) = 0
         OR CAST(platform AS text) = ANY(CAST(:platforms AS text[])))"""

_KEY_VERSION = "encryption_key_version"


@dataclass(frozen=True, slots=True)
class _Query:
    """One table's import query and how its rows map to ``Stored*`` fields, by column name."""

    sql: str
    labels: tuple[str, ...]
    converters: tuple[tuple[str, Callable[[Any], Any]], ...]
    secrets: tuple[tuple[str, str], ...]
    """(secret column, which is also its ciphertext's label; fingerprint label)."""

    @classmethod
    def build(
        cls,
        table: str,
        fields: tuple[FieldSpec, ...],
        where: str,
        order: tuple[str, ...],
        extra: tuple[tuple[str, str], ...] = (),
    ) -> _Query:
        """``extra``: (SQL expression, label) of values that are not fields."""
        items: list[str] = []
        labels: list[str] = []
        secrets: list[tuple[str, str]] = []
        converters: list[tuple[str, Callable[[Any], Any]]] = []
        for spec in fields:
            if spec.secret:
                column = spec.column or spec.name
                items += [column, spec.fingerprint_column]
                labels += [column, spec.fingerprint_column]
                secrets.append((column, spec.fingerprint_column))
                continue
            items.append(select_item(spec))
            labels.append(spec.name)
            convert = converter(spec)
            if convert is not None:
                converters.append((spec.name, convert))
        if secrets:
            items.append(_KEY_VERSION)
            labels.append(_KEY_VERSION)
        for expression, label in extra:
            items.append(f"{expression} AS {label}")
            labels.append(label)
        sql = (
            f"SELECT {', '.join(items)}\nFROM {table}\nWHERE {_WHERE} AND {where}\n"
            f"ORDER BY {', '.join(order)}"
        )
        return cls(sql, tuple(labels), tuple(converters), tuple(secrets))

    def rows(self, conn: sa.Connection, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        for row in conn.execute(sa.text(self.sql), params):
            values = dict(zip(self.labels, row, strict=True))
            for name, convert in self.converters:
                values[name] = convert(values[name])
            if self.secrets:
                values["secrets"] = _secrets(
                    [(column, values.pop(column), values[fp]) for column, fp in self.secrets]
                )
            yield values


def _config(table: str, fields: tuple[FieldSpec, ...]) -> _Query:
    """Live rows of a configuration table, in identity order."""
    identity = tuple(f.column or f.name for f in identity_of(fields))
    return _Query.build(table, (_ROW_ID, *fields, *_ROW_STATE), not_deleted(), identity)


_INTEGRATIONS = _config("integration_configs", INTEGRATION_FIELDS)
_WEBHOOKS = _config("webhook_configurations", WEBHOOK_FIELDS)
_ACCOUNTS = _Query.build(
    "oauth_tokens",
    (*TOKEN_FIELDS, *_UNPLANNED),
    live_token(),
    ("tenant_id", "platform", _ROW_ID.name),
    # The OAuth flow may record the environment; tokens have no column for it.
    extra=(("metadata->>'environment'", "environment_hint"),),
)


def begin_snapshot(conn: sa.Connection) -> None:
    """Make the current transaction one read-only snapshot (its first statement)."""
    conn.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))


def _secrets(pairs: Sequence[tuple[str, str | None, str | None]]) -> tuple[StoredSecret, ...]:
    return tuple(StoredSecret(c, text, fp) for c, text, fp in pairs if text is not None)


def read_rows(
    conn: sa.Connection, tenants: Sequence[str], platforms: Sequence[Platform] = ()
) -> StoredRows:
    """Read the live rows of ``tenants`` (optionally only ``platforms``): three queries."""
    params = {"tenants": list(tenants), "platforms": [p.value for p in platforms]}
    integrations = tuple(StoredIntegration(**v) for v in _INTEGRATIONS.rows(conn, params))
    webhooks = tuple(StoredWebhook(**v) for v in _WEBHOOKS.rows(conn, params))
    accounts = tuple(StoredAccount(**v) for v in _ACCOUNTS.rows(conn, params))
    return StoredRows(integrations, webhooks, accounts)
