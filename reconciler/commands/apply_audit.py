"""What ``apply`` writes beside the changes: the ``apply_runs`` row and one audit row each."""

from __future__ import annotations

import contextlib
import multiprocessing
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, overload

from reconciler.clock import SYSTEM, Clock, now_utc
from reconciler.commands.planning import plan_digest
from reconciler.context import DIRTY_SUFFIX
from reconciler.core.approval import Authorization
from reconciler.core.risk import field_key
from reconciler.crypto.aead import FieldCipher
from reconciler.gitrevision import RevisionTree
from reconciler.model.desired import DesiredState
from reconciler.model.enums import AuditAction, EntityType, RiskLevel
from reconciler.model.plan import Action, Change, FieldChange, Plan, ResourceKind, RiskReason
from reconciler.store.audit import (
    AuditContext,
    AuditEntry,
    append_audit_entries,
    render_documents,
)
from reconciler.store.jsonb_text import RenderedJson, jsonb_text
from reconciler.store.runs import insert_apply_run
from reconciler.store.session import Connection
from reconciler.store.write import (
    PreparedWrites,
    WriteContext,
    WrittenChange,
    prepare_writes,
    write_changes,
    write_order,
)

_ENTITY = {
    ResourceKind.INTEGRATION: EntityType.INTEGRATION_CONFIG,
    ResourceKind.WEBHOOK: EntityType.WEBHOOK_CONFIGURATION,
    ResourceKind.OAUTH_ACCOUNT: EntityType.OAUTH_TOKEN,
}


def audit_extra(
    auth: Authorization,
    tree: RevisionTree | None,
    remediation: bool,
    allow_risk: RiskLevel | None,
) -> dict[str, Any]:
    """What the audit rows of this apply record beyond the change itself."""
    extra: dict[str, Any] = {}
    if auth.needed:
        extra["authorization"] = {
            **auth.to_dict(),
            "allow_risk": allow_risk.value if allow_risk else None,
        }
    if tree is not None:
        extra["revision"] = {"revision": tree.revision, "commit": tree.commit}
    if remediation:
        extra["remediation"] = True
    return extra


class ForkedPlanWork:
    """What a large apply computes from its plan alone, done by a forked process beside
    this one: the plan's digest, and the rendered documents of its audit rows.

    Each is seconds of JSON encoding on one core for a fleet-wide plan, while this process
    has the writes' secrets to encrypt. :meth:`start` forks a process that inherits the plan
    (nothing of it is sent) and begins the digest; :meth:`documents` asks the same process
    for the documents, with the audit extras (known only once the plan is authorized). Only
    texts come back: the digest, and documents that hold no secret (they are checked for
    one where they are rendered). If that process cannot be made or fails in any way, the
    same texts are made here. Use it as a context manager (it waits for the process on
    leaving).

    Approvals need a plan's digest only when some change needs approval; the ``apply_runs``
    row always does.
    """

    def __init__(self) -> None:
        self._known: dict[int, tuple[Plan, str | Future[str]]] = {}
        self._pools: dict[int, tuple[Plan, ProcessPoolExecutor]] = {}

    def start(self, p: Plan) -> None:
        """Fork the process for ``p``, if ``p`` is large enough to be worth a fork, and begin
        its digest. Call it when this process will not fork any more (its own loading
        workers are not forked while this process runs)."""
        if (
            self._find(p) is not None
            or len(p.changes) < FORK_MIN_CHANGES
            or "fork" not in multiprocessing.get_all_start_methods()
        ):
            return
        try:
            pool = ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_inherit,
                initargs=(p,),
            )
            self._pools[id(p)] = (p, pool)
            self._known[id(p)] = (p, pool.submit(_inherited_digest))
        except (OSError, RuntimeError):
            return  # computed here when asked

    def of(self, p: Plan) -> str:
        """The digest of ``p`` (waits for the process computing it, if any)."""
        known = self._find(p)
        if isinstance(known, str):
            return known
        digest = None
        if known is not None:
            # A broken worker (killed, out of memory): the digest is computed here instead.
            with contextlib.suppress(Exception):
                digest = known.result()
        if digest is None:
            digest = plan_digest(p)
        self._known[id(p)] = (p, digest)
        return digest

    def documents(self, p: Plan, extra: Mapping[str, Any]) -> Callable[[], list[tuple[str, str]]]:
        """Begin rendering the documents of ``p``'s audit rows (:func:`render_plan_documents`)
        in ``p``'s process, if it has one; returns the function that waits for them (or
        renders them here: the same texts, and the same errors). Without a process, they
        are rendered here and now."""
        extra = dict(extra)
        known = self._pools.get(id(p))
        future: Future[list[tuple[str, str]]] | None = None
        if known is not None and known[0] is p:
            with contextlib.suppress(Exception):  # a broken pool: rendered here
                future = known[1].submit(_inherited_documents, extra)
        if future is None:
            # No process of its own (a small plan): rendered now, before the transaction.
            here = render_plan_documents(p, extra)
            return lambda: here

        def rendered() -> list[tuple[str, str]]:
            with contextlib.suppress(Exception):
                return future.result()
            return render_plan_documents(p, extra)

        return rendered

    def _find(self, p: Plan) -> str | Future[str] | None:
        known = self._known.get(id(p))
        return known[1] if known is not None and known[0] is p else None

    def __enter__(self) -> ForkedPlanWork:
        return self

    def __exit__(self, *exc: object) -> None:
        for _, pool in self._pools.values():
            pool.shutdown(wait=True, cancel_futures=True)


