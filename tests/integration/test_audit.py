"""The audit log writer and the hash-chain verifier against real PostgreSQL."""

from __future__ import annotations

import itertools
import os
import threading
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
import sqlalchemy as sa

from reconciler.crypto.audit_key import AuditKey
from reconciler.errors import ConfigError, LockTimeout
from reconciler.model.enums import AuditAction, EntityType, ReviewDecision, RiskLevel
from reconciler.model.sensitive import Sensitive
from reconciler.store.audit import (
    AuditContext,
    AuditEntry,
    SensitiveValueInAudit,
    append_audit_entries,
    daily_summary,
    inspect_chains,
    list_entries,
    pending_reviews,
    review_entry,
    verify_chain,
)
from reconciler.store.locks import APPLY_LOCK_KEY, acquire_xact_lock

NOW = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
KEY = AuditKey(os.urandom(32))
CONTEXT = AuditContext(
    performed_by="alice",
    ip_address="10.1.2.3",
    user_agent="reconciler/test",
    session_id=str(uuid4()),
    git_commit="a" * 40,
    apply_run_id=uuid4(),
    key=KEY,
)


def _entry(tenant: str, n: int, risk: RiskLevel = RiskLevel.LOW) -> AuditEntry:
    return AuditEntry(
        tenant_id=tenant,
        entity_type=EntityType.INTEGRATION_CONFIG,
        entity_id=n,
        entity_address=f"{tenant}/stripe/production/integration/API_KEY",
        action=AuditAction.UPDATE,
        changes={
            "sync_interval": {"before": n, "after": n + 1.0},
            "ratio": {"before": 1e16, "after": 1.5e-7},
            "api_key": {"before": "(sensitive)", "after": "(sensitive, changed)"},
            "note": {"before": None, "after": "ünïcode ✓"},
        },
        risk_level=risk,
        risk_reasons=[{"code": "R1", "level": risk.value, "message": "because"}],
        requires_review=risk.requires_review,
        source_path=f"manifests/tenants/{tenant}/stripe.yaml",
    )


def _rows(engine: sa.Engine) -> list[sa.Row[tuple[str, int, str | None, str]]]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT tenant_id, id, prev_hash, entry_hash FROM configuration_audit_logs"
                    " ORDER BY tenant_id, id"
                )
            )
        )


def _tamper(engine: sa.Engine, *statements: str, **params: object) -> None:
    """Change the log as its owner could, with the append-only trigger switched off."""
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE configuration_audit_logs DISABLE TRIGGER USER"))
        for sql in statements:
            conn.execute(sa.text(sql), params)
        conn.execute(sa.text("ALTER TABLE configuration_audit_logs ENABLE TRIGGER USER"))


@pytest.fixture
def chained(engine: sa.Engine) -> sa.Engine:
    """Two appends over two tenants: acme gets 3 + 2 rows, globex 1 + 1."""
    with engine.begin() as conn:
        n = append_audit_entries(
            conn,
            [_entry("acme", 1), _entry("globex", 1), _entry("acme", 2), _entry("acme", 3)],
            CONTEXT,
            now=NOW,
        )
        assert n == 4
    with engine.begin() as conn:
        append_audit_entries(
            conn,
            [_entry("acme", 4, RiskLevel.HIGH), _entry("globex", 2), _entry("acme", 5)],
            AuditContext("bob", None, "reconciler/test", "s2", key=KEY),
            now=NOW + timedelta(seconds=1),
        )
    return engine


def test_chain_links_across_calls_and_tenants(chained: sa.Engine) -> None:
    rows = _rows(chained)
    by_tenant: dict[str, list[sa.Row[tuple[str, int, str | None, str]]]] = {}
    for row in rows:
        by_tenant.setdefault(row.tenant_id, []).append(row)
    assert [len(v) for v in by_tenant.values()] == [5, 2]
    for tenant_rows in by_tenant.values():
        assert tenant_rows[0].prev_hash is None
        for before, after in itertools.pairwise(tenant_rows):
            assert after.prev_hash == before.entry_hash
    with chained.connect() as conn:
        report = inspect_chains(conn, key=KEY)
    assert report.breaks == [] and report.rows == 7
    assert report.heads == {t: rs[-1].entry_hash for t, rs in by_tenant.items()}


