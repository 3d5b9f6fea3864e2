"""``plan`` and ``drift``: what apply would change, made without writing."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from reconciler.clock import SYSTEM, Clock, now_utc, rfc3339
from reconciler.commands.inputs import (
    ALL,
    fingerprinter_for,
    load_desired,
    read_actual,
)
from reconciler.context import resolve_actor
from reconciler.core.planner import build_plan
from reconciler.gcpause import gc_paused
from reconciler.gitrevision import manifests_at
from reconciler.model.desired import DesiredState
from reconciler.model.plan import (
    Plan,
    Selectors,
)
from reconciler.notify import event_document, send
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
    actor: str | None = None,
    environ: Mapping[str, str] | None = None,
    revision: str | None = None,
) -> PlanResult:
    """Make a plan: what apply would change, with risk, for the selected tenants/platforms.

    ``revoke_unmanaged`` (with ``prune``) also revokes tokens of accounts no manifest has
    ever declared. ``clock`` dates the plan. The plan records its author (``actor``, else
    the actor of the environment) and, with ``revision``, the git revision whose manifests
    it was made from (read from git's objects; the working tree is not touched).
    """
    env = os.environ if environ is None else environ
    author = resolve_actor(actor, env)
    if revision is not None:
        with manifests_at(manifests_dir, revision) as tree:
            at_revision = plan(
                manifests_dir=tree.manifests_dir,
                settings=settings,
                selectors=selectors,
                prune=prune,
                database_url=database_url,
                progress=progress,
                revoke_unmanaged=revoke_unmanaged,
                clock=clock,
                actor=author,
                environ=env,
            )
        return replace(at_revision, plan=replace(at_revision.plan, revision=tree.revision))
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
    return PlanResult(replace(made, author=author), desired, db)


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
    notify: bool = True,
) -> Plan:
    """Read-only: everything in the database that differs from git, as a plan with prune on.

    Includes edits made outside the reconciler (a row changed by hand shows as an update
    back to the manifest's value) and objects git does not declare. Drift found is sent to
    the ``notify:`` targets subscribed to ``drift`` (unless ``notify`` is False).
    """
    found = plan(
        manifests_dir=manifests_dir,
        settings=settings,
        selectors=selectors,
        prune=True,
        database_url=database_url,
        progress=progress,
        clock=clock,
    ).plan
    if notify and found.changes and settings.notify:
        doc = event_document(
            "drift",
            summary=f"drift: {len(found.changes)} object(s) differ from git",
            plan=found,
        )
        for delivery in send(settings.notify, "drift", doc):
            if delivery.error is not None:
                print(
                    f"warning: notification drift to {delivery.url} failed after "
                    f"{delivery.attempts} attempt(s): {delivery.error}",
                    file=sys.stderr,
                )
    return found
