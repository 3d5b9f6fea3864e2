"""Audit rows written in batches, each signed while the database inserts the one before."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from reconciler.crypto.audit_key import AuditKey
from reconciler.model.enums import AuditAction, EntityType, RiskLevel
from reconciler.store import staging
from reconciler.store.audit import (
    AuditContext,
    AuditEntry,
    append_audit_entries,
    inspect_chains,
    render_documents,
)
from reconciler.store.staging import stage_and_merge_in_batches

NOW = datetime(2026, 12, 2, 9, 0, 0, tzinfo=UTC)
KEY = AuditKey(os.urandom(32))
APPLIER = AuditContext("root", "10.0.0.9", "reconciler/test", "apply-1", key=KEY)
TENANTS = ("acme", "globex", "initech")


def _entry(n: int) -> AuditEntry:
    tenant = TENANTS[n % len(TENANTS)]
    return AuditEntry(
        tenant_id=tenant,
        entity_type=EntityType.INTEGRATION_CONFIG,
        entity_id=n,
        entity_address=f"{tenant}/stripe/production/integration/N{n}",
        action=AuditAction.CREATE,
        changes={"fields": [{"field": "sync_interval", "after": n}]},
        risk_level=RiskLevel.LOW,
        risk_reasons=[],
        requires_review=False,
    )


def _addresses(conn: sa.Connection, tenant: str) -> list[str]:
    rows = conn.execute(
        sa.text(
            "SELECT entity_address FROM configuration_audit_logs WHERE tenant_id = :t ORDER BY id"
        ),
        {"t": tenant},
    )
    return [r[0] for r in rows]


@pytest.mark.parametrize("batch", [7, 10_000])
def test_batched_rows_chain_and_verify_like_one_batch(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    monkeypatch.setattr(staging, "PIPELINE_ROWS", batch)
    entries = [_entry(n) for n in range(40)]
    with engine.begin() as conn:
        assert append_audit_entries(conn, entries, APPLIER, now=NOW) == 40
    with engine.connect() as conn:
        report = inspect_chains(conn, key=KEY)
        assert report.breaks == [] and report.keyed_rows == 40
        for tenant in TENANTS:
            expected = [e.entity_address for e in entries if e.tenant_id == tenant]
            assert _addresses(conn, tenant) == expected


def test_an_error_making_a_later_batch_is_raised_in_order(engine: sa.Engine) -> None:
    made: list[tuple[int, int]] = []
    merged: list[int] = []

    def make_rows(start: int, stop: int) -> list[Sequence[Any]]:
        made.append((start, stop))
        if start >= 6:
            raise ValueError("batch three is broken")
        return [(n,) for n in range(start, stop)]

    def merge(staged: str) -> None:
        merged.append(conn.execute(sa.text(f"SELECT count(*) FROM {staged}")).scalar_one())

    with (
        engine.connect() as conn,
        conn.begin(),
        pytest.raises(ValueError, match="batch three is broken"),
    ):
        stage_and_merge_in_batches(conn, [("n", "integer")], 10, make_rows, merge, batch=3)
    # Batches are made in order, one at a time; each made batch was merged before the error.
    assert made == [(0, 3), (3, 6), (6, 9)]
    assert merged == [3, 3]


def test_entries_of_tenants_not_given_are_refused(engine: sa.Engine) -> None:
    entries = [_entry(n) for n in range(6)]
    with (
        pytest.raises(ValueError, match="'globex' is not among the given tenants"),
        engine.begin() as conn,
    ):
        append_audit_entries(conn, entries, APPLIER, now=NOW, tenants=["acme", "initech"])
    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM configuration_audit_logs"))
        assert count.scalar_one() == 0


def test_given_tenants_let_entries_be_read_a_batch_at_a_time(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(staging, "PIPELINE_ROWS", 4)
    asked: list[slice] = []

    class Entries(list[AuditEntry]):
        def __iter__(self) -> Iterator[AuditEntry]:
            raise AssertionError("iterated: every entry made before the first batch")

        def __getitem__(self, index: Any) -> Any:
            asked.append(index)
            return super().__getitem__(index)

    entries = Entries(_entry(n) for n in range(10))
    documents = render_documents(_entry(n) for n in range(10))
    with engine.begin() as conn:
        append_audit_entries(conn, entries, APPLIER, now=NOW, documents=documents, tenants=TENANTS)
    assert asked == [slice(0, 4), slice(4, 8), slice(8, 10)]
    with engine.connect() as conn:
        assert inspect_chains(conn, key=KEY).breaks == []
