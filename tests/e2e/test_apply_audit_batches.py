"""An apply whose audit rows take several batches: the entries of each batch are made and
signed while the database inserts the batch before, and the chains verify."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler import commands
from reconciler.settings import load_settings
from reconciler.store import staging
from reconciler.store.write import write_order
from tests.e2e.workspace import Workspace, stripe_manifest

TENANTS = ("acme", "globex", "initech", "umbrella")


def test_batched_audit_rows_of_an_apply_verify(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    for tenant in TENANTS:
        ws.write(tenant, "stripe", stripe_manifest(tenant))
    ws.enter(monkeypatch)
    monkeypatch.setattr(staging, "PIPELINE_ROWS", 3)  # 8 rows: batches of 3, 3 and 2
    result = commands.apply(manifests_dir=Path("manifests"), settings=load_settings())
    written = [str(c.address) for c in write_order(result.plan.changes)]
    assert len(written) == 8
    rows = ws.sql("SELECT entity_address FROM configuration_audit_logs ORDER BY id")
    assert [address for (address,) in rows] == written
    assert commands.verify_audit().verified
