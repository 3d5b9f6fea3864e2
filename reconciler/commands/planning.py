"""``plan`` and ``drift``: what apply would change, made without writing."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NotRequired, TypedDict, Unpack

from reconciler.clock import SYSTEM, Clock, now_utc, rfc3339
from reconciler.commands.inputs import (
    ALL,
    ReadWhileLoading,
    fingerprinter_for,
    load_desired_encoded,
)
from reconciler.commands.preflight import check_manifests
from reconciler.context import resolve_actor
from reconciler.core.digest import plan_digest as plan_digest
from reconciler.core.planner import build_plan
from reconciler.core.policy import with_policy
from reconciler.core.settle import settle
from reconciler.gcpause import gc_paused
from reconciler.gitrevision import manifests_at
from reconciler.load.cache import decode_rows
from reconciler.load.manifests import TENANTS_DIR
from reconciler.model.desired import NO_ROWS, DesiredState, EncodedRows
from reconciler.model.enums import RiskLevel
from reconciler.model.plan import (
    Action,
    Change,
    Plan,
    ResourceKind,
    Selectors,
)
from reconciler.notify import event_document, send
from reconciler.progress import QUIET, Progress
from reconciler.settings import Settings
from reconciler.store.session import Database, open_database
from reconciler.yaml_source import locate


@dataclass(frozen=True, slots=True)
class PlanResult:
    """A plan and the desired state it was made from (holds decrypted secrets in memory).

    ``database`` is where the plan was read from; its engine is already disposed (connecting
    again opens a new pool, which the caller must then dispose).
    """

    plan: Plan
    made: DesiredState
    """The desired objects the plan was made of: :attr:`desired` less ``settled``."""
    database: Database
    settled: EncodedRows = NO_ROWS
    """Declared objects found stored exactly as declared, still encoded (see
    :mod:`reconciler.core.settle`): the plan needed no desired object of them."""
    _whole: list[DesiredState] = dataclasses.field(
        default_factory=list, init=False, repr=False, compare=False
    )
    """:attr:`desired`, once made (a frozen class's one mutable holder)."""

    @property
    def desired(self) -> DesiredState:
        """Everything the manifests declare; settled objects are made on first use."""
        if not self._whole:
            self._whole.append(_joined(self.made, decode_rows(self.settled)))
        return self._whole[0]


def _joined(state: DesiredState, more: DesiredState) -> DesiredState:
    """``state`` with the integrations and webhooks of ``more`` added."""
    return replace(
        state,
        integrations=state.integrations + more.integrations,
        webhooks=state.webhooks + more.webhooks,
    )


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
    allow_risk: RiskLevel | None = None,
    allow_mass_deletion: bool = False,
    allow_mass_revocation: bool = False,
    actor: str | None = None,
    environ: Mapping[str, str] | None = None,
    revision: str | None = None,
) -> PlanResult:
    """Make a plan: what apply would change, with risk, for the selected tenants/platforms.

    ``revoke_unmanaged`` (with ``prune``) also revokes tokens of accounts no manifest has
    ever declared. ``clock`` dates the plan. The plan carries the policy verdict: what
    apply would refuse under ``settings`` and the ``allow_*`` permissions given here (the
    same as apply's). It records its author (``actor``, else the actor of the environment)
    and, with ``revision``, the git revision whose manifests it was made from (read from
    git's objects; the working tree is not touched).
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
                allow_risk=allow_risk,
                allow_mass_deletion=allow_mass_deletion,
                allow_mass_revocation=allow_mass_revocation,
                actor=author,
                environ=env,
            )
        return replace(at_revision, plan=replace(at_revision.plan, revision=tree.revision))
    # The directory first: a run in the wrong place must not start a database.
    check_manifests(manifests_dir, selectors, prune=True)
    with open_database(database_url, progress) as db:
        fingerprint = fingerprinter_for(db.target, progress=progress)
        # The database is read while the manifests load (a large load's workers parse and
        # decrypt meanwhile); a manifest error still ends the run before the read is used.
        with ReadWhileLoading(db, selectors, fingerprint) as reading:
            reading.start_apart(manifests_dir)
            desired, encoded = load_desired_encoded(
                manifests_dir, selectors, fingerprint, progress, after_fork=reading.after_fork
            )
            actual = reading.result(progress)
    # Most files of a fleet come unchanged from the cache, declaring what is stored: only
    # the rest become desired objects for the diff.
    settled, rest = settle(encoded, actual)
    desired = _joined(desired, decode_rows(rest))
    made = build_plan(
        desired,
        actual,
        policy=settings.policy,
        created_at=rfc3339(now_utc(clock)),
        prune=prune,
        selectors=selectors,
        revoke_unmanaged=revoke_unmanaged,
        settled=settled,
    )
    del actual  # the plan keeps what it needs of the rows (ids, versions): free them
    made = with_locations(made, manifests_dir)
    made = with_policy(
        made,
        allow_risk=allow_risk or settings.allow_risk,
        allow_mass_deletion=allow_mass_deletion,
        allow_mass_revocation=allow_mass_revocation,
    )
    return PlanResult(replace(made, author=author), desired, db, settled.rows)


MAX_LOCATED_FILES = 500
"""Lines are looked up by parsing each changed manifest again; a plan touching more files
than this (an initial load) names the files without lines."""


def with_locations(p: Plan, manifests_dir: Path) -> Plan:
    """``p`` with the line of each change in its manifest, and deletions pointed at the file
    of the tenant and platform that declared the object.

    Reads only the manifests of changed objects (their YAML structure; encrypted values stay
    encrypted). A file that cannot be read or parsed leaves its changes without a line.
    """
    root = manifests_dir.resolve()
    # Sources are shown as the loader shows them: relative to the working directory when
    # the manifests are under it, else to the manifests directory's parent.
    cwd = Path.cwd().resolve()
    base = cwd if root == cwd or cwd in root.parents else root.parent
    changes = [
        dataclasses.replace(c, source=_declared_in(c, root, base))
        if c.action is Action.DELETE and c.source is None
        else c
        for c in p.changes
    ]
    files = {c.source for c in changes if c.source and c.line is None}
    if not files or len(files) > MAX_LOCATED_FILES:
        return dataclasses.replace(p, changes=tuple(changes))
    texts: dict[str, bytes | None] = {}
    for name in files:
        try:
            texts[name] = (base / name).read_bytes()
        except OSError:
            texts[name] = None
    located = []
    for c in changes:
        text = texts.get(c.source) if c.source and c.line is None else None
        where = locate(text, _yaml_path(c), key=True) if text is not None else None
        located.append(dataclasses.replace(c, line=where[0]) if where else c)
    return dataclasses.replace(p, changes=tuple(located))


def _declared_in(c: Change, root: Path, base: Path) -> str:
    a = c.address
    path = root / TENANTS_DIR / a.tenant / f"{a.platform.file_stem}.yaml"
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _yaml_path(c: Change) -> tuple[str, ...]:
    a = c.address
    if a.environment is None:
        return ()
    base = ("environments", a.environment.manifest_key)
    match a.kind:
        case ResourceKind.INTEGRATION:
            return (*base, "integrations", a.name)
        case ResourceKind.WEBHOOK:
            return (*base, "webhooks", a.name)
        case _:
            return (*base, "oauth_accounts")


# -- drift ----------------------------------------------------------------------------


class DriftInputs(TypedDict):
    """What :func:`drift` compares, as keyword arguments (those of :func:`plan`): the
    ``manifests_dir`` and ``settings``, and optionally ``selectors`` (default all),
    ``database_url``, ``progress`` and ``clock``. ``drift --remediate`` takes the same."""

    manifests_dir: Path
    settings: Settings
    selectors: NotRequired[Selectors]
    database_url: NotRequired[str | None]
    progress: NotRequired[Progress]
    clock: NotRequired[Clock]


def drift(*, notify: bool = True, **inputs: Unpack[DriftInputs]) -> Plan:
    """Read-only: everything in the database that differs from git, as a plan with prune on.

    Includes edits made outside the reconciler (a row changed by hand shows as an update
    back to the manifest's value) and objects git does not declare. Drift found is sent to
    the ``notify:`` targets subscribed to ``drift`` (unless ``notify`` is False).
    """
    settings = inputs["settings"]
    found = plan(prune=True, **inputs).plan
    # Drift reports; it is not a proposal to apply, so it carries no policy verdict.
    found = dataclasses.replace(found, policy=None)
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