FORK_MIN_CHANGES = 20_000
"""Plans with fewer changes have their digest and documents made in this process (well
under a second each)."""


class _Inherited:
    """The plan of a forked plan process: set by its initializer from the forked memory."""

    plan: Plan | None = None


def _inherit(p: Plan) -> None:
    _Inherited.plan = p


def _inherited_digest() -> str:
    assert _Inherited.plan is not None, "plan process started without its plan"
    return plan_digest(_Inherited.plan)


def _inherited_documents(extra: Mapping[str, Any]) -> list[tuple[str, str]]:
    assert _Inherited.plan is not None, "plan process started without its plan"
    return render_plan_documents(_Inherited.plan, extra)


def render_plan_documents(p: Plan, extra: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The rendered ``changes`` and ``risk_reasons`` of each audit row of ``p``, in the order
    its changes are written (:func:`write_order`)."""
    # One entry at a time: each one's dicts live only while its texts are rendered.
    return render_documents(_audit_entry(c, c.row_id, extra) for c in write_order(p.changes))


@dataclass(frozen=True, slots=True)
class PreparedApply:
    """What an apply writes, made before its transaction (:func:`prepare_apply`): the rows
    of the creates and updates with their secrets encrypted, and the audit rows' documents
    rendered (for a large plan, by the forked plan process: they may still be in the making
    while the transaction writes the changes, which takes longer, and are waited for only
    when the audit rows are). The transaction then spends its time (and holds its locks) on
    the database's work; it uses these only for the very plan and audit extras they were
    made for (a plan made again under the lock is prepared there).

    Attributes:
        plan: the plan they were made for.
        extra: the audit extras they were made with.
        writes: the rows of the writes.
        order: the changes in the order they are written (and audited).
        documents: waits for (or makes) the rendered ``changes`` and ``risk_reasons`` of
            each change's audit row, in that order (the entries themselves are made again
            under the lock, once the ids of created rows are known: keeping them all would
            cost more memory than making them costs time).
    """

    plan: Plan
    extra: Mapping[str, Any]
    writes: PreparedWrites
    order: list[Change]
    documents: Callable[[], list[tuple[str, str]]]


def prepare_apply(
    p: Plan,
    desired: DesiredState,
    cipher: FieldCipher,
    extra: Mapping[str, Any],
    forked: ForkedPlanWork,
) -> PreparedApply:
    """Encrypt and render everything ``p``'s writes need that does not need the database.

    If ``forked`` has a process for ``p``, the audit documents are rendered there while
    this one encrypts (and after: see :class:`PreparedApply`); otherwise here, now."""
    documents = forked.documents(p, extra)  # first: that process renders while this encrypts
    return PreparedApply(
        plan=p,
        extra=dict(extra),
        writes=prepare_writes(p.changes, desired, cipher),
        order=write_order(p.changes),
        documents=documents,
    )


def write_and_audit(
    conn: Connection,
    p: Plan,
    desired: DesiredState,
    cipher: FieldCipher,
    context: AuditContext,
    started: datetime,
    clock: Clock = SYSTEM,
    dirty: bool | None = None,
    extra: Mapping[str, Any] | None = None,
    on_written: Callable[[int], None] | None = None,
    digest_of: Callable[[Plan], str] = plan_digest,
    prepared: PreparedApply | None = None,
) -> Counter[str]:
    """Write the changes, the apply_runs row and one audit row per change; return counts.

    ``on_written`` is told the rows written: per table group, then the audit rows.
    ``digest_of``: makes ``p``'s digest (:func:`plan_digest`, or the caller's memo of it,
    asked for once the changes are written: it may still be in the making).
    ``prepared``: :func:`prepare_apply` of ``p`` with the same ``extra``, made beforehand."""
    now = now_utc(clock)
    if prepared is not None and (prepared.plan is not p or prepared.extra != dict(extra or {})):
        prepared = None
    written = write_changes(
        conn,
        p.changes,
        desired,
        WriteContext(now, context.performed_by, cipher),
        on_written,
        prepared.writes if prepared is not None else None,
    )
    counts = Counter(w.change.action.value for w in written)
    assert context.apply_run_id is not None
    insert_apply_run(
        conn,
        run_id=context.apply_run_id,
        started=started,
        actor=context.performed_by,
        git_commit=(context.git_commit or "").removesuffix(DIRTY_SUFFIX) or None,
        manifests_digest=desired.manifests_digest,
        plan_digest=digest_of(p),
        counts=counts,
        user_agent=context.user_agent,
        git_dirty=dirty,
    )
    if (
        prepared is not None
        and len(written) == len(prepared.order)
        and all(w.change is c for w, c in zip(written, prepared.order, strict=True))
    ):
        # The ids of created rows are known now; the documents do not depend on them.
        documents = prepared.documents()
    else:
        # Rendered one entry at a time: each one's dicts live only while it is rendered.
        documents = render_documents(_audit_entry(w.change, w.entity_id, extra) for w in written)
    entries = _AuditEntries(written, extra)
    append_audit_entries(
        conn, entries, context, now=now, documents=documents, tenants=entries.tenants()
    )
    if on_written is not None:
        on_written(len(written))
    return counts


class _AuditEntries(Sequence[AuditEntry]):
    """The audit entries of written changes, made when asked: the audit rows are signed a
    batch at a time while the database inserts the batch before, and each batch's entries
    are made with it (not all of them first, with the database idle).

    The documents are rendered beforehand, so each entry's changes and risk reasons are
    views of its change: a dict of every field per row would cost more memory than anything
    else the apply holds.
    """

    __slots__ = ("_extra", "_written")

    def __init__(self, written: Sequence[WrittenChange], extra: Mapping[str, Any] | None) -> None:
        self._written = written
        self._extra = extra

    def tenants(self) -> set[str]:
        """The tenants of the entries (without making them)."""
        return {w.change.address.tenant for w in self._written}

    @overload
    def __getitem__(self, index: int) -> AuditEntry: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[AuditEntry]: ...

    def __getitem__(self, index: int | slice) -> AuditEntry | Sequence[AuditEntry]:
        extra = self._extra
        if isinstance(index, slice):
            return [
                _audit_entry(w.change, w.entity_id, extra, lazy=True) for w in self._written[index]
            ]
        w = self._written[index]
        return _audit_entry(w.change, w.entity_id, extra, lazy=True)

    def __len__(self) -> int:
        return len(self._written)


class _ChangesView(Mapping[str, Any]):
    """An audit row's ``changes`` (the fields, the reason, the extras), read from the change
    when asked: the same mapping as the dict :func:`_audit_entry` builds, without holding one
    per row."""

    __slots__ = ("_change", "_extra")

    def __init__(self, change: Change, extra: Mapping[str, Any]) -> None:
        self._change = change
        self._extra = extra

    def __getitem__(self, key: str) -> Any:
        if key in self._extra:
            return self._extra[key]
        if key == "fields":
            return [f.to_dict() for f in self._change.fields]
        if key == "reason":
            return self._change.reason
        return self._extra[key]

    def __iter__(self) -> Iterator[str]:
        yield "fields"
        yield "reason"
        yield from (k for k in self._extra if k not in ("fields", "reason"))

    def __len__(self) -> int:
        return 2 + sum(1 for k in self._extra if k not in ("fields", "reason"))


class _ReasonsView(Sequence[Mapping[str, Any]]):
    """An audit row's ``risk_reasons``, read from the change's risk when asked (as
    :class:`_ChangesView`)."""

    __slots__ = ("_reasons",)

    def __init__(self, reasons: tuple[RiskReason, ...]) -> None:
        self._reasons = reasons

    @overload
    def __getitem__(self, index: int) -> Mapping[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Mapping[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [r.to_dict() for r in self._reasons[index]]
        return self._reasons[index].to_dict()

    def __len__(self) -> int:
        return len(self._reasons)


def _audit_entry(
    c: Change, entity_id: int | None, extra: Mapping[str, Any] | None = None, *, lazy: bool = False
) -> AuditEntry:
    changes: Mapping[str, Any] = (
        _ChangesView(c, extra or {})
        if lazy
        else {"fields": [_field_json(f) for f in c.fields], "reason": c.reason, **(extra or {})}
    )
    reasons: Sequence[Any] = (
        _ReasonsView(c.risk.reasons) if lazy else [_reason_json(r) for r in c.risk.reasons]
    )
    return AuditEntry(
        tenant_id=c.address.tenant,
        entity_type=_ENTITY[c.address.kind],
        entity_id=entity_id,
        entity_address=str(c.address),
        action=_AUDIT_ACTIONS[c.action],
        changes=changes,
        risk_level=c.risk.level,
        risk_reasons=reasons,
        requires_review=c.risk.requires_review,
        source_path=c.source,
    )


def _field_json(f: FieldChange) -> Any:
    """``f`` for an audit document: rendered once for all the changes that share it (most
    field changes of a fleet-wide apply are one of a few thousand), else as a dict."""
    key = field_key(f.field, f.sensitive, f.before, f.after)
    if key is None or type(f.before) is float or type(f.after) is float:
        # A mapping, a list or a float: rendered (and checked) in place, so that NaN is
        # refused with its entry named.
        return f.to_dict()
    found = _RENDERED.get(key)
    if found is None:
        found = _remember(key, RenderedJson(jsonb_text(f.to_dict())))
    return found


def _reason_json(r: RiskReason) -> RenderedJson:
    """``r`` for an audit document, rendered once for all the changes that share it."""
    key = (r.code, r.level, r.message)
    found = _RENDERED.get(key)
    if found is None:
        found = _remember(key, RenderedJson(jsonb_text(r.to_dict())))
    return found


def _remember(key: tuple[Any, ...], text: RenderedJson) -> RenderedJson:
    if len(_RENDERED) >= _RENDERED_MAX:
        _RENDERED.clear()
    _RENDERED[key] = text
    return text


_RENDERED: dict[tuple[Any, ...], RenderedJson] = {}
"""Audit parts by their values and the types of those (``True == 1``, but they print apart).
Bounded: a long-lived process does not grow with it."""
_RENDERED_MAX = 1 << 16


_AUDIT_ACTIONS = {
    Action.CREATE: AuditAction.CREATE,
    Action.UPDATE: AuditAction.UPDATE,
    Action.DELETE: AuditAction.DELETE,
    Action.REVOKE: AuditAction.REVOKE,
}
"""What the audit row of each written action records (a no-op is never written)."""
