"""Schema invariants read from the catalog, and the append-only audit trigger."""

from __future__ import annotations

import uuid
from enum import StrEnum

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from reconciler.model import enums
from reconciler.store import tables as t

TENANT_KEYS = sa.text(
    """
    SELECT c.relname, con.conname, con.contype,
           (SELECT array_agg(a.attname ORDER BY k.ord)
              FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
              JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum)
    FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
    WHERE c.relname = ANY(:tables) AND con.contype IN ('p', 'u')
    """
)


def test_every_primary_key_and_unique_constraint_leads_with_tenant_id(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        rows = conn.execute(TENANT_KEYS, {"tables": list(t.TENANT_TABLES)}).all()
    # Each tenant table has a PK; integration_configs and webhook_configurations a unique too.
    assert {(r[0], r[2]) for r in rows} >= {(name, "p") for name in t.TENANT_TABLES}
    assert len([r for r in rows if r[2] == "u"]) == 2
    offenders = [(r[0], r[1], r[3]) for r in rows if r[3][0] != "tenant_id"]
    assert offenders == []
    primary_keys = {r[0]: r[3] for r in rows if r[2] == "p"}
    assert primary_keys == {name: ["tenant_id", "id"] for name in t.TENANT_TABLES}


def test_tenant_unique_indexes_lead_with_tenant_id(engine: sa.Engine) -> None:
    # Unique indexes count too (Citus needs the distribution column in every one).
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT i.indexrelid::regclass::text, a.attname FROM pg_index i "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
                "WHERE i.indisunique AND i.indrelid::regclass::text = ANY(:tables)"
            ),
            {"tables": list(t.TENANT_TABLES)},
        ).all()
    assert rows
    assert all(column == "tenant_id" for _, column in rows), rows


@pytest.mark.parametrize(
    ("type_name", "python_enum"),
    [
        ("platform", enums.Platform),
        ("risk_level", enums.RiskLevel),
        ("health_status", enums.HealthStatus),
        ("apply_outcome", enums.ApplyOutcome),
        ("audit_action", enums.AuditAction),
    ],
)
def test_enum_labels_are_the_python_values(
    engine: sa.Engine, type_name: str, python_enum: type[StrEnum]
) -> None:
    with engine.connect() as conn:
        labels = conn.execute(
            sa.text(f"SELECT unnest(enum_range(NULL::{type_name}))::text")
        ).scalars()
        assert list(labels) == [member.value for member in python_enum]


def test_risk_level_orders_low_to_critical(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        at_least_high = conn.execute(
            sa.text(
                "SELECT r::text AS label FROM unnest(enum_range(NULL::risk_level)) r "
                "WHERE r >= 'HIGH' ORDER BY r"
            )
        ).scalars()
        assert list(at_least_high) == ["HIGH", "CRITICAL"]


def test_enum_columns_round_trip_python_enums(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        new_id = conn.execute(
            sa.insert(t.integration_configs)
            .values(
                tenant_id="acme",
                platform=enums.Platform.STRIPE,
                config_type=enums.ConfigType.API_KEY,
                environment=enums.Environment.PRODUCTION,
                sync_interval=15,
            )
            .returning(t.integration_configs.c.id)
        ).scalar_one()
        row = conn.execute(
            sa.select(t.integration_configs).where(t.integration_configs.c.id == new_id)
        ).one()
    assert row.platform is enums.Platform.STRIPE
    assert row.health_status is enums.HealthStatus.UNKNOWN
    assert row.features == {} and row.is_active is True and row.row_version == 1


def test_sync_interval_must_be_between_one_minute_and_one_week(engine: sa.Engine) -> None:
    with (
        pytest.raises(sa.exc.IntegrityError, match="ck_integration_configs_sync_interval"),
        engine.begin() as conn,
    ):
        conn.execute(
            sa.insert(t.integration_configs).values(
                tenant_id="acme",
                platform=enums.Platform.STRIPE,
                config_type=enums.ConfigType.API_KEY,
                environment=enums.Environment.PRODUCTION,
                sync_interval=10081,
            )
        )


def insert_audit_row(conn: sa.Connection, tenant: str = "acme") -> int:
    new_id: int = conn.execute(
        sa.insert(t.configuration_audit_logs)
        .values(
            tenant_id=tenant,
            entity_type=enums.EntityType.INTEGRATION_CONFIG,
            entity_id=1,
            entity_address="acme/stripe/production/API_KEY",
            action=enums.AuditAction.UPDATE,
            changes={"api_key": {"before": "fp:1", "after": "fp:2"}},
            risk_level=enums.RiskLevel.HIGH,
            requires_review=True,
            performed_by="ci",
            apply_run_id=uuid.uuid4(),
            entry_hash="a" * 64,
        )
        .returning(t.configuration_audit_logs.c.id)
    ).scalar_one()
    return new_id


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM configuration_audit_logs",
        "TRUNCATE configuration_audit_logs",
        "UPDATE configuration_audit_logs SET changes = '{}'::jsonb",
        "UPDATE configuration_audit_logs SET risk_level = 'LOW'",
        "UPDATE configuration_audit_logs SET entry_hash = repeat('b', 64)",
        "UPDATE configuration_audit_logs SET reviewed_by = 'x', performed_by = 'someone-else'",
    ],
    ids=["delete", "truncate", "changes", "risk", "hash", "review-plus-other"],
)
def test_audit_rows_are_append_only(engine: sa.Engine, statement: str) -> None:
    with engine.begin() as conn:
        insert_audit_row(conn)
    with (
        pytest.raises(DBAPIError, match="configuration_audit_logs is append-only"),
        engine.begin() as conn,
    ):
        conn.execute(sa.text(statement))
    with engine.connect() as conn:
        row = conn.execute(sa.select(t.configuration_audit_logs)).one()
    assert row.risk_level is enums.RiskLevel.HIGH and row.performed_by == "ci"


def test_audit_review_columns_can_no_longer_be_updated(engine: sa.Engine) -> None:
    # A review is a new, chained audit row; the legacy columns are frozen like the rest.
    with engine.begin() as conn:
        audit_id = insert_audit_row(conn)
    with (
        pytest.raises(DBAPIError, match="configuration_audit_logs is append-only"),
        engine.begin() as conn,
    ):
        conn.execute(
            sa.update(t.configuration_audit_logs)
            .where(t.configuration_audit_logs.c.id == audit_id)
            .values(
                reviewed_at=sa.func.now(),
                reviewed_by="security-lead",
                review_decision=enums.ReviewDecision.APPROVED,
                review_note="expected rotation",
            )
        )
    with engine.connect() as conn:
        row = conn.execute(sa.select(t.configuration_audit_logs)).one()
    assert row.review_decision is None and row.reviewed_by is None


def test_apply_runs_get_a_uuid_and_counts(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        run = conn.execute(
            sa.insert(t.apply_runs)
            .values(
                actor="ci",
                manifests_digest="sha256:" + "0" * 64,
                outcome=enums.ApplyOutcome.APPLIED,
                created_count=2,
                reconciler_version="0.1.0",
            )
            .returning(t.apply_runs)
        ).one()
    assert isinstance(run.id, uuid.UUID)
    assert (run.created_count, run.updated_count, run.deleted_count, run.revoked_count) == (
        2,
        0,
        0,
        0,
    )
