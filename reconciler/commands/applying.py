"""``apply``: plan (or take a saved plan) and write it in one transaction.

Apply's safety, in order:

1. Load, decrypt and validate every selected manifest; read the database; plan — all
   before any transaction (transactions stay short).
2. Policy gate: a change above ``allow_risk`` or a tripped mass-deletion breaker raises
   :class:`~reconciler.errors.PolicyViolation` (exit 4); nothing is written.
3. One transaction: ``SET LOCAL statement_timeout``; a transaction-scoped advisory lock
   (released by the server if the process dies or the connection drops); re-read the row
   versions. A saved plan whose rows or manifests moved raises
   :class:`~reconciler.errors.PlanStale` (exit 3). An unsaved plan is re-made against the
   new state (and gated again) — that is how a second concurrent apply continues after the
   first one commits.
4. Set-based writes, audit rows (hash-chained) and the ``apply_runs`` row, then COMMIT. Any
   failure before COMMIT rolls everything back.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reconciler.clock import SYSTEM, Clock, now_utc, rfc3339
from reconciler.commands.apply_audit import (
    ForkedPlanWork,
    audit_extra,
    prepare_apply,
    write_and_audit,
)
from reconciler.commands.apply_checks import (
    authorize_plan,
    check_saved_plan_matches,
    replan_under_lock,
)
from reconciler.commands.inputs import (
    ALL,
    ReadWhileLoading,
    load_desired,
    notes_stream,
    with_plaintext,
)
from reconciler.commands.notifications import announce
from reconciler.commands.preflight import check_manifests
from reconciler.commands.verification import verify_connections
from reconciler.context import (
    git_commit,
    git_dirty,
    recorded_commit,
    resolve_actor,
    user_agent,
)
from reconciler.core.approval import (
    Authorization,
)
from reconciler.core.planner import build_plan
from reconciler.core.policy import check_policy
from reconciler.crypto.aead import FieldCipher
from reconciler.crypto.audit_key import load_audit_key
from reconciler.crypto.local_keys import load_keys_for_target
from reconciler.errors import (
    ApplyCancelled,
    ApplyFailed,
    ApprovalRequired,
    ConfigError,
    PlanStale,
    PolicyViolation,
    ReconcilerError,
    SecretError,
    StateError,
)
from reconciler.gcpause import gc_paused
from reconciler.gitrevision import RevisionTree, manifests_at
from reconciler.model.actual import ActualState
from reconciler.model.enums import ApplyOutcome, RiskLevel
from reconciler.model.plan import Plan, Selectors
from reconciler.model.plan_judgement import SavedPlan
from reconciler.progress import QUIET, Progress
from reconciler.settings import Settings
from reconciler.store.audit import (
    AuditContext,
    mark_audited_write,
)
from reconciler.store.database import (
    translate_db_errors,
)
from reconciler.store.locks import APPLY_LOCK_KEY, acquire_xact_lock
from reconciler.store.read import read_row_versions
from reconciler.store.session import Connection, open_database
from reconciler.store.transaction import set_statement_timeout
from reconciler.store.visibility import Access

# -- apply --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What an apply did. ``counts`` maps action -> number of changes applied."""

    plan: Plan
    outcome: ApplyOutcome
    run_id: uuid.UUID | None
    counts: Mapping[str, int] = field(default_factory=dict)
    replanned: bool = False
    dry_run: bool = False
    """The writes ran in the transaction and were rolled back."""
    authorization: Authorization | None = None
    """How changes needing approval were authorized (approvals or break-glass)."""


@dataclass
class _Seen:
    """What an apply got to before it ended, for the notification of how it ended."""

    plan: Plan | None = None
    approval_needed: bool = False


