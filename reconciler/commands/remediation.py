"""``drift --remediate``: bring drifted objects back to the manifests, through apply.

Drift is everything ``drift`` reports (rows edited outside the reconciler, objects git does
not declare). Remediation applies it with the normal apply path: one transaction under the
apply lock, policy and approvals honoured, audit rows marked ``"remediation": true``. Only
tenants whose drift is all at or below ``max_risk`` are remediated (the selection is by
tenant, so that one transaction writes whole tenants); the rest is reported, and sent to
the ``notify:`` targets as ``drift``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Unpack

from reconciler.commands.applying import ApplyResult, apply
from reconciler.commands.inputs import ALL
from reconciler.commands.planning import DriftInputs, drift
from reconciler.model.enums import RiskLevel
from reconciler.model.plan import Change, Plan


@dataclass(frozen=True, slots=True)
class RemediationResult:
    """What ``drift --remediate`` found and did.

    Attributes:
        drift: the drift found (a plan with prune on).
        tenants: the tenants remediated (all their drift at or below the maximum risk).
        applied: the apply of those tenants, None when there was nothing to remediate.
        left: drift not remediated: changes of tenants with drift above the maximum risk.
    """

    drift: Plan
    tenants: tuple[str, ...]
    applied: ApplyResult | None
    left: tuple[Change, ...]


def remediate(
    *,
    max_risk: RiskLevel | None = None,
    actor: str | None = None,
    confirm: Callable[[Plan], bool] | None = None,
    environ: Mapping[str, str] | None = None,
    **inputs: Unpack[DriftInputs],
) -> RemediationResult:
    """Find drift and apply the manifests to the tenants whose drift is at most ``max_risk``.

    ``inputs`` are those of :func:`drift`. ``max_risk`` defaults to ``settings.allow_risk``.
    Raises what :func:`apply` raises (policy, approvals, stale state); nothing is written
    then.
    """
    ceiling = max_risk or inputs["settings"].allow_risk
    found = drift(**inputs)
    highest: dict[str, RiskLevel] = {}
    for c in found.changes:
        tenant = c.address.tenant
        highest[tenant] = max(highest.get(tenant, RiskLevel.LOW), c.risk.level)
    tenants = tuple(sorted(t for t, level in highest.items() if level <= ceiling))
    left = tuple(c for c in found.changes if c.address.tenant not in tenants)
    if not tenants:
        return RemediationResult(found, (), None, left)
    # Only the remediated tenants: apply writes whole tenants in one transaction.
    inputs["selectors"] = replace(inputs.get("selectors", ALL), tenants=tenants)
    applied = apply(
        prune=True,
        actor=actor,
        confirm=confirm,
        environ=environ,
        remediation=True,
        **inputs,
    )
    return RemediationResult(found, tenants, applied, left)
