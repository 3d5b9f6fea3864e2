"""``history show RUN`` and ``history ADDRESS``: the apply history people read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.commands.runs import reading
from reconciler.progress import QUIET, Progress
from reconciler.store.approvals import Approval, approvals_for
from reconciler.store.audit import AuditRecord
from reconciler.store.history import RunRecord, address_rows, find_run, run_rows


@dataclass(frozen=True, slots=True)
class RunDetail:
    """One apply run: the run row, its audit rows (the changes), and the approvals of its
    plan digest."""

    run: RunRecord
    changes: list[AuditRecord]
    approvals: list[Approval]

    @property
    def authorization(self) -> dict[str, Any] | None:
        """What the run's audit rows record about approvals or break-glass, if anything."""
        return self._first_record("authorization")

    @property
    def revision(self) -> dict[str, Any] | None:
        """The git revision the run's audit rows record (``apply --revision``), if any."""
        return self._first_record("revision")

    def _first_record(self, key: str) -> dict[str, Any] | None:
        """The first object recorded under ``key`` in the run's audit rows."""
        return next(
            (row.changes[key] for row in self.changes if isinstance(row.changes.get(key), dict)),
            None,
        )

    @property
    def remediation(self) -> bool:
        return any(row.changes.get("remediation") is True for row in self.changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "run": self.run.to_dict(),
            "authorization": self.authorization,
            "revision": self.revision,
            "remediation": self.remediation,
            "worktree_dirty": self.run.git_dirty,
            "approvals": [a.to_dict() for a in self.approvals],
            "changes": [r.to_dict() for r in self.changes],
        }


def show_run(*, run: str, database_url: str | None = None, progress: Progress = QUIET) -> RunDetail:
    """One apply run by id (or a unique prefix of it), with its changes and approvals."""
    with reading(database_url, progress) as conn:
        record = find_run(conn, run)
        changes = run_rows(conn, record.id)
        approvals = approvals_for(conn, [record.plan_digest]) if record.plan_digest else []
    return RunDetail(record, changes, approvals)


def address_history(
    *, address: str, database_url: str | None = None, limit: int = 200, progress: Progress = QUIET
) -> list[AuditRecord]:
    """The audit rows of one object (``tenant/platform/environment/kind/name``), oldest first."""
    with reading(database_url, progress) as conn:
        return address_rows(conn, address, limit)