@gc_paused
def apply(
    *,
    manifests_dir: Path,
    settings: Settings,
    saved_plan: SavedPlan | None = None,
    selectors: Selectors = ALL,
    prune: bool = False,
    allow_risk: RiskLevel | None = None,
    allow_mass_deletion: bool = False,
    allow_mass_revocation: bool = False,
    revoke_unmanaged: bool = False,
    actor: str | None = None,
    lock_timeout_seconds: float | None = None,
    database_url: str | None = None,
    confirm: Callable[[Plan], bool] | None = None,
    progress: Progress = QUIET,
    environ: Mapping[str, str] | None = None,
    dry_run: bool = False,
    clock: Clock = SYSTEM,
    require_clean: bool = False,
    revision: str | None = None,
    remediation: bool = False,
) -> ApplyResult:
    """Plan (or take a saved plan) and apply it in one transaction.

    Args:
        confirm: called with the plan before writing; return False to abort. ``None``
            means approved (``--auto-approve``). When given, a plan that would change while
            waiting for the lock is refused as stale rather than silently re-made.
        allow_risk: the highest risk to apply (default: ``settings.allow_risk``). Given
            explicitly, it also lets changes that need approvals through without them:
            break-glass, recorded as such in the audit rows and the notifications.
        dry_run: run everything, writes and audit rows included, in the transaction, then
            roll it back: the same code path as a real apply, so it cannot drift from one.
        clock: dates the plan, the apply run and the written rows.
        require_clean: refuse (before anything is started) when the manifests have
            uncommitted changes; without it such an apply is recorded as dirty (callers
            warn: see :func:`reconciler.context.git_dirty`).
        revision: read the manifests as they were at this git revision (a saved plan made
            with ``--revision`` carries its own), never touching the working tree.
        remediation: the apply brings drift back to the manifests (``drift --remediate``);
            its audit rows say so.

    Changes at or above ``settings.approval_level`` need ``settings.approvals_required``
    approvals (:func:`reconciler.commands.approvals.approve`) of the digest of the changes
    derived here, from people other than the plan's author and the applier; without them
    the apply raises :class:`~reconciler.errors.ApprovalRequired` (exit 4). Every outcome
    is sent to the ``notify:`` targets; a notification failure is reported on stderr only.
    """
    env = os.environ if environ is None else environ
    if saved_plan is not None and saved_plan.plan.revision is not None:
        if revision is not None and revision != saved_plan.plan.revision:
            raise ConfigError(
                f"the saved plan was made at revision {saved_plan.plan.revision}, "
                f"not {revision}; apply it without --revision"
            )
        revision = saved_plan.plan.revision
    seen = _Seen()
    arguments: dict[str, Any] = {
        "settings": settings,
        "saved_plan": saved_plan,
        "selectors": selectors,
        "prune": prune,
        "allow_risk": allow_risk,
        "allow_mass_deletion": allow_mass_deletion,
        "allow_mass_revocation": allow_mass_revocation,
        "revoke_unmanaged": revoke_unmanaged,
        "actor": actor,
        "lock_timeout_seconds": lock_timeout_seconds,
        "database_url": database_url,
        "confirm": confirm,
        "progress": progress,
        "env": env,
        "dry_run": dry_run,
        "clock": clock,
        "remediation": remediation,
        "require_clean": require_clean,
        "seen": seen,
    }
    stderr = notes_stream(progress)
    kind = "remediation" if remediation else "apply"
    try:
        if revision is None:
            result = _apply(manifests_dir=manifests_dir, tree=None, **arguments)
        else:
            with manifests_at(manifests_dir, revision) as tree:
                result = _apply(manifests_dir=tree.manifests_dir, tree=tree, **arguments)
    except PolicyViolation as exc:
        event = "approval-needed" if isinstance(exc, ApprovalRequired) else "blocked"
        summary = f"{kind} blocked: {str(exc).splitlines()[0]}"
        announce(settings, event, summary, seen.plan, {"kind": kind}, stderr)
        raise
    except ApplyCancelled:
        raise
    except ReconcilerError as exc:
        summary = f"{kind} failed, nothing written: {str(exc).splitlines()[0]}"
        announce(settings, "failed", summary, seen.plan, {"kind": kind}, stderr)
        raise
    if result.outcome is ApplyOutcome.APPLIED and not result.dry_run:
        auth = result.authorization
        counts = ", ".join(f"{n} {a}" for a, n in sorted(result.counts.items()))
        glass = (
            " (BREAK-GLASS: without approval, by --allow-risk)" if auth and auth.break_glass else ""
        )
        details: dict[str, Any] = {
            "kind": kind,
            "run_id": str(result.run_id),
            "actor": resolve_actor(actor, env),
            "counts": dict(result.counts),
            "revision": revision,
        }
        if auth is not None:
            details.update(auth.to_dict())
        announce(
            settings,
            "applied",
            f"{kind} applied {counts}{glass}; run {result.run_id}",
            result.plan,
            details,
            stderr,
        )
    return result


