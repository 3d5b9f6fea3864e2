"""``approve``: record an approval of a saved plan, bound to the digest of its changes.

The approval is a row of ``plan_approvals`` and, in the same transaction, one ``REVIEW``
audit row per change that needs it (signed with the audit key, in each tenant's chain).
``apply`` counts approvals of the digest it derives itself from the manifests and the
database, so an approval of an edited or outdated plan file never lets a different change
through.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.clock import SYSTEM, Clock, now_utc
from reconciler.commands.planning import plan_digest
from reconciler.context import resolve_actor, user_agent
from reconciler.core.approval import needing_approval, same_person
from reconciler.core.planner import judgement_difference
from reconciler.crypto.audit_key import load_audit_key
from reconciler.errors import ConfigError
from reconciler.model.enums import AuditAction, EntityType, RiskLevel
from reconciler.model.plan import ResourceKind
from reconciler.model.plan_judgement import Judgement, SavedPlan
from reconciler.settings import Settings
from reconciler.store.approvals import Approval, insert_approval
from reconciler.store.audit import AuditContext, AuditEntry, append_audit_entries
from reconciler.store.database import resolve_database_url
from reconciler.store.session import connect

ENTITY = {
    ResourceKind.INTEGRATION: EntityType.INTEGRATION_CONFIG,
    ResourceKind.WEBHOOK: EntityType.WEBHOOK_CONFIGURATION,
    ResourceKind.OAUTH_ACCOUNT: EntityType.OAUTH_TOKEN,
}


@dataclass(frozen=True, slots=True)
class ApprovalResult:
    """A recorded approval and how many audit rows record it."""

    approval: Approval
    audit_rows: int
    gated_changes: int


def approve(
    *,
    saved_plan: SavedPlan,
    settings: Settings,
    approved_by: str | None = None,
    note: str | None = None,
    database_url: str | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Clock = SYSTEM,
) -> ApprovalResult:
    """Approve ``saved_plan``: its digest, by ``approved_by`` (default: the actor).

    Raises:
        ConfigError: the plan has no changes; its recorded judgement does not match its
            changes (an edited file); the approver is the plan's author; or the approver
            already approved this digest.
    """
    env = os.environ if environ is None else environ
    approver = resolve_actor(approved_by, env)
    p = saved_plan.plan
    if not p.changes:
        raise ConfigError("the plan has no changes: nothing to approve")
    difference = judgement_difference(saved_plan.recorded, Judgement.of(p))
    if difference is not None:
        raise ConfigError(
            f"the plan's risk judgement does not match its changes ({difference}); "
            "it was edited: not approved"
        )
    if same_person(approver, p.author):
        raise ConfigError(
            f"the plan was made by {p.author}: a plan must be approved by someone else"
        )
    gated = needing_approval(p, settings.approval_level) or list(p.changes)
    digest = plan_digest(p)
    target = resolve_database_url(database_url)
    key = load_audit_key(target, env, create=True)
    now = now_utc(clock)
    context = AuditContext(
        performed_by=approver,
        ip_address=None,
        user_agent=user_agent(env),
        session_id=str(uuid.uuid4()),
        key=key,
    )
    max_risk = p.max_risk or RiskLevel.LOW
    with connect(database_url, "approve", target) as conn:
        approval = insert_approval(
            conn,
            plan_digest=digest,
            approved_by=approver,
            plan_author=p.author,
            max_risk=max_risk,
            tenants=[c.address.tenant for c in p.changes],
            note=note,
            now=now,
        )
        entries = [
            AuditEntry(
                tenant_id=c.address.tenant,
                entity_type=ENTITY[c.address.kind],
                entity_id=c.row_id,
                entity_address=str(c.address),
                action=AuditAction.REVIEW,
                changes={
                    "approves_plan": digest,
                    "approval_id": approval.id,
                    "decision": "APPROVED",
                    "plan_author": p.author,
                    "action": c.action.value,
                    "note": note,
                },
                risk_level=c.risk.level,
            )
            for c in gated
        ]
        rows = append_audit_entries(conn, entries, context, now=now)
    return ApprovalResult(approval, rows, len(gated))
