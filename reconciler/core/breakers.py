"""The breakers of a plan: too many deletions, or too many token revocations, in one tenant.

Apply refuses a plan with a tripped breaker unless it is allowed (``--allow-mass-deletion``,
``--allow-mass-revocation``); see :class:`~reconciler.model.plan.MassDeletion`.
"""

from __future__ import annotations

from collections import Counter

from reconciler.core.risk import RiskPolicy
from reconciler.model.actual import ActualIntegration, ActualState, ActualWebhook
from reconciler.model.plan import Action, Change, MassDeletion


def mass_deletions(
    changes: list[Change],
    actual: ActualState,
    tenants_with_files: frozenset[str],
    policy: RiskPolicy,
) -> tuple[MassDeletion, ...]:
    """Breakers on deletions of integrations and webhooks, per tenant.

    Trips when a tenant's manifests are all gone, or when more than ``max_share`` of the
    tenant's objects (at least ``min_objects`` of them) would be deleted.
    """
    rows: list[ActualIntegration | ActualWebhook] = [*actual.integrations, *actual.webhooks]
    return _tripped(
        Counter(row.tenant_id for row in rows if row.live),
        Counter(c.address.tenant for c in changes if c.action is Action.DELETE),
        tenants_with_files,
        policy.mass_deletion_min_objects,
        policy.mass_deletion_max_share,
        MassDeletion.OBJECTS,
    )


def mass_revocations(
    changes: list[Change],
    actual: ActualState,
    tenants_with_files: frozenset[str],
    policy: RiskPolicy,
) -> tuple[MassDeletion, ...]:
    """Breakers on token revocations of undeclared accounts, per tenant.

    A revocation a manifest asks for (``revoke:``) is a decision about that account and does
    not count; revocations of accounts no manifest declares (``--prune``) do. Trips when a
    tenant's manifests are all gone, or when more than ``max_share`` of the tenant's active
    tokens (at least ``min_tokens`` of them) would be revoked.
    """
    return _tripped(
        Counter(t.tenant_id for t in actual.tokens if t.live),
        Counter(
            c.address.tenant for c in changes if c.action is Action.REVOKE and c.source is None
        ),
        tenants_with_files,
        policy.mass_revocation_min_tokens,
        policy.mass_revocation_max_share,
        MassDeletion.TOKENS,
    )


def _tripped(
    totals: Counter[str],
    affected: Counter[str],
    tenants_with_files: frozenset[str],
    min_count: int,
    max_share: float,
    kind: str,
) -> tuple[MassDeletion, ...]:
    """A breaker per tenant whose manifests are all gone, or where more than ``max_share``
    of its ``totals`` (and at least ``min_count``) are ``affected``."""
    out: list[MassDeletion] = []
    for tenant, count in sorted(affected.items()):
        total = totals.get(tenant, count)
        whole = tenant not in tenants_with_files
        if whole or (count >= min_count and count / total > max_share):
            out.append(MassDeletion(tenant, count, total, whole, kind))
    return tuple(out)
