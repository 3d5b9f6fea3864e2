"""The field table agrees with the model objects, the schema and the risk rules."""

from __future__ import annotations

import dataclasses

import pytest

from reconciler.core.risk import RULES
from reconciler.model.actual import ActualIntegration, ActualToken, ActualWebhook
from reconciler.model.desired import DesiredIntegration, DesiredOAuthAccount, DesiredWebhook
from reconciler.model.field_spec import compile_call, item
from reconciler.model.fields import (
    FIELD_RULES,
    INTEGRATION_FIELDS,
    OAUTH_ACCOUNT_FIELDS,
    TOKEN_FIELDS,
    WEBHOOK_FIELDS,
    FieldSpec,
    Owner,
    attribute_path,
    call,
    compile_record,
)
from reconciler.store.tables import metadata

ENTITIES = (
    ("integration_configs", INTEGRATION_FIELDS, DesiredIntegration, ActualIntegration),
    ("webhook_configurations", WEBHOOK_FIELDS, DesiredWebhook, ActualWebhook),
)


def _attributes(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


@pytest.mark.parametrize(("table", "fields", "desired", "actual"), ENTITIES)
def test_every_field_has_its_column_and_attributes(
    table: str, fields: tuple[FieldSpec, ...], desired: type, actual: type
) -> None:
    columns = set(metadata.tables[table].columns.keys())
    for spec in fields:
        assert spec.column in columns, spec
        if spec.secret:
            assert spec.fingerprint_column in columns
            assert spec.fingerprint_column in _attributes(actual)
        else:
            assert spec.name in _attributes(actual)
        assert spec.desired_path.split(".")[0] in _attributes(desired)


def test_desired_objects_follow_the_table_order() -> None:
    """The load cache's flat rows rely on it (one position per field, then the source)."""
    for fields, desired in (
        (INTEGRATION_FIELDS, DesiredIntegration),
        (WEBHOOK_FIELDS, DesiredWebhook),
        (OAUTH_ACCOUNT_FIELDS, DesiredOAuthAccount),
    ):
        attributes: list[str] = []
        for spec in fields:
            attribute = spec.desired_path.split(".")[0]
            if not attributes or attributes[-1] != attribute:
                attributes.append(attribute)
        assert [*attributes, "source"] == _attributes(desired)


def test_token_fields_are_the_token_row() -> None:
    columns = set(metadata.tables["oauth_tokens"].columns.keys())
    assert [f.name for f in TOKEN_FIELDS] == _attributes(ActualToken)
    assert {f.column for f in TOKEN_FIELDS if f.column} <= columns


def test_every_reconciled_field_matches_a_known_risk_rule() -> None:
    for spec in (*INTEGRATION_FIELDS, *WEBHOOK_FIELDS):
        if spec.owner is Owner.MANIFEST and not spec.identity:
            assert spec.risk in RULES, spec
    assert set(FIELD_RULES.values()) <= set(RULES)


def test_compiled_records_take_only_attribute_paths() -> None:
    record = compile_record([("a", call("float", attribute_path("x.real")))])
    assert record(type("O", (), {"x": 3})()) == {"a": 3.0}
    safe = compile_record([("a", attribute_path("x.real", none_safe=True))])
    assert safe(type("O", (), {"x": None})()) == {"a": None}
    with pytest.raises(ValueError, match="not an attribute path"):
        attribute_path("x) or (y")
    with pytest.raises(ValueError, match="not a helper name"):
        call("f(1)", "obj.x")


def test_compiled_calls_take_items_and_helpers_only() -> None:
    made = compile_call(
        "pair", [item("row", 1), call("abs", item("row", 0))], {"pair": divmod}, "row"
    )
    assert made((-3, 17)) == (5, 2)  # divmod(row[1], abs(row[0])): in the order given
    with pytest.raises(ValueError, match="not an item"):
        item("row) or (x", 0)
    with pytest.raises(ValueError, match="not a callee"):
        compile_call("f(1)", [], {})
