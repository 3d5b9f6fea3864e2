"""Equal parts of changes are one object: an initial load plans hundreds of thousands."""

from __future__ import annotations

from reconciler.core.risk import field_change
from reconciler.model.enums import RiskLevel
from reconciler.model.plan import FieldChange


def test_equal_scalar_field_changes_are_one_object() -> None:
    first = field_change("sync_interval", None, 30)
    assert field_change("sync_interval", None, 30) is first
    assert first == FieldChange("sync_interval", None, 30)


def test_values_equal_across_types_are_kept_apart() -> None:
    # True == 1 == 1.0, but a plan shows them differently.
    shown = {repr(field_change("x", None, v).after) for v in (True, 1, 1.0)}
    assert shown == {"True", "1", "1.0"}
    assert field_change("x", None, "a", True) is not field_change("x", None, "a")


def test_mappings_are_not_shared() -> None:
    # A mapping could be changed by whoever holds it: each change keeps its own.
    features = {"deals": True}
    made = field_change("features", None, features)
    assert made.after is features
    assert field_change("features", None, {"deals": True}) is not made


def test_risk_levels_order_by_rank_not_by_name() -> None:
    assert RiskLevel.LOW < RiskLevel.MEDIUM < RiskLevel.HIGH < RiskLevel.CRITICAL
    assert max(RiskLevel.HIGH, RiskLevel.LOW) is RiskLevel.HIGH
    assert sorted([RiskLevel.CRITICAL, RiskLevel.LOW]) == [RiskLevel.LOW, RiskLevel.CRITICAL]
