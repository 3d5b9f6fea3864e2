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
from pathlib import Path

from reconciler.clock import SYSTEM, Clock
from reconciler.commands.applying import ApplyResult, apply
from reconciler.commands.inputs import ALL
from reconciler.commands.planning import drift
from reconciler.model.enums import RiskLevel
from reconciler.model.plan import Change, Plan, Selectors
from reconciler.progress import QUIET, Progress
from reconciler.settings import Settings


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
    manifests_dir: Path,
    settings: Settings,
    selectors: Selectors = ALL,
    max_risk: RiskLevel | None = None,
    actor: str | None = None,
    database_url: str | None = None,
    confirm: Callable[[Plan], bool] | None = None,
    progress: Progress = QUIET,
    environ: Mapping[str, str] | None = None,
    clock: Clock = SYSTEM,
) -> RemediationResult:
    """Find drift and apply the manifests to the tenants whose drift is at most ``max_risk``.

    ``max_risk`` defaults to ``settings.allow_risk``. Raises what :func:`apply` raises
    (policy, approvals, stale state); nothing is written then.
    """
    ceiling = max_risk or settings.allow_risk
    found = drift(
        manifests_dir=manifests_dir,
        settings=settings,
        selectors=selectors,
        database_url=database_url,
        progress=progress,
        clock=clock,
    )
    highest: dict[str, RiskLevel] = {}
    for c in found.changes:
        tenant = c.address.tenant
        highest[tenant] = max(highest.get(tenant, RiskLevel.LOW), c.risk.level)
    tenants = tuple(sorted(t for t, level in highest.items() if level <= ceiling))
    left = tuple(c for c in found.changes if c.address.tenant not in tenants)
    if not tenants:
        return RemediationResult(found, (), None, left)
    applied = apply(
        manifests_dir=manifests_dir,
        settings=settings,
        selectors=replace(selectors, tenants=tenants),
        prune=True,
        actor=actor,
        database_url=database_url,
        confirm=confirm,
        progress=progress,
        environ=environ,
        clock=clock,
        remediation=True,
    )
    return RemediationResult(found, tenants, applied, left)
