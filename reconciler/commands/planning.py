"""``plan`` and ``drift``: what apply would change, made without writing."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from reconciler.clock import SYSTEM, Clock, now_utc, rfc3339
from reconciler.commands.inputs import (
    ALL,
    fingerprinter_for,
    load_desired,
    read_actual,
)
from reconciler.core.planner import build_plan
from reconciler.gcpause import gc_paused
from reconciler.model.desired import DesiredState
from reconciler.model.plan import (
    Plan,
    Selectors,
)
from reconciler.progress import QUIET, Progress
from reconciler.settings import Settings
from reconciler.store.session import Database, open_database


@dataclass(frozen=True, slots=True)
class PlanResult:
    """A plan and the desired state it was made from (holds decrypted secrets in memory).

    ``database`` is where the plan was read from; its engine is already disposed (connecting
    again opens a new pool, which the caller must then dispose).
    """

    plan: Plan
    desired: DesiredState
    database: Database


@gc_paused
def plan(
    *,
    manifests_dir: Path,
    settings: Settings,
    selectors: Selectors = ALL,
    prune: bool = False,
    database_url: str | None = None,
    progress: Progress = QUIET,
    revoke_unmanaged: bool = False,
    clock: Clock = SYSTEM,
) -> PlanResult:
    """Make a plan: what apply would change, with risk, for the selected tenants/platforms.

    ``revoke_unmanaged`` (with ``prune``) also revokes tokens of accounts no manifest has
    ever declared. ``clock`` dates the plan.
    """
    with open_database(database_url, progress) as db:
        fingerprint = fingerprinter_for(db.target, progress=progress)
        desired = load_desired(manifests_dir, selectors, fingerprint, progress)
        actual = read_actual(db, selectors, fingerprint, progress)
    made = build_plan(
        desired,
        actual,
        policy=settings.policy,
        created_at=rfc3339(now_utc(clock)),
        prune=prune,
        selectors=selectors,
        revoke_unmanaged=revoke_unmanaged,
    )
    return PlanResult(made, desired, db)


def plan_digest(p: Plan) -> str:
    """SHA-256 of the plan's changes (what apply_runs records)."""
    body = json.dumps([c.to_dict() for c in p.changes], sort_keys=True).encode()
    return hashlib.sha256(body).hexdigest()


# -- drift ----------------------------------------------------------------------------


def drift(
    *,
    manifests_dir: Path,
    settings: Settings,
    selectors: Selectors = ALL,
    database_url: str | None = None,
    progress: Progress = QUIET,
    clock: Clock = SYSTEM,
) -> Plan:
    """Read-only: everything in the database that differs from git, as a plan with prune on.

    Includes edits made outside the reconciler (a row changed by hand shows as an update
    back to the manifest's value) and objects git does not declare.
    """
    return plan(
        manifests_dir=manifests_dir,
        settings=settings,
        selectors=selectors,
        prune=True,
        database_url=database_url,
        progress=progress,
        clock=clock,
    ).plan
