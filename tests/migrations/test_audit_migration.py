"""keyed_audit_chain: audit rows and reviews survive upgrade -> downgrade -> upgrade."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from reconciler.crypto.audit_key import AuditKey
from reconciler.model.enums import AuditAction, EntityType, ReviewDecision, RiskLevel
from reconciler.store import audit, migrate
from reconciler.store.database import DatabaseTarget, create_engine, resolve_database_url

PREVIOUS = "add_configuration_management"
NOW = datetime(2026, 6, 1, 8, 0, 0, tzinfo=UTC)
KEY = AuditKey(os.urandom(32))


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def target(empty_database_url: str) -> DatabaseTarget:
    return resolve_database_url(empty_database_url)


def _insert_v1_rows(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[int, int]:
    """Two rows as the previous version wrote them (unkeyed chain), the second reviewed."""
    prev = None
    ids = []
    for n, risk in enumerate(("LOW", "HIGH")):
        row_id = conn.execute(
            "SELECT nextval(pg_get_serial_sequence('configuration_audit_logs', 'id'))"
        ).fetchone()
        assert row_id is not None
        record = {
            "tenant_id": "acme",
            "id": row_id[0],
            "entity_type": "INTEGRATION_CONFIG",
            "entity_id": n,
            "entity_address": f"acme/stripe/production/integration/K{n}",
            "action": "UPDATE",
            "changes": '{"fields": []}',
            "risk_level": risk,
            "risk_reasons": "[]",
            "requires_review": risk == "HIGH",
            "performed_by": "ci",
            "ip_address": None,
            "user_agent": "reconciler/old",
            "session_id": "s0",
            "apply_run_id": None,
            "git_commit": None,
            "source_path": None,
            "created_at": (NOW + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "prev_hash": prev,
        }
        record["entry_hash"] = prev = audit.entry_hash(record)
        conn.execute(
            "INSERT INTO configuration_audit_logs (tenant_id, id, entity_type, entity_id,"
            " entity_address, action, changes, risk_level, risk_reasons, requires_review,"
            " performed_by, user_agent, session_id, created_at, prev_hash, entry_hash) VALUES"
            " (%(tenant_id)s, %(id)s, %(entity_type)s, %(entity_id)s, %(entity_address)s,"
            " %(action)s, %(changes)s, %(risk_level)s, %(risk_reasons)s, %(requires_review)s,"
            " %(performed_by)s, %(user_agent)s, %(session_id)s, %(created_at)s, %(prev_hash)s,"
            " %(entry_hash)s)",
            record,
        )
        ids.append(int(str(row_id[0])))
    # The previous version's review: an UPDATE of the review columns, outside the hash.
    conn.execute(
        "UPDATE configuration_audit_logs SET reviewed_at = now(), reviewed_by = 'lead',"
        " review_decision = 'APPROVED', review_note = 'old' WHERE id = %s",
        (ids[1],),
    )
    return ids[0], ids[1]


def _keyed_rows_and_review(engine: sa.Engine) -> tuple[int, int]:
    entry = audit.AuditEntry(
        tenant_id="acme",
        entity_type=EntityType.WEBHOOK_CONFIGURATION,
        entity_id=9,
        entity_address="acme/stripe/production/webhook/w",
        action=AuditAction.UPDATE,
        changes={"fields": []},
        risk_level=RiskLevel.CRITICAL,
        requires_review=True,
    )
    applier = audit.AuditContext("ci", None, "reconciler/test", "s1", key=KEY)
    with engine.begin() as conn:
        audit.append_audit_entries(conn, [entry], applier, now=NOW + timedelta(minutes=1))
        [critical] = audit.pending_reviews(conn)
        record = audit.review_entry(
            conn,
            tenant="acme",
            audit_id=critical.id,
            decision=ReviewDecision.REJECTED,
            context=audit.AuditContext("lead", None, "reconciler/test", "s2", key=KEY),
            note="no",
            now=NOW + timedelta(minutes=2),
        )
    assert record.review_id is not None
    return critical.id, record.review_id


def _snapshot(engine: sa.Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text(
                    "SELECT id, action::text, risk_level::text, changes::text, performed_by,"
                    " prev_hash, entry_hash FROM configuration_audit_logs ORDER BY id"
                )
            )
        ]


def _labels(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid"
                    " WHERE t.typname = 'audit_action' ORDER BY e.enumsortorder"
                )
            ).scalars()
        )


def test_audit_rows_and_reviews_survive_a_round_trip(target: DatabaseTarget) -> None:
    migrate.upgrade(target, PREVIOUS)
    with psycopg.connect(libpq(target.url), autocommit=True) as conn:
        v1_low, v1_high = _insert_v1_rows(conn)

    migrate.upgrade(target)
    engine = create_engine(target)
    try:
        with engine.connect() as conn:
            # The previous version's decision is kept, as a legacy review.
            [legacy] = [r for r in audit.list_entries(conn) if r.id == v1_high]
            assert (legacy.review_status, legacy.review_source) == ("APPROVED", "legacy")
            assert audit.pending_reviews(conn) == []
        critical, review_id = _keyed_rows_and_review(engine)
        before = _snapshot(engine)
        with engine.connect() as conn:
            report = audit.inspect_chains(conn, key=KEY)
        assert report.breaks == [] and (report.unkeyed_rows, report.unkeyed_only) == (2, 0)

        migrate.downgrade(target, PREVIOUS)
        # Every row is kept, the REVIEW row too (so its label); its decision is back in the
        # columns the previous version reads, and those columns are writable again.
        assert _snapshot(engine) == before
        assert _labels(engine)[-1] == "REVIEW"
        with engine.begin() as conn:
            folded = conn.execute(
                sa.text(
                    "SELECT reviewed_by, review_decision::text, review_note"
                    " FROM configuration_audit_logs WHERE id = :id"
                ),
                {"id": critical},
            ).one()
            assert tuple(folded) == ("lead", "REJECTED", "no")
            conn.execute(
                sa.text("UPDATE configuration_audit_logs SET review_note = 'x' WHERE id = :id"),
                {"id": v1_low},
            )

        migrate.upgrade(target)
        migrate.check(target)
        assert _snapshot(engine) == before
        with engine.connect() as conn:
            report = audit.inspect_chains(conn, key=KEY)
            assert report.breaks == [] and report.rows == 4
            [row] = [r for r in audit.list_entries(conn) if r.id == critical]
            assert (row.review_status, row.review_id) == ("REJECTED", review_id)
            assert audit.pending_reviews(conn) == []
    finally:
        engine.dispose()


def test_downgrade_without_review_rows_restores_the_enum(target: DatabaseTarget) -> None:
    migrate.upgrade(target)
    engine = create_engine(target)
    try:
        assert _labels(engine)[-1] == "REVIEW"
        migrate.downgrade(target, PREVIOUS)
        assert _labels(engine) == ["CREATE", "UPDATE", "DELETE", "REVOKE", "ROTATE"]
        with engine.connect() as conn:
            grants = conn.execute(
                sa.text(
                    "SELECT count(*) FROM information_schema.column_privileges"
                    " WHERE grantee = 'reconciler_app' AND privilege_type = 'UPDATE'"
                    " AND table_name = 'configuration_audit_logs'"
                )
            ).scalar()
        assert grants == 4
        migrate.upgrade(target)
        migrate.check(target)
    finally:
        engine.dispose()
