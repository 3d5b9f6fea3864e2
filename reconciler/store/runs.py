"""The ``apply_runs`` table: one row per committed apply, and the history query over it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from reconciler import __version__
from reconciler.store.records import json_form

_INSERT_RUN = sa.text(
    """INSERT INTO apply_runs (id, started_at, finished_at, actor, git_commit,
           manifests_digest, plan_digest, outcome, created_count, updated_count,
           deleted_count, revoked_count, reconciler_version, user_agent, git_dirty)
       VALUES (:id, :started, clock_timestamp(), :actor, :commit, :mdigest, :pdigest,
           'APPLIED', :c, :u, :d, :r, :version, :ua, :dirty)"""
)

_RECENT_RUNS = sa.text(
    """SELECT id::text, started_at, finished_at, actor, git_commit, outcome::text,
              created_count, updated_count, deleted_count, revoked_count, git_dirty
       FROM apply_runs ORDER BY started_at DESC LIMIT :limit"""
)


def insert_apply_run(
    conn: sa.Connection,
    *,
    run_id: uuid.UUID,
    started: datetime,
    actor: str,
    git_commit: str | None,
    manifests_digest: str,
    plan_digest: str,
    counts: Mapping[str, int],
    user_agent: str | None,
    git_dirty: bool | None = None,
) -> None:
    """Record an applied run (finished now, by the server's clock) with its counts by action.

    ``git_dirty``: the manifests had uncommitted changes (None: unknown)."""
    conn.execute(
        _INSERT_RUN,
        {
            "id": run_id,
            "started": started,
            "actor": actor,
            "commit": git_commit,
            "mdigest": manifests_digest,
            "pdigest": plan_digest,
            "c": counts.get("create", 0),
            "u": counts.get("update", 0),
            "d": counts.get("delete", 0),
            "r": counts.get("revoke", 0),
            "version": __version__,
            "ua": user_agent,
            "dirty": git_dirty,
        },
    )


@dataclass(frozen=True, slots=True)
class ApplyRun:
    """One row of ``apply_runs``: who applied what when, and how many changes of each kind."""

    id: str
    started_at: datetime
    finished_at: datetime | None
    actor: str
    git_commit: str | None
    outcome: str
    created: int
    updated: int
    deleted: int
    revoked: int
    git_dirty: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return json_form(self)


def recent_apply_runs(conn: sa.Connection, limit: int) -> list[ApplyRun]:
    """The ``limit`` most recent apply runs, newest first."""
    return [ApplyRun(*r) for r in conn.execute(_RECENT_RUNS, {"limit": limit})]