def test_stored_values(chained: sa.Engine) -> None:
    with chained.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT host(ip_address) AS ip, performed_by, created_at, changes, apply_run_id"
                " FROM configuration_audit_logs ORDER BY id LIMIT 1"
            )
        ).one()
        second = conn.execute(
            sa.text(
                "SELECT host(ip_address) AS ip FROM configuration_audit_logs"
                " WHERE performed_by = 'bob' LIMIT 1"
            )
        ).one()
    assert row.ip == "10.1.2.3" and row.performed_by == "alice"
    assert row.created_at == NOW
    assert row.apply_run_id == CONTEXT.apply_run_id
    assert row.changes["note"]["after"] == "ünïcode ✓"
    # None falls back to inet_client_addr(): NULL over a Unix socket, else the client address.
    with chained.connect() as conn:
        client = conn.execute(sa.text("SELECT host(inet_client_addr())")).scalar()
    assert second.ip == client


def test_verify_detects_an_edited_row(chained: sa.Engine) -> None:
    victim = _rows(chained)[2]
    _tamper(
        chained,
        "UPDATE configuration_audit_logs SET performed_by = 'mallory'"
        " WHERE tenant_id = :t AND id = :id",
        t=victim.tenant_id,
        id=victim.id,
    )
    with chained.connect() as conn:
        breaks = verify_chain(conn, key=KEY)
    assert [(b.tenant_id, b.audit_id, b.kind) for b in breaks] == [("acme", victim.id, "edited")]


def test_verify_detects_a_deleted_row(chained: sa.Engine) -> None:
    rows = [r for r in _rows(chained) if r.tenant_id == "acme"]
    _tamper(chained, "DELETE FROM configuration_audit_logs WHERE id = :id", id=rows[1].id)
    with chained.connect() as conn:
        breaks = verify_chain(conn, key=KEY)
        assert verify_chain(conn, tenants=["globex"], key=KEY) == []
    assert [(b.tenant_id, b.audit_id, b.kind) for b in breaks] == [("acme", rows[2].id, "link")]
    assert "deleted" in breaks[0].detail


def test_verify_detects_deleted_first_row_and_reordering(chained: sa.Engine) -> None:
    rows = [r for r in _rows(chained) if r.tenant_id == "acme"]
    globex = [r for r in _rows(chained) if r.tenant_id == "globex"]
    _tamper(chained, "DELETE FROM configuration_audit_logs WHERE id = :id", id=rows[0].id)
    # Swap two globex rows' ids: content and hashes move together, the order changes.
    _tamper(
        chained,
        "UPDATE configuration_audit_logs SET id = -id WHERE id IN (:a, :b)",
        "UPDATE configuration_audit_logs SET id = CASE id WHEN -:a THEN :b ELSE :a END"
        " WHERE id IN (-:a, -:b)",
        a=globex[0].id,
        b=globex[1].id,
    )
    with chained.connect() as conn:
        breaks = verify_chain(conn, key=KEY)
    assert [(b.tenant_id, b.audit_id) for b in breaks] == [
        ("acme", rows[1].id),
        ("globex", globex[0].id),
    ]


def _reviewer(name: str) -> AuditContext:
    return AuditContext(name, None, "reconciler/test", f"review-{name}", key=KEY)


def test_review_is_a_chained_row_and_workflow(chained: sa.Engine) -> None:
    with chained.begin() as conn:
        pending = pending_reviews(conn)
        assert [(p.tenant_id, p.risk_level, p.review_status) for p in pending] == [
            ("acme", "HIGH", "PENDING")
        ]
        assert pending_reviews(conn, "globex") == []
        record = review_entry(
            conn,
            tenant="acme",
            audit_id=pending[0].id,
            decision=ReviewDecision.APPROVED,
            context=_reviewer("carol"),
            note="ok",
            now=NOW,
        )
        assert record.review_decision == "APPROVED" and record.reviewed_by == "carol"
        assert record.review_source == "chain" and record.review_id is not None
    with chained.begin() as conn:
        assert pending_reviews(conn) == []
        report = inspect_chains(conn, key=KEY)
        assert report.breaks == [] and report.rows == 8
        [review_row] = [r for r in list_entries(conn) if r.id == record.review_id]
        assert review_row.action == "REVIEW" and review_row.tenant_id == "acme"
        assert review_row.performed_by == "carol"
        assert review_row.changes == {
            "reviews": pending[0].id,
            "decision": "APPROVED",
            "note": "ok",
        }
        with pytest.raises(ConfigError, match="already reviewed: APPROVED by carol"):
            review_entry(
                conn,
                tenant="acme",
                audit_id=pending[0].id,
                decision=ReviewDecision.REJECTED,
                context=_reviewer("dan"),
                note=None,
                now=NOW,
            )
        low = list_entries(conn, tenant="globex")[0]
        with pytest.raises(ConfigError, match="does not require review"):
            review_entry(
                conn,
                tenant="globex",
                audit_id=low.id,
                decision=ReviewDecision.APPROVED,
                context=_reviewer("dan"),
                note=None,
                now=NOW,
            )
        with pytest.raises(ConfigError, match="no audit row"):
            review_entry(
                conn,
                tenant="globex",
                audit_id=pending[0].id,
                decision=ReviewDecision.APPROVED,
                context=_reviewer("dan"),
                note=None,
                now=NOW,
            )


