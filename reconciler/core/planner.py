"""build_plan: wrap the diff into a frozen, ordered, fingerprinted :class:`Plan`."""

from __future__ import annotations

import hashlib
from functools import partial
from itertools import chain, starmap
from operator import attrgetter

from reconciler.core.diff import diff
from reconciler.core.order import order_changes
from reconciler.core.risk import RiskPolicy
from reconciler.core.settle import Settled
from reconciler.model.actual import ActualState
from reconciler.model.desired import DesiredState
from reconciler.model.plan import Notice, Plan, RowRef, Selectors
from reconciler.model.plan_judgement import Judgement

TABLE_INTEGRATIONS = "integration_configs"
TABLE_WEBHOOKS = "webhook_configurations"
TABLE_TOKENS = "oauth_tokens"


def read_set(actual: ActualState) -> tuple[RowRef, ...]:
    """Every row in ``actual`` with its version, sorted.

    :class:`RowRef`'s own order is the tables in name order, then each table's ``(id,
    version)`` pairs, sorted here as plain tuples (a fleet reads hundreds of thousands of
    rows; comparing dataclasses would call Python per comparison)."""
    tables = (
        (TABLE_INTEGRATIONS, sorted(map(_ROW_VERSION, actual.integrations))),
        (TABLE_TOKENS, sorted(map(_ROW_VERSION, actual.tokens))),
        (TABLE_WEBHOOKS, sorted(map(_ROW_VERSION, actual.webhooks))),
    )
    return tuple(chain.from_iterable(starmap(partial(RowRef, t), rows) for t, rows in tables))


_ROW_VERSION = attrgetter("id", "row_version")


def fingerprint_read_set(refs: tuple[RowRef, ...]) -> str:
    """SHA-256 over the sorted read set: equal iff the same rows at the same versions.

    The lines ``table:id:version`` (:attr:`RowRef.key`) each end in a newline and are
    hashed as one text."""
    lines = [f"{r.table}:{r.id}:{r.row_version}\n" for r in refs]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def build_plan(
    desired: DesiredState,
    actual: ActualState,
    *,
    policy: RiskPolicy,
    created_at: str,
    prune: bool = False,
    selectors: Selectors | None = None,
    revoke_unmanaged: bool = False,
    settled: Settled | None = None,
) -> Plan:
    """Diff, score and order; pure (``created_at`` comes from the caller's clock).

    ``settled``: declared objects left out of ``desired`` because they are stored exactly as
    declared (:func:`~reconciler.core.settle.settle`)."""
    sel = selectors or Selectors()
    result = diff(
        desired,
        actual,
        policy=policy,
        prune=prune,
        selectors=sel,
        revoke_unmanaged=revoke_unmanaged,
        settled=settled,
    )
    refs = read_set(actual)
    notices = tuple(sorted(result.notices, key=lambda n: (str(n.address), n.kind.value)))
    return Plan(
        created_at=created_at,
        manifests_digest=desired.manifests_digest,
        actual_fingerprint=fingerprint_read_set(refs),
        changes=order_changes(result.changes),
        read_set=refs,
        notices=_dedupe(notices),
        mass_deletions=result.mass_deletions,
        selectors=sel,
        prune=prune,
    )


def _dedupe(notices: tuple[Notice, ...]) -> tuple[Notice, ...]:
    seen: set[tuple[str, str, str]] = set()
    out: list[Notice] = []
    for n in notices:
        key = (str(n.address), n.kind.value, n.message)
        if key not in seen:
            seen.add(key)
            out.append(n)
    return tuple(out)


def judgement_difference(recorded: Judgement, derived: Judgement) -> str | None:
    """The first way a recorded judgement differs from the derived one, in words, or None.

    Apply never trusts the risk written into a saved plan: it derives the judgement from
    the changes again and refuses a plan whose record disagrees (it was edited, or made
    under another risk policy).
    """
    if len(recorded.changes) != len(derived.changes):
        return f"{len(recorded.changes)} change(s) recorded, {len(derived.changes)} derived"
    for (address, level, review, reasons), (_, d_level, d_review, d_reasons) in zip(
        recorded.changes, derived.changes, strict=True
    ):
        if level != d_level:
            return f"{address}: risk {level} recorded, {d_level} derived"
        if review != d_review:
            return f"{address}: requires_review {review} recorded, {d_review} derived"
        if reasons != d_reasons:
            codes = ", ".join(code for code, _ in reasons) or "none"
            d_codes = ", ".join(code for code, _ in d_reasons) or "none"
            return f"{address}: risk reasons [{codes}] recorded, [{d_codes}] derived"
    if recorded.mass_deletions != derived.mass_deletions:
        tenants = sorted(
            {m[0] for m in derived.mass_deletions} ^ {m[0] for m in recorded.mass_deletions}
        )
        which = ", ".join(tenants) if tenants else "breaker counts"
        return f"mass deletions differ ({which})"
    if recorded.by_risk != derived.by_risk or recorded.requires_review != derived.requires_review:
        return "the summary's risk counts differ from its changes"
    return None
