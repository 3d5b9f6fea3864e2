"""settle: declared rows stored exactly as declared, found before any desired object is made.

Every test holds settling to one rule: a plan made with it is the plan made without it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from reconciler.core.planner import build_plan
from reconciler.core.risk import RiskPolicy
from reconciler.core.settle import settle
from reconciler.load.cache import decode_rows, encode_state
from reconciler.model.actual import ActualState, SecretDoubt
from reconciler.model.desired import DesiredState, EncodedRows
from reconciler.model.enums import Environment, SyncDirection
from reconciler.model.plan import Plan
from tests.unit.core.builders import as_actual, integration, secret, state, webhook

POLICY = RiskPolicy()


def _encoded(desired: DesiredState) -> EncodedRows:
    integrations, webhooks, _ = encode_state(desired)
    return EncodedRows(integrations, webhooks)


def _plans(desired: DesiredState, actual: ActualState) -> tuple[Plan, Plan, int]:
    """The plan made from every desired object, the plan made after settling (from the
    encoded rows, as a warm-cache plan is), and how many objects were settled."""
    whole = build_plan(desired, actual, policy=POLICY, created_at="t", prune=True)
    settled, rest = settle(_encoded(desired), actual)
    made = decode_rows(rest)
    partial = replace(desired, integrations=made.integrations, webhooks=made.webhooks)
    fast = build_plan(partial, actual, policy=POLICY, created_at="t", prune=True, settled=settled)
    count = len(settled.rows.integrations) + len(settled.rows.webhooks)
    assert count + len(rest.integrations) + len(rest.webhooks) == len(desired.integrations) + len(
        desired.webhooks
    )
    return whole, fast, count


def _stored(desired: DesiredState) -> ActualState:
    """What applying ``desired`` stores, webhook events in the declared order."""
    actual = as_actual(desired)
    hooks = tuple(
        replace(a, subscribed_events=d.subscribed_events)
        for a, d in zip(actual.webhooks, desired.webhooks, strict=True)
    )
    return replace(actual, webhooks=hooks)


def _fleet() -> DesiredState:
    return state(
        integration("acme"),
        integration("acme", environment=Environment.SANDBOX),
        integration("globex"),
        webhook("acme"),
        webhook("acme", name="payments"),
        webhook("globex"),
    )


def test_an_unchanged_fleet_settles_every_object_and_plans_nothing() -> None:
    desired = _fleet()
    whole, fast, count = _plans(desired, _stored(desired))
    assert count == 6
    assert fast == whole
    assert fast.changes == ()


@pytest.mark.parametrize(
    ("which", "change"),
    [
        (0, {"is_active": False}),
        (1, {"sync_interval": 30}),
        (2, {"sync_direction": SyncDirection.INBOUND}),
        (0, {"features": {"invoices": False}}),
        (1, {"api_key_fingerprint": "f" * 64}),
        (2, {"api_secret_fingerprint": "f" * 64}),
        (0, {"deleted_at": datetime(2026, 1, 1, tzinfo=UTC)}),
        (1, {"doubted": {"api_key": SecretDoubt.MISMATCH}}),
    ],
    ids=["flag", "number", "enum", "mapping", "secret", "absent secret", "deleted", "doubted"],
)
def test_a_stored_integration_that_differs_is_not_settled(
    which: int, change: dict[str, Any]
) -> None:
    desired = _fleet()
    actual = _stored(desired)
    rows = list(actual.integrations)
    rows[which] = replace(rows[which], **change)
    actual = replace(actual, integrations=tuple(rows))
    whole, fast, count = _plans(desired, actual)
    assert count == 5
    assert len(whole.changes) == 1
    assert fast == whole


def test_a_stored_webhook_that_differs_is_not_settled() -> None:
    desired = _fleet()
    actual = _stored(desired)
    changed = replace(actual.webhooks[1], endpoint_url="https://example.com/elsewhere")
    actual = replace(actual, webhooks=(actual.webhooks[0], changed, actual.webhooks[2]))
    whole, fast, count = _plans(desired, actual)
    assert count == 5
    assert [str(c.address) for c in fast.changes] == [str(c.address) for c in whole.changes]
    assert fast == whole


def test_creates_and_deletes_around_settled_objects_are_planned_as_without() -> None:
    desired = _fleet()
    actual = _stored(desired)
    declared = replace(desired, integrations=desired.integrations[1:])  # one to delete
    extra = state(webhook("initech"))  # one to create
    declared = replace(declared, webhooks=declared.webhooks + extra.webhooks)
    whole, fast, count = _plans(declared, actual)
    assert count == 5
    assert sorted(c.action.value for c in whole.changes) == ["create", "delete"]
    assert fast == whole


def test_an_object_declared_twice_settles_nothing_of_its_kind() -> None:
    desired = _fleet()
    twice = replace(desired, integrations=(*desired.integrations, desired.integrations[0]))
    settled, rest = settle(_encoded(twice), _stored(desired))
    assert settled.rows.integrations == ()
    assert len(rest.integrations) == 4
    assert settled.integrations == as_actual(desired).integrations
    assert len(settled.rows.webhooks) == 3  # the other kind is not affected


def test_an_object_stored_twice_settles_nothing_of_its_kind() -> None:
    desired = _fleet()
    actual = _stored(desired)
    actual = replace(actual, webhooks=(*actual.webhooks, replace(actual.webhooks[0], id=99)))
    settled, rest = settle(_encoded(desired), actual)
    assert settled.rows.webhooks == ()
    assert len(rest.webhooks) == 3
    assert settled.webhooks == actual.webhooks


def test_events_stored_in_another_order_are_left_to_the_diff_which_finds_no_change() -> None:
    desired = _fleet()
    whole, fast, count = _plans(desired, as_actual(desired))  # events stored reversed
    assert count == 3  # the integrations only
    assert fast.changes == whole.changes == ()
    assert fast == whole


def test_a_row_with_a_label_no_enum_has_is_left_for_the_loader() -> None:
    desired = state(integration("acme", api_key=secret("sk_test_1")))
    (row,) = _encoded(desired).integrations
    odd = tuple("NOT_A_PLATFORM" if value == "STRIPE" else value for value in row)
    settled, rest = settle(EncodedRows((odd,)), _stored(desired))
    assert settled.rows.integrations == ()
    assert rest.integrations == (odd,)


def test_nothing_to_settle_leaves_every_stored_object_to_the_diff() -> None:
    desired = _fleet()
    actual = _stored(desired)
    settled, rest = settle(EncodedRows(), actual)
    assert (settled.integrations, settled.webhooks) == (actual.integrations, actual.webhooks)
    assert rest == EncodedRows()
