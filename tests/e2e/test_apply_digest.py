"""A large apply's plan digest and audit documents are made by a forked process while the
writes are prepared: the digest it records is the plan's, and the audit rows' chains
verify."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler import commands
from reconciler.commands import apply_audit
from reconciler.commands.planning import plan_digest
from reconciler.load import pool
from reconciler.model.plan import Plan
from reconciler.settings import load_settings
from reconciler.store import write
from tests.e2e.workspace import Workspace, stripe_manifest


@pytest.fixture
def forked(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every plan counts as large, and its loads fork workers however few the files;
    returns the sizes of the plans whose digest a process was forked for."""
    for tenant in ("acme", "globex"):
        ws.write(tenant, "stripe", stripe_manifest(tenant))
    ws.enter(monkeypatch)
    monkeypatch.setattr(apply_audit, "FORK_MIN_CHANGES", 1)
    monkeypatch.setattr(pool, "PARALLEL_MIN_FILES", 1)
    monkeypatch.setenv(pool.WORKERS_ENV, "2")
    monkeypatch.setenv("RECONCILER_CACHE", "0")
    sizes: list[int] = []
    monkeypatch.setattr(apply_audit.ForkedPlanWork, "start", _recording(sizes))
    return sizes


def _recording(sizes: list[int]) -> Callable[[apply_audit.ForkedPlanWork, Plan], None]:
    real = apply_audit.ForkedPlanWork.start

    def start(self: apply_audit.ForkedPlanWork, p: Plan) -> None:
        real(self, p)
        if self._find(p) is not None:  # a process is computing it
            sizes.append(len(p.changes))

    return start


def test_the_forked_digest_is_the_one_recorded(ws: Workspace, forked: list[int]) -> None:
    result = commands.apply(manifests_dir=Path("manifests"), settings=load_settings())
    assert forked == [4]  # an integration and a webhook per tenant
    assert ws.sql("SELECT plan_digest FROM apply_runs") == [(plan_digest(result.plan),)]
    # The documents rendered in the other process are what the chain hashes were made of.
    assert commands.verify_audit().verified
    assert len(ws.sql("SELECT id FROM configuration_audit_logs")) == 4


def test_the_forked_work_is_waited_for_only_once_the_changes_are_written(
    ws: Workspace, forked: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The forked process is asked for the documents before this one encrypts the rows, and
    # renders while the transaction writes the changes (which take longer than rendering):
    # its digest and documents are waited for after them, not before BEGIN.
    events: list[str] = []
    real_of = apply_audit.ForkedPlanWork.of
    real_documents = apply_audit.ForkedPlanWork.documents

    def write_changes(*args: object, **kwargs: object) -> object:
        events.append("written")
        return write.write_changes(*args, **kwargs)  # type: ignore[arg-type]

    def prepare_writes(*args: object, **kwargs: object) -> object:
        events.append("encrypted")
        return write.prepare_writes(*args, **kwargs)  # type: ignore[arg-type]

    def of(self: apply_audit.ForkedPlanWork, p: Plan) -> str:
        events.append("digest")
        return real_of(self, p)

    def documents(
        self: apply_audit.ForkedPlanWork, p: Plan, extra: dict[str, object]
    ) -> Callable[[], list[tuple[str, str]]]:
        events.append("asked")
        waits = real_documents(self, p, extra)

        def waited() -> list[tuple[str, str]]:
            events.append("documents")
            return waits()

        return waited

    monkeypatch.setattr(apply_audit, "write_changes", write_changes)
    monkeypatch.setattr(apply_audit, "prepare_writes", prepare_writes)
    monkeypatch.setattr(apply_audit.ForkedPlanWork, "of", of)
    monkeypatch.setattr(apply_audit.ForkedPlanWork, "documents", documents)
    commands.apply(manifests_dir=Path("manifests"), settings=load_settings())
    assert forked == [4]
    assert events == ["asked", "encrypted", "written", "digest", "documents"]
    assert commands.verify_audit().verified
