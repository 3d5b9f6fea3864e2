"""The Python API: one typed function per verb (``plan``, ``apply``, ``drift``, ``history``).

The CLI (``reconciler/cli``) only parses options, calls one of these and renders the result,
so every verb is usable from scripts and tests. The functions do the I/O the pure core must
not: read manifests and keys, talk to PostgreSQL, read the clock.

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

import dataclasses
import hashlib
import io
import json
import os
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from reconciler.clock import SYSTEM, Clock, now_utc, rfc3339
from reconciler.context import git_commit, resolve_actor, user_agent
from reconciler.core.planner import build_plan, judgement_difference
from reconciler.core.policy import check_policy
from reconciler.core.risk import RiskPolicy
from reconciler.crypto.aead import FieldCipher
from reconciler.crypto.audit_key import load_audit_key
from reconciler.crypto.fingerprint import Fingerprinter
from reconciler.crypto.local_keys import load_keys_for_target
from reconciler.errors import (
    ApplyCancelled,
    ApplyFailed,
    ConfigError,
    KeyUnavailable,
    ManifestInvalid,
    PlanStale,
    SecretError,
    StateError,
)
from reconciler.gcpause import gc_paused
from reconciler.load.cache import (
    CACHE_DIR_ENV,
    CACHE_KEY_ENV,
    KEY_FILE_NAME,
    LoadCache,
    cache_key_from_env,
)
from reconciler.load.cache import enabled as cache_enabled
from reconciler.model.actual import ActualState
from reconciler.model.desired import DesiredIntegration, DesiredState, DesiredWebhook
from reconciler.model.enums import ApplyOutcome, EntityType, RiskLevel
from reconciler.model.fields import INTEGRATION_SECRETS, WEBHOOK_SECRETS
from reconciler.model.plan import (
    Action,
    Change,
    Judgement,
    Plan,
    ResourceKind,
    SavedPlan,
    Selectors,
)
from reconciler.progress import QUIET, Progress
from reconciler.settings import Settings
from reconciler.store.audit import (
    AuditContext,
    AuditEntry,
    append_audit_entries,
    mark_audited_write,
)
from reconciler.store.database import (
    DATA_DIR_ENV,
    DEFAULT_DATA_DIR,
    DatabaseTarget,
    translate_db_errors,
)
from reconciler.store.locks import APPLY_LOCK_KEY, acquire_xact_lock
from reconciler.store.read import read_actual_state, read_row_versions
from reconciler.store.runs import ApplyRun, insert_apply_run, recent_apply_runs
from reconciler.store.session import Connection, Database, open_database
from reconciler.store.transaction import begin_read_snapshot, set_statement_timeout
from reconciler.store.visibility import Access, check_visibility
from reconciler.store.write import WriteContext, WrittenChange, write_changes

ALL = Selectors()
"""No selection: every tenant and platform."""


# -- shared steps -------------------------------------------------------------------------------


def fingerprinter_for(
    target: DatabaseTarget,
    environ: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> Fingerprinter:
    """The fingerprint key: ``RECONCILER_FINGERPRINT_KEY``, else the development keys."""
    env = os.environ if environ is None else environ
    fp = Fingerprinter.from_environ(env)
    if fp is not None:
        return fp
    return load_keys_for_target(target, env, stderr=_notes(progress))[1]


def _notes(progress: Progress | None) -> TextIO:
    """Where one-line notices go: stderr, or nowhere under ``--quiet``."""
    if progress is None or progress.enabled:
        return sys.stderr
    return io.StringIO()


def open_load_cache(fingerprint: Fingerprinter, environ: Mapping[str, str]) -> LoadCache | None:
    """The manifest cache: ``$RECONCILER_CACHE_DIR``, else ``<data dir>/cache``.

    Its MAC key is ``$RECONCILER_CACHE_KEY``, else ``<data dir>/cache.key`` (made on first
    use). None when ``RECONCILER_CACHE=0``.

    Raises:
        ConfigError: ``$RECONCILER_CACHE_KEY`` is set but not a usable key.
    """
    if not cache_enabled(environ):
        return None
    data_dir = Path(environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)
    directory = environ.get(CACHE_DIR_ENV) or data_dir / "cache"
    # The key lives in the data directory, not in the cache directory: restoring a cache
    # directory (a CI cache) brings back entries, never the key that would vouch for forged
    # ones. $RECONCILER_CACHE_KEY (a CI secret) lets trusted jobs share one key instead.
    given = environ.get(CACHE_KEY_ENV)
    key = cache_key_from_env(given) if given else data_dir / KEY_FILE_NAME
    namespace = fingerprint.fingerprint("reconciler/load-cache/v1")
    return LoadCache.open(Path(directory), namespace, key)


def load_desired(
    manifests_dir: Path,
    selectors: Selectors,
    fingerprint: Fingerprinter,
    progress: Progress = QUIET,
    *,
    paths: Sequence[Path] | None = None,
    use_cache: bool = True,
) -> DesiredState:
    """Load, decrypt and validate the selected manifests, or raise ``ManifestInvalid``.

    With the cache, unchanged files come back with fingerprints but no plaintext
    (:func:`with_plaintext` decrypts what an apply must write).
    """
    from reconciler.load.validate import load_desired_state
    from reconciler.sops import load_identities

    if not manifests_dir.is_dir():
        # An empty desired state would plan the deletion of everything: refuse instead.
        raise ConfigError(
            f"manifests directory {manifests_dir} does not exist; pass --manifests DIR"
        )
    with progress.stage("Loading manifests") as stage:
        cache = open_load_cache(fingerprint, os.environ) if use_cache else None
        result = load_desired_state(
            manifests_dir,
            selectors=selectors,
            paths=paths,
            identities=load_identities(),
            fingerprint=fingerprint,
            decrypt=True,
            cache=cache,
        )
        stage["detail"] = f"{result.files} files"
    for line in cache.report() if cache is not None else ():
        _notes(progress).write(f"{line}\n")  # cache off, old format, entries ignored
    if result.state is None or result.diagnostics.has_errors():
        raise ManifestInvalid(result.diagnostics)
    if result.skipped_decryption:
        raise KeyUnavailable(
            f"no age key to decrypt {len(result.skipped_decryption)} manifest(s) "
            f"(first: {result.skipped_decryption[0]}): set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY"
        )
    return result.state


def with_plaintext(
    desired: DesiredState,
    plan: Plan,
    manifests_dir: Path,
    fingerprint: Fingerprinter,
    progress: Progress = QUIET,
) -> DesiredState:
    """Decrypt again the files whose secrets ``plan`` writes, if they came from the cache."""

    def missing(obj: DesiredIntegration | DesiredWebhook) -> bool:
        secrets = [
            getattr(obj, name)
            for name in (*INTEGRATION_SECRETS, *WEBHOOK_SECRETS)
            if hasattr(obj, name)
        ]
        return any(s is not None and s.value is None for s in secrets)

    objects: list[DesiredIntegration | DesiredWebhook] = [*desired.integrations, *desired.webhooks]
    by_address = {str(o.address): o for o in objects}
    needed = {
        by_address[str(c.address)].source.path
        for c in plan.changes
        if str(c.address) in by_address
        and (c.action is Action.CREATE or any(f.sensitive for f in c.fields))
        and missing(by_address[str(c.address)])
    }
    if not needed:
        return desired
    root = manifests_dir.resolve()
    base = Path.cwd().resolve()
    if not (root == base or base in root.parents):
        base = root.parent  # how the loader displays paths outside the working directory
    files = [p if p.is_absolute() else (base / p) for p in map(Path, sorted(needed))]
    fresh = load_desired(
        manifests_dir,
        ALL,
        fingerprint,
        progress,
        paths=[f for f in files if root in f.resolve().parents],
        use_cache=False,
    )
    integrations = {str(i.address): i for i in fresh.integrations}
    webhooks = {str(w.address): w for w in fresh.webhooks}
    return dataclasses.replace(
        desired,
        integrations=tuple(integrations.get(str(i.address), i) for i in desired.integrations),
        webhooks=tuple(webhooks.get(str(w.address), w) for w in desired.webhooks),
    )


def read_actual(
    db: Database,
    selectors: Selectors,
    fingerprint: Fingerprinter,
    progress: Progress = QUIET,
    access: Access = Access.READ,
) -> ActualState:
    """Read the actual state, after checking the role sees every row of what it reads."""
    with (
        progress.stage("Reading database") as stage,
        translate_db_errors(),
        db.engine.connect() as conn,
    ):
        with conn.begin():
            begin_read_snapshot(conn)
            check_visibility(conn, access)  # never a plan from a partial view
            actual = read_actual_state(conn, selectors, fingerprint)
        rows = len(actual.integrations) + len(actual.webhooks) + len(actual.tokens)
        stage["detail"] = f"{rows} rows"
    return actual


# -- plan ---------------------------------------------------------------------------------------


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


_ENTITY = {
    ResourceKind.INTEGRATION: EntityType.INTEGRATION_CONFIG,
    ResourceKind.WEBHOOK: EntityType.WEBHOOK_CONFIGURATION,
    ResourceKind.OAUTH_ACCOUNT: EntityType.OAUTH_TOKEN,
}


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
) -> ApplyResult:
    """Plan (or take a saved plan) and apply it in one transaction.

    Args:
        confirm: called with the plan before writing; return False to abort. ``None``
            means approved (``--auto-approve``). When given, a plan that would change while
            waiting for the lock is refused as stale rather than silently re-made.
        dry_run: run everything, writes and audit rows included, in the transaction, then
            roll it back: the same code path as a real apply, so it cannot drift from one.
        clock: dates the plan, the apply run and the written rows.
    """
    env = os.environ if environ is None else environ
    performer = resolve_actor(actor, env)
    allowed = allow_risk or settings.allow_risk
    if saved_plan is not None:
        selectors, prune = saved_plan.plan.selectors, saved_plan.plan.prune
        # A plan file records no flag for it: a saved plan that revokes unmanaged tokens was
        # made with --revoke-unmanaged. The replan below must then list exactly the same
        # changes, so the file can neither add nor leave out any revocation.
        revoke_unmanaged = any(
            r.code == "UNMANAGED_ACCOUNT" for c in saved_plan.plan.changes for r in c.risk.reasons
        )
    with open_database(database_url, progress) as db:
        keyring, fingerprint = load_keys_for_target(db.target, env, stderr=_notes(progress))
        audit_key = load_audit_key(db.target, env, create=True, stderr=_notes(progress))
        desired = load_desired(manifests_dir, selectors, fingerprint, progress)
        if saved_plan is not None and saved_plan.plan.manifests_digest != desired.manifests_digest:
            raise PlanStale("the manifests changed since the plan was made; make a new plan")
        actual = read_actual(db, selectors, fingerprint, progress, Access.APPLY)

        def replan(state: ActualState) -> Plan:
            return build_plan(
                desired,
                state,
                policy=settings.policy,
                created_at=rfc3339(now_utc(clock)),
                prune=prune,
                selectors=selectors,
                revoke_unmanaged=revoke_unmanaged,
            )

        current = replan(actual)
        if saved_plan is not None:
            # The saved plan is a claim: apply goes ahead only if it is exactly what the
            # manifests and database give now, and then with the judgement derived here.
            _check_saved_plan_matches(saved_plan, current)
        if not current.changes:
            return ApplyResult(current, ApplyOutcome.NO_CHANGES, None)
        # Decrypt before BEGIN what the cache left as fingerprints and the writes need.
        desired = with_plaintext(desired, current, manifests_dir, fingerprint, progress)
        check_policy(
            current,
            allow_risk=allowed,
            allow_mass_deletion=allow_mass_deletion,
            allow_mass_revocation=allow_mass_revocation,
        )
        if confirm is not None and not confirm(current):
            raise ApplyCancelled("apply cancelled; nothing written")

        run_id = uuid.uuid4()
        started = now_utc(clock)
        if lock_timeout_seconds is None:
            lock_timeout_seconds = settings.lock_timeout_seconds

        def gate(p: Plan) -> None:
            check_policy(
                p,
                allow_risk=allowed,
                allow_mass_deletion=allow_mass_deletion,
                allow_mass_revocation=allow_mass_revocation,
            )

        try:
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
                    current = _replan_under_lock(
                        conn, saved_plan, confirm, replan, selectors, fingerprint, gate
                    )
                    progress.note("The database changed while waiting for the lock; re-planned.")
                    if not current.changes:
                        return ApplyResult(current, ApplyOutcome.NO_CHANGES, None, replanned=True)
                    desired = with_plaintext(desired, current, manifests_dir, fingerprint, progress)
                with progress.stage(f"Applying {len(current.changes)} change(s)"):
                    audit_context = AuditContext(
                        performed_by=performer,
                        ip_address=None,
                        user_agent=user_agent(env),
                        session_id=str(run_id),
                        git_commit=git_commit(env, manifests_dir),
                        apply_run_id=run_id,
                        key=audit_key,
                    )
                    cipher = FieldCipher(keyring, fingerprint)
                    counts = _write_and_audit(
                        conn, current, desired, cipher, audit_context, started, clock
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
        return ApplyResult(current, ApplyOutcome.APPLIED, run_id, dict(counts), moved)


def _replan_under_lock(
    conn: Connection,
    saved_plan: SavedPlan | None,
    confirm: Callable[[Plan], bool] | None,
    replan: Callable[[ActualState], Plan],
    selectors: Selectors,
    fingerprint: Fingerprinter,
    gate: Callable[[Plan], None],
) -> Plan:
    """The rows moved while we waited for the lock: refuse, or re-plan and re-gate.

    A saved plan, or one a person approved, is refused as stale (what was reviewed is not
    what would be written); an auto-approved plan is re-made against the new state.
    """
    if saved_plan is not None:
        raise PlanStale("the database changed since the plan was made; make a new plan")
    if confirm is not None:
        raise PlanStale(
            "the database changed while waiting; run apply again to review the new plan"
        )
    fresh = replan(read_actual_state(conn, selectors, fingerprint))
    gate(fresh)
    return fresh


def _write_and_audit(
    conn: Connection,
    p: Plan,
    desired: DesiredState,
    cipher: FieldCipher,
    context: AuditContext,
    started: datetime,
    clock: Clock = SYSTEM,
) -> Counter[str]:
    """Write the changes, the apply_runs row and one audit row per change; return counts."""
    now = now_utc(clock)
    written = write_changes(
        conn, p.changes, desired, WriteContext(now, context.performed_by, cipher)
    )
    counts = Counter(w.change.action.value for w in written)
    assert context.apply_run_id is not None
    insert_apply_run(
        conn,
        run_id=context.apply_run_id,
        started=started,
        actor=context.performed_by,
        git_commit=context.git_commit,
        manifests_digest=desired.manifests_digest,
        plan_digest=plan_digest(p),
        counts=counts,
        user_agent=context.user_agent,
    )
    append_audit_entries(conn, [_audit_entry(w) for w in written], context, now=now)
    return counts


class _DryRunDone(Exception):
    """Raised inside the apply transaction to roll a dry run back (never escapes apply)."""

    def __init__(self, counts: Counter[str]) -> None:
        super().__init__("dry run")
        self.counts = counts


def _check_saved_plan_matches(saved: SavedPlan, fresh: Plan) -> None:
    """Refuse (exit 3) a saved plan that is not what apply derives now, naming the difference."""
    if saved.plan.read_set != fresh.read_set:
        raise PlanStale("the database changed since the plan was made; make a new plan")

    def shape(p: Plan) -> list[tuple[str, str, list[dict[str, Any]]]]:
        return [
            (str(c.address), c.action.value, [f.to_dict() for f in c.fields]) for c in p.changes
        ]

    if shape(saved.plan) != shape(fresh):
        raise PlanStale(
            "the saved plan no longer matches the manifests and database; make a new plan"
        )
    difference = judgement_difference(saved.recorded, Judgement.of(fresh))
    if difference is not None:
        raise PlanStale(
            f"the saved plan's risk judgement does not match its changes ({difference}); "
            "it was edited or made under another risk policy; make a new plan"
        )


def _audit_entry(w: WrittenChange) -> AuditEntry:
    c: Change = w.change
    return AuditEntry(
        tenant_id=c.address.tenant,
        entity_type=_ENTITY[c.address.kind],
        entity_id=w.entity_id,
        entity_address=str(c.address),
        action=_audit_action(c.action),
        changes={"fields": [f.to_dict() for f in c.fields], "reason": c.reason},
        risk_level=c.risk.level,
        risk_reasons=[r.to_dict() for r in c.risk.reasons],
        requires_review=c.risk.requires_review,
        source_path=c.source,
    )


def _audit_action(action: Action) -> Any:
    from reconciler.model.enums import AuditAction

    return AuditAction(action.value.upper())


# -- drift and history ----------------------------------------------------------------------------


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


def history(
    *, database_url: str | None = None, limit: int = 20, progress: Progress = QUIET
) -> list[ApplyRun]:
    """The most recent apply runs, newest first."""
    with (
        open_database(database_url, progress) as db,
        translate_db_errors(),
        db.engine.connect() as conn,
    ):
        return recent_apply_runs(conn, limit)


__all__ = [
    "ApplyResult",
    "ApplyRun",
    "Database",
    "PlanResult",
    "Progress",
    "RiskPolicy",
    "apply",
    "check_policy",
    "drift",
    "history",
    "open_database",
    "plan",
]