def test_list_filters_and_summary(chained: sa.Engine) -> None:
    with chained.connect() as conn:
        assert len(list_entries(conn)) == 7
        assert len(list_entries(conn, limit=2)) == 2
        assert [r.risk_level for r in list_entries(conn, min_risk=RiskLevel.MEDIUM)] == ["HIGH"]
        assert list_entries(conn, since=NOW + timedelta(days=1)) == []
        assert len(list_entries(conn, tenant="globex", since=NOW)) == 2
        newest = list_entries(conn)[0]
        assert newest.to_dict()["created_at"].startswith("2024-05-01T12:00:01")
        # The summary covers the last N days from the server's clock: stamp rows "now".
    with chained.begin() as conn:
        append_audit_entries(conn, [_entry("acme", 9)], CONTEXT, now=datetime.now(UTC))
    with chained.connect() as conn:
        summary = daily_summary(conn, days=7)
    assert [(s.entity_type, s.action, s.risk_level, s.count) for s in summary] == [
        ("INTEGRATION_CONFIG", "UPDATE", "LOW", 1)
    ]


def test_sensitive_values_are_refused(engine: sa.Engine) -> None:
    bad = AuditEntry(
        tenant_id="acme",
        entity_type=EntityType.WEBHOOK_CONFIGURATION,
        entity_id=1,
        entity_address="acme/stripe/production/webhook/x",
        action=AuditAction.CREATE,
        changes={"signing_secret": {"before": None, "after": Sensitive("whsec_EXAMPLE")}},
        risk_level=RiskLevel.HIGH,
    )
    with engine.begin() as conn, pytest.raises(SensitiveValueInAudit) as info:
        append_audit_entries(conn, [bad], CONTEXT, now=NOW)
    assert "changes.signing_secret.after" in str(info.value)
    assert "whsec_EXAMPLE" not in str(info.value)
    assert _rows(engine) == []


def test_appends_wait_for_each_other(engine: sa.Engine) -> None:
    """Two concurrent appenders for one tenant produce one unbroken chain."""
    errors: list[BaseException] = []

    def append(tag: int) -> None:
        try:
            for i in range(5):
                with engine.begin() as conn:
                    append_audit_entries(conn, [_entry("acme", tag * 100 + i)], CONTEXT, now=NOW)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(t,)) for t in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with engine.connect() as conn:
        report = inspect_chains(conn, key=KEY)
    assert report.breaks == [] and report.rows == 10


def test_lock_timeout_names_the_holder(engine: sa.Engine) -> None:
    with engine.connect() as holder:
        holder.execute(sa.text("SET application_name = 'apply-by-erin'"))
        holder.commit()
        acquire_xact_lock(holder, APPLY_LOCK_KEY, timeout_seconds=5, what="the apply lock")
        pid = holder.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        with engine.connect() as waiter:
            with pytest.raises(LockTimeout) as info:
                acquire_xact_lock(
                    waiter, APPLY_LOCK_KEY, timeout_seconds=0.2, what="the apply lock"
                )
            message = str(info.value)
            assert "the apply lock" in message and "apply-by-erin" in message
            assert f"pid {pid}" in message and "since" in message
            # The transaction survives the timeout and its lock_timeout is unchanged.
            assert waiter.execute(sa.text("SHOW lock_timeout")).scalar() == "0"
            with pytest.raises(LockTimeout, match="without waiting"):
                acquire_xact_lock(waiter, APPLY_LOCK_KEY, timeout_seconds=0, what="the apply lock")
        holder.rollback()
    with engine.connect() as conn:
        acquire_xact_lock(conn, APPLY_LOCK_KEY, timeout_seconds=1, what="the apply lock")
        assert conn.execute(sa.text("SHOW lock_timeout")).scalar() == "0"
