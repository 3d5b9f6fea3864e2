"""The breakers of a plan: too many deletions, or too many token revocations, in one tenant.

Apply refuses a plan with a tripped breaker unless it is allowed (``--allow-mass-deletion``,
``--allow-mass-revocation``); see :class:`~reconciler.model.plan.MassDeletion`.
"""

from __future__ import annotations

from collections import defaultdict

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
    totals: dict[str, int] = defaultdict(int)
    rows: list[ActualIntegration | ActualWebhook] = [*actual.integrations, *actual.webhooks]
    for row in rows:
        if row.deleted_at is None:
            totals[row.tenant_id] += 1
    deleting: dict[str, int] = defaultdict(int)
    for c in changes:
        if c.action is Action.DELETE:
            deleting[c.address.tenant] += 1
    out: list[MassDeletion] = []
    for tenant, count in sorted(deleting.items()):
        total = totals.get(tenant, count)
        whole = tenant not in tenants_with_files
        share_tripped = (
            count >= policy.mass_deletion_min_objects
            and count / total > policy.mass_deletion_max_share
        )
        if whole or share_tripped:
            out.append(MassDeletion(tenant, count, total, whole))
    return tuple(out)


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
    totals: dict[str, int] = defaultdict(int)
    for t in actual.tokens:
        if t.is_active and t.revoked_at is None:
            totals[t.tenant_id] += 1
    revoking: dict[str, int] = defaultdict(int)
    for c in changes:
        if c.action is Action.REVOKE and c.source is None:
            revoking[c.address.tenant] += 1
    out: list[MassDeletion] = []
    for tenant, count in sorted(revoking.items()):
        total = totals.get(tenant, count)
        whole = tenant not in tenants_with_files
        share_tripped = (
            count >= policy.mass_revocation_min_tokens
            and count / total > policy.mass_revocation_max_share
        )
        if whole or share_tripped:
            out.append(MassDeletion(tenant, count, total, whole, kind=MassDeletion.TOKENS))
    return tuple(out)
