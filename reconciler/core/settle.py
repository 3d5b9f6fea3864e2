"""Settle: find the declared objects that are stored exactly as declared, before any desired
object is made of them.

A fleet-wide plan from the manifest cache holds most objects as encoded rows
(:class:`~reconciler.model.desired.EncodedRows`), and nearly all of them are unchanged.
Making each one into a desired object only for the diff to find it equal costs more than
the rest of the plan; :func:`settle` compares the rows with the stored objects directly.
The equal ones are settled (:class:`Settled`): the diff counts them as declared and
unchanged, and matches the other rows, made into desired objects, only against the stored
objects the settled ones leave.

Equal here is stricter than the diff's "no change": the stored row is live and none of its
secrets is doubted, its stored fingerprints are the row's, and every value the diff compares
is equal as held (an enum's label equals its member). Whatever it does not settle (and
whatever it cannot read) is made into desired objects and diffed as before, so a row settled
here is one the diff would have found unchanged, and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from reconciler.model.actual import ActualIntegration, ActualState, ActualWebhook
from reconciler.model.desired import EncodedRows, Row
from reconciler.model.field_spec import compile_tuple, item
from reconciler.model.fields import (
    INTEGRATION_FIELDS,
    WEBHOOK_FIELDS,
    FieldSpec,
    Kind,
    attribute_path,
    identity_of,
    plain_of,
    secrets_of,
)

_Stored = TypeVar("_Stored", ActualIntegration, ActualWebhook)
_TAKEN: Any = object()
"""Where a settled stored object was: a second row with its key is an object declared twice."""


@dataclass(frozen=True, slots=True)
class Settled:
    """Declared objects found stored exactly as declared, and what is left for the diff.

    Attributes:
        rows: the settled objects' rows: declared, unchanged, and not in the desired state
            the diff is given.
        integrations: the stored integrations that are not settled, in the order read:
            all the diff still has to match (the state's own are still used for the rest of
            the plan: its read set and breakers).
        webhooks: the same for webhooks.
    """

    rows: EncodedRows
    integrations: tuple[ActualIntegration, ...]
    webhooks: tuple[ActualWebhook, ...]


@dataclass(frozen=True, slots=True)
class _Comparison:
    """How one kind's rows are keyed and compared with stored objects (from the field table)."""

    row_key: Callable[[Row], tuple[Any, ...]]
    stored_key: Callable[[Any], tuple[Any, ...]]
    row_values: Callable[[Row], tuple[Any, ...]]
    stored_values: Callable[[Any], tuple[Any, ...]]
    """The compared values, plain fields then fingerprints, of a row and of a stored object."""

    @classmethod
    def of(cls, fields: tuple[FieldSpec, ...]) -> _Comparison:
        at = {f.name: i for i, f in enumerate(fields)}
        labels: dict[str, Mapping[str, Any]] = {}
        key_items = []
        for f in identity_of(fields):
            if f.kind is Kind.ENUM and f.enum is not None:
                labels[f"{f.name}_member"] = {m.value: m for m in f.enum}
                key_items.append(f"{f.name}_member[{item('row', at[f.name])}]")
            else:
                key_items.append(item("row", at[f.name]))
        compared = (*plain_of(fields), *secrets_of(fields))
        return cls(
            compile_tuple(key_items, labels, "row"),
            compile_tuple([attribute_path(f.name) for f in identity_of(fields)]),
            compile_tuple([item("row", at[f.name]) for f in compared], None, "row"),
            compile_tuple(
                [attribute_path(f.fingerprint_column if f.secret else f.name) for f in compared]
            ),
        )


_INTEGRATIONS = _Comparison.of(INTEGRATION_FIELDS)
_WEBHOOKS = _Comparison.of(WEBHOOK_FIELDS)


def settle(rows: EncodedRows, actual: ActualState) -> tuple[Settled, EncodedRows]:
    """Split ``rows`` into those stored exactly as declared (with the stored objects they do
    not account for) and the rest, which the diff needs as desired objects.

    A row whose key cannot be read as the field table says (a label no enum has) is left in
    the rest, where making its desired object reports it. An object declared twice, or
    stored twice, settles nothing of its kind: the diff then sees every row.
    """
    settled_integrations, integrations, rest_integrations = _settle(
        _INTEGRATIONS, rows.integrations, actual.integrations
    )
    settled_webhooks, webhooks, rest_webhooks = _settle(_WEBHOOKS, rows.webhooks, actual.webhooks)
    return (
        Settled(EncodedRows(settled_integrations, settled_webhooks), integrations, webhooks),
        EncodedRows(rest_integrations, rest_webhooks),
    )


def _settle(
    how: _Comparison, rows: Sequence[Row], stored: Sequence[_Stored]
) -> tuple[tuple[Row, ...], tuple[_Stored, ...], tuple[Row, ...]]:
    """(the rows settled, the stored objects they do not account for, the other rows)."""
    if not rows:
        return (), tuple(stored), ()
    by_key = {how.stored_key(a): a for a in stored}
    if len(by_key) != len(stored):
        return (), tuple(stored), tuple(rows)
    stored_values = how.stored_values
    row_values = how.row_values
    settled: list[Row] = []
    rest: list[Row] = []
    for row in rows:
        try:
            key = how.row_key(row)
        except (KeyError, IndexError, TypeError):
            rest.append(row)
            continue
        a = by_key.get(key)
        if a is _TAKEN:  # declared twice
            return (), tuple(stored), tuple(rows)
        if a is not None and row_values(row) == stored_values(a) and a.live and not a.doubted:
            settled.append(row)
            by_key[key] = _TAKEN
        else:
            rest.append(row)
    left = tuple(a for a in by_key.values() if a is not _TAKEN)
    return tuple(settled), left, tuple(rest)
