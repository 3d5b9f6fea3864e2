"""Code about one field reaches it through its declaration in the field table."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import replace

import pytest

from reconciler.core.planner import build_plan, fingerprint_read_set, read_set
from reconciler.core.risk import RiskPolicy
from reconciler.model.actual import ActualIntegration, ActualState
from reconciler.model.field_spec import (
    compile_constructor,
    compile_record,
    fast_constructor,
    lookup,
)
from reconciler.model.fields import LIVEMODE, ROW_VERSION, RetryPolicy, row_of, row_ref
from reconciler.model.plan import VERSION_KEY, Change, RowRef
from reconciler.store import row_state
from tests.unit.core.builders import as_actual, integration, state, token, webhook


def _integration(row_id: int, version: int) -> ActualIntegration:
    (row,) = as_actual(state(integration())).integrations
    return replace(row, id=row_id, row_version=version)


def test_lookup_reads_a_mapping_key_and_refuses_anything_else() -> None:
    record = compile_record([("a", lookup("ids", "x")), ("b", lookup("ids", "y"))], params="ids")
    assert record({"x": 1}) == {"a": 1, "b": None}
    with pytest.raises(ValueError, match="not a mapping lookup"):
        lookup("ids", "x') or ('y")


def test_read_gets_the_value_by_the_declared_name() -> None:
    assert LIVEMODE.read(token(stripe_livemode=False)) is False


def test_row_of_and_row_ref_give_the_id_and_version_a_plan_pins() -> None:
    row = _integration(7, 4)
    assert row_of(row) == (7, 4)
    assert row_of(None) == (None, None)
    assert row_ref("integration_configs", row) == RowRef("integration_configs", 7, 4)


def test_the_plan_key_of_a_version_is_the_declared_field() -> None:
    assert ROW_VERSION.name == VERSION_KEY
    ref = RowRef("oauth_tokens", 3, 9)
    assert ref.to_dict()[VERSION_KEY] == 9
    assert ref.key == "oauth_tokens:3:9"
    change = Change.from_dict(
        {
            "resource": {
                "tenant": "acme",
                "platform": "STRIPE",
                "environment": "PRODUCTION",
                "kind": "integration",
                "name": "API_KEY",
            },
            "action": "update",
            "fields": [],
            "risk": {"level": "LOW", "reasons": []},
            "row_id": 3,
            VERSION_KEY: 9,
        }
    )
    assert change.pinned_version == 9 == change.to_dict()[VERSION_KEY]


def test_read_set_fingerprint_hashes_table_id_and_version() -> None:
    refs = read_set(ActualState(integrations=(_integration(1, 2),)))
    assert refs == (RowRef("integration_configs", 1, 2),)
    # The format saved plans were fingerprinted with: one "table:id:version" line per row.
    expected = hashlib.sha256(b"integration_configs:1:2\n").hexdigest()
    assert fingerprint_read_set(refs) == expected


def test_a_plan_sorts_and_fingerprints_its_read_set_like_row_refs() -> None:
    # Rows out of order, in every table: the plan's read set is RowRef's own order, and its
    # fingerprint is fingerprint_read_set's of that read set.
    (row,) = as_actual(state(integration())).integrations
    (hook,) = as_actual(state(webhook())).webhooks
    actual = ActualState(
        integrations=tuple(replace(row, id=i, row_version=v) for i, v in ((9, 1), (2, 7), (10, 3))),
        webhooks=tuple(replace(hook, id=i, row_version=2) for i in (5, 1)),
        tokens=(replace(token(), id=3, row_version=4), replace(token(), id=1, row_version=8)),
    )
    expected = tuple(
        sorted(
            [row_ref("integration_configs", r) for r in actual.integrations]
            + [row_ref("webhook_configurations", r) for r in actual.webhooks]
            + [row_ref("oauth_tokens", r) for r in actual.tokens]
        )
    )
    assert read_set(actual) == expected
    made = build_plan(state(), actual, policy=RiskPolicy(), created_at="2026-01-01T00:00:00Z")
    assert made.read_set == expected
    assert made.actual_fingerprint == fingerprint_read_set(expected)


def test_store_bookkeeping_sql_names_the_declared_columns() -> None:
    assert row_state.not_deleted("t") == "t.deleted_at IS NULL"
    assert row_state.deleted() == "deleted_at IS NOT NULL"
    assert row_state.active_live() == "is_active AND deleted_at IS NULL"
    assert row_state.live_token("t") == "t.is_active AND t.revoked_at IS NULL"
    assert row_state.bump_version() == "row_version = t.row_version + 1"
    assert row_state.version_matches() == "t.row_version = v.row_version"


def test_fast_constructor_makes_what_init_makes_and_refuses_what_it_cannot() -> None:
    make_policy = fast_constructor(RetryPolicy)
    made = make_policy(3, 1, 2.0, 60)
    assert made == RetryPolicy(3, 1, 2.0, 60)
    assert hash(made) == hash(RetryPolicy(3, 1, 2.0, 60))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.max_attempts = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        make_policy(3, 1, 2.0)  # every field is required

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:  # pragma: no cover - never run here
            raise ValueError

    @dataclasses.dataclass(frozen=True)
    class Unslotted:
        value: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Derived:
        value: int
        double: int = dataclasses.field(init=False, default=0)

    for model in (Checked, Unslotted, Derived, dict):
        with pytest.raises(ValueError, match=model.__name__):
            fast_constructor(model)


def test_compile_constructor_needs_exactly_the_model_fields() -> None:
    # Named in another order than the model's: the expressions go to the right fields.
    names = ("max_delay_seconds", "max_attempts", "multiplier", "initial_delay_seconds")
    values = {name: f"p{i}" for i, name in enumerate(names)}
    make = compile_constructor(RetryPolicy, values, {}, "p0, p1, p2, p3")
    assert make(60, 3, 2.0, 1) == RetryPolicy(3, 1, 2.0, 60)
    for wrong in ({"max_attempts": "p0"}, {**values, "extra": "p0"}):
        with pytest.raises(ValueError, match="RetryPolicy has the fields"):
            compile_constructor(RetryPolicy, wrong, {}, "p0, p1, p2, p3")