def _apply(
    *,
    manifests_dir: Path,
    tree: RevisionTree | None,
    settings: Settings,
    saved_plan: SavedPlan | None,
    selectors: Selectors,
    prune: bool,
    allow_risk: RiskLevel | None,
    allow_mass_deletion: bool,
    allow_mass_revocation: bool,
    revoke_unmanaged: bool,
    actor: str | None,
    lock_timeout_seconds: float | None,
    database_url: str | None,
    confirm: Callable[[Plan], bool] | None,
    progress: Progress,
    env: Mapping[str, str],
    dry_run: bool,
    clock: Clock,
    remediation: bool,
    require_clean: bool,
    seen: _Seen,
) -> ApplyResult:
    performer = resolve_actor(actor, env)
    # A tree read from git's objects at --revision is clean by construction.
    dirty = git_dirty(manifests_dir) if tree is None and manifests_dir.is_dir() else False
    if dirty and require_clean:
        raise ConfigError(
            f"{manifests_dir} has uncommitted changes (--require-clean); commit them, or "
            "apply from a clean checkout"
        )

    allowed = allow_risk or settings.allow_risk
    # The author of a saved plan is who made it; an unsaved plan is made here, by the applier.
    author = saved_plan.plan.author if saved_plan is not None else performer
    if saved_plan is not None:
        selectors, prune = saved_plan.plan.selectors, saved_plan.plan.prune
        # A plan file records no flag for it: a saved plan that revokes unmanaged tokens was
        # made with --revoke-unmanaged. The replan below must then list exactly the same
        # changes, so the file can neither add nor leave out any revocation.
        revoke_unmanaged = any(
            r.code == "UNMANAGED_ACCOUNT" for c in saved_plan.plan.changes for r in c.risk.reasons
        )
    # The directory first: a run in the wrong place must not start a database.
    check_manifests(manifests_dir, selectors, prune=True)
    with open_database(database_url, progress) as db, ForkedPlanWork() as forked:
        keyring, fingerprint = load_keys_for_target(db.target, env, stderr=notes_stream(progress))
        audit_key = load_audit_key(db.target, env, create=True, stderr=notes_stream(progress))
        # Only this first, unlocked read overlaps the load: what is written is re-checked
        # (and re-planned if the rows changed) under the apply lock below.
        with ReadWhileLoading(db, selectors, fingerprint, Access.APPLY) as reading:
            reading.start_apart(manifests_dir)
            desired = load_desired(
                manifests_dir, selectors, fingerprint, progress, after_fork=reading.after_fork
            )
            if (
                saved_plan is not None
                and saved_plan.plan.manifests_digest != desired.manifests_digest
            ):
                raise PlanStale("the manifests changed since the plan was made; make a new plan")
            actual = reading.result(progress)

        def replan(state: ActualState) -> Plan:
            made = build_plan(
                desired,
                state,
                policy=settings.policy,
                created_at=rfc3339(now_utc(clock)),
                prune=prune,
                selectors=selectors,
                revoke_unmanaged=revoke_unmanaged,
            )
            return replace(made, author=author, revision=tree.revision if tree else None)

        current = replan(actual)
        del actual  # the plan keeps what it needs of the rows (ids, versions): free them
        seen.plan = current
        if saved_plan is not None:
            # The saved plan is a claim: apply goes ahead only if it is exactly what the
            # manifests and database give now, and then with the judgement derived here.
            check_saved_plan_matches(saved_plan, current)
        if not current.changes:
            return ApplyResult(current, ApplyOutcome.NO_CHANGES, None)
        # Decrypt before BEGIN what the cache left as fingerprints and the writes need.
        desired = with_plaintext(desired, current, manifests_dir, fingerprint, progress)
        # The last fork of the load is behind: the digest and the audit documents can be
        # made in another process while this one encrypts the writes.
        forked.start(current)

        def authorize(conn: Connection, p: Plan) -> Authorization:
            """Approvals of ``p``'s digest, then the policy gate with what they allow."""
            auth, permitted, missing = authorize_plan(
                conn,
                p,
                settings,
                author=author,
                performer=performer,
                allow_risk=allow_risk,
                digest_of=forked.of,
            )
            seen.approval_needed = missing is not None
            try:
                check_policy(
                    p,
                    allow_risk=max(allowed, permitted),
                    allow_mass_deletion=allow_mass_deletion,
                    allow_mass_revocation=allow_mass_revocation,
                )
            except PolicyViolation as exc:
                if missing is None:
                    raise
                # Both at once: what needs approval, and what no approval lifts (breakers).
                raise ApprovalRequired(f"{missing}\n{exc}") from None
            if missing is not None:
                raise ApprovalRequired(missing)
            return auth

        with translate_db_errors(), db.engine.connect() as conn:
            auth = authorize(conn, current)
        verify_connections(current, desired, settings, progress=progress)
        if confirm is not None and not confirm(current):
            raise ApplyCancelled("apply cancelled; nothing written")
        cipher = FieldCipher(keyring, fingerprint)

        run_id = uuid.uuid4()
        started = now_utc(clock)
        if lock_timeout_seconds is None:
            lock_timeout_seconds = settings.lock_timeout_seconds

        try:
            # Encrypt and render before BEGIN, so the transaction holds its locks only for
            # the database's work (a large plan's audit documents may still be rendering in
            # the forked process: they are needed only after the changes are written); under
            # the lock this is used only if the plan and the audit extras are still the
            # same. (Inside the try: its errors read as before.)
            prepared = prepare_apply(
                current, desired, cipher, audit_extra(auth, tree, remediation, allow_risk), forked
            )
            with translate_db_errors(), db.engine.connect() as conn, conn.begin():
                set_statement_timeout(conn, settings.statement_timeout_seconds)
                mark_audited_write(conn, f"apply {run_id}")  # audited below, keyed: not twice
                with progress.stage("Waiting for the apply lock"):
                    acquire_xact_lock(
                        conn,
                        APPLY_LOCK_KEY,
                        timeout_seconds=lock_timeout_seconds,
                        what="the apply lock",
                    )
                moved = read_row_versions(conn, selectors) != current.read_set
                if moved:
                    current = replan_under_lock(
                        conn,
                        saved_plan,
                        confirm,
                        replan,
                        selectors,
                        fingerprint,
                        lambda p: None,
                    )
                    seen.plan = current
                    progress.note("The database changed while waiting for the lock; re-planned.")
                    if not current.changes:
                        return ApplyResult(current, ApplyOutcome.NO_CHANGES, None, replanned=True)
                    desired = with_plaintext(desired, current, manifests_dir, fingerprint, progress)
                # Under the lock, for the plan that is written: approvals and policy again.
                auth = authorize(conn, current)
                count = len(current.changes)  # each change is a row written and an audit row
                with progress.stage(f"Applying {count} change(s)", 2 * count, unit="row") as stage:
                    audit_context = AuditContext(
                        performed_by=performer,
                        ip_address=None,
                        user_agent=user_agent(env),
                        session_id=str(run_id),
                        git_commit=(
                            tree.commit
                            if tree
                            else recorded_commit(git_commit(env, manifests_dir), dirty)
                        ),
                        apply_run_id=run_id,
                        key=audit_key,
                    )
                    extra = audit_extra(auth, tree, remediation, allow_risk)
                    counts = write_and_audit(
                        conn,
                        current,
                        desired,
                        cipher,
                        audit_context,
                        started,
                        clock,
                        dirty,
                        extra,
                        on_written=stage.advance,
                        digest_of=forked.of,
                        prepared=prepared,
                    )
                    if dry_run:
                        raise _DryRunDone(counts)
        except _DryRunDone as done:
            return ApplyResult(
                current, ApplyOutcome.APPLIED, None, dict(done.counts), moved, dry_run=True
            )
        except (StateError, ApplyFailed, SecretError) as exc:
            if exc.says_nothing_written:
                raise
            # Every failure inside the transaction rolls it back; say so, keeping the error type
            # (and so the exit code).
            rolled_back = type(exc)(f"{exc}; rolled back, nothing applied")
            rolled_back.says_nothing_written = True
            raise rolled_back from exc
        return ApplyResult(
            current, ApplyOutcome.APPLIED, run_id, dict(counts), moved, authorization=auth
        )


class _DryRunDone(Exception):
    """Raised inside the apply transaction to roll a dry run back (never escapes apply)."""

    def __init__(self, counts: Counter[str]) -> None:
        super().__init__("dry run")
        self.counts = counts
