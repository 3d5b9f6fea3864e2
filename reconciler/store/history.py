"""Reads for ``history show RUN`` and ``history ADDRESS``: one apply run, one object's rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from reconciler.errors import ConfigError
from reconciler.store.audit import AuditRecord, list_entries
from reconciler.store.records import json_form

MAX_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One ``apply_runs`` row, every column."""

    id: str
    started_at: datetime
    finished_at: datetime | None
    actor: str
    git_commit: str | None
    manifests_digest: str
    plan_digest: str | None
    outcome: str
    created: int
    updated: int
    deleted: int
    revoked: int
    reconciler_version: str
    user_agent: str | None
    git_dirty: bool | None = None
    """Whether the manifests had uncommitted changes (None: not known)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return json_form(self)


_RUN = """SELECT id::text AS id, started_at, finished_at, actor, git_commit, manifests_digest,
                 plan_digest, outcome::text AS outcome, created_count AS created,
                 updated_count AS updated, deleted_count AS deleted, revoked_count AS revoked,
                 reconciler_version, user_agent, git_dirty
            FROM apply_runs WHERE id::text LIKE :prefix ORDER BY started_at LIMIT 2"""


def find_run(conn: sa.Connection, run: str) -> RunRecord:
    """The apply run whose id is ``run`` or starts with it.

    Raises:
        ConfigError: no such run, or the prefix matches more than one.
    """
    prefix = run.strip().lower()
    if not prefix or any(ch not in "0123456789abcdef-" for ch in prefix):
        raise ConfigError(f"{run!r} is not an apply run id (see `reconciler history`)")
    rows = conn.execute(sa.text(_RUN), {"prefix": prefix + "%"}).all()
    if not rows:
        raise ConfigError(f"no apply run {run} (see `reconciler history`)")
    if len(rows) > 1:
        raise ConfigError(f"{run} matches more than one apply run: give more of the id")
    return RunRecord(**rows[0]._mapping)


def run_rows(conn: sa.Connection, run_id: str) -> list[AuditRecord]:
    """The audit rows of one apply run, in the order they were written."""
    rows = list_entries(conn, run=run_id, limit=MAX_ROWS)
    return sorted(rows, key=lambda r: r.id)


def address_rows(conn: sa.Connection, address: str, limit: int) -> list[AuditRecord]:
    """The newest ``limit`` audit rows of one object, oldest first (reviews included)."""
    return sorted(list_entries(conn, address=address, limit=limit), key=lambda r: r.id)
