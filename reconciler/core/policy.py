"""The policy gate: whether a plan may be applied with the permissions given.

Pure: it reads the plan's judgement (risk levels, tripped breakers) and raises; it writes
nothing and knows nothing of the database.
"""

from __future__ import annotations

from reconciler.errors import PolicyViolation
from reconciler.model.enums import RiskLevel
from reconciler.model.plan import MassDeletion, Plan


def check_policy(
    p: Plan,
    *,
    allow_risk: RiskLevel,
    allow_mass_deletion: bool,
    allow_mass_revocation: bool = False,
) -> None:
    """Raise PolicyViolation (exit 4) listing what needs a permission that was not given."""
    problems: list[str] = []
    above = [c for c in p.changes if c.risk.level > allow_risk]
    for c in above:
        codes = ", ".join(r.code for r in c.risk.reasons if r.level > allow_risk)
        problems.append(f"  {c.action.symbol} {c.address} [{c.risk.level.value}: {codes}]")
    if above:
        needed = max(c.risk.level for c in above).value.lower()
        problems.insert(
            0,
            f"{len(above)} change(s) above the allowed risk "
            f"{allow_risk.value} (allow with --allow-risk {needed}):",
        )
    deletions = [m for m in p.mass_deletions if m.kind != MassDeletion.TOKENS]
    if deletions and not allow_mass_deletion:
        problems.append("mass deletion (allow with --allow-mass-deletion):")
        for m in deletions:
            what = (
                "whole tenant removed" if m.whole_tenant else f"{m.deleting} of {m.total} objects"
            )
            problems.append(f"  tenant {m.tenant}: {what}")
    revocations = [m for m in p.mass_deletions if m.kind == MassDeletion.TOKENS]
    if revocations and not allow_mass_revocation:
        problems.append("mass revocation of OAuth tokens (allow with --allow-mass-revocation):")
        for m in revocations:
            scope = " (whole tenant removed)" if m.whole_tenant else ""
            problems.append(f"  tenant {m.tenant}: {m.deleting} of {m.total} active tokens{scope}")
    if problems:
        raise PolicyViolation("blocked by policy; nothing written\n" + "\n".join(problems))
