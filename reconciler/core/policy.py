"""The policy gate: whether a plan may be applied with the permissions given.

Pure: :func:`policy_verdict` reads the plan's judgement (risk levels, tripped breakers) and
returns what apply would refuse and which flag would allow it; :func:`check_policy` raises
on a blocked verdict. ``plan`` records the verdict so a pull request shows "apply will be
blocked" before merge; apply decides with the verdict it derives itself.
"""

from __future__ import annotations

import dataclasses
from typing import NotRequired, TypedDict, Unpack

from reconciler.errors import PolicyViolation
from reconciler.model.enums import RiskLevel
from reconciler.model.plan import MassDeletion, Plan
from reconciler.model.plan_policy import PolicyBlock, PolicyVerdict


class Permissions(TypedDict):
    """What the caller allows (``--allow-risk``, ``--allow-mass-deletion``,
    ``--allow-mass-revocation``), as keyword arguments of :func:`with_policy` and
    :func:`check_policy`; :func:`policy_verdict` names them one by one."""

    allow_risk: RiskLevel
    allow_mass_deletion: bool
    allow_mass_revocation: NotRequired[bool]


def policy_verdict(
    p: Plan,
    *,
    allow_risk: RiskLevel,
    allow_mass_deletion: bool,
    allow_mass_revocation: bool = False,
) -> PolicyVerdict:
    """What apply would refuse in ``p`` under these permissions, and what would allow it."""
    blocks: list[PolicyBlock] = []
    above = [c for c in p.changes if c.risk.level > allow_risk]
    if above:
        needed = max(c.risk.level for c in above).value.lower()
        items = []
        for c in above:
            codes = ", ".join(r.code for r in c.risk.reasons if r.level > allow_risk)
            items.append(f"{c.action.symbol} {c.address} [{c.risk.level.value}: {codes}]")
        blocks.append(
            PolicyBlock(
                PolicyBlock.RISK,
                f"{len(above)} change(s) above the allowed risk {allow_risk.value}",
                f"--allow-risk {needed}",
                tuple(items),
            )
        )
    deletions = [m for m in p.mass_deletions if m.kind != MassDeletion.TOKENS]
    if deletions and not allow_mass_deletion:
        blocks.append(
            PolicyBlock(
                PolicyBlock.MASS_DELETION,
                "mass deletion",
                "--allow-mass-deletion",
                tuple(
                    f"tenant {m.tenant}: "
                    + (
                        "whole tenant removed"
                        if m.whole_tenant
                        else f"{m.deleting} of {m.total} objects"
                    )
                    for m in deletions
                ),
            )
        )
    revocations = [m for m in p.mass_deletions if m.kind == MassDeletion.TOKENS]
    if revocations and not allow_mass_revocation:
        blocks.append(
            PolicyBlock(
                PolicyBlock.MASS_REVOCATION,
                "mass revocation of OAuth tokens",
                "--allow-mass-revocation",
                tuple(
                    f"tenant {m.tenant}: {m.deleting} of {m.total} active tokens"
                    + (" (whole tenant removed)" if m.whole_tenant else "")
                    for m in revocations
                ),
            )
        )
    return PolicyVerdict(allow_risk, allow_mass_deletion, allow_mass_revocation, tuple(blocks))


def with_policy(p: Plan, **permissions: Unpack[Permissions]) -> Plan:
    """``p`` carrying its verdict under these permissions."""
    return dataclasses.replace(p, policy=policy_verdict(p, **permissions))


def rederive_policy(p: Plan) -> tuple[Plan, bool]:
    """A plan read from a file with its verdict derived again from its changes.

    The permissions recorded in the file are kept; the blocks are never taken from the
    file. Returns the plan and whether the recorded blocks differed (the file was edited).
    """
    if p.policy is None:
        return p, False
    fresh = with_policy(
        p,
        allow_risk=p.policy.allow_risk,
        allow_mass_deletion=p.policy.allow_mass_deletion,
        allow_mass_revocation=p.policy.allow_mass_revocation,
    )
    return fresh, fresh.policy != p.policy


def verdict_text(verdict: PolicyVerdict) -> str:
    """One line: ``apply will be blocked: <what> (needs <flag>); ...`` or that it would not."""
    if not verdict.blocked:
        return f"apply is allowed by policy (allowed risk {verdict.allow_risk.value})"
    parts = [f"{b.summary} (needs {b.needs})" for b in verdict.blocks]
    return "apply will be blocked: " + "; ".join(parts)


def check_policy(p: Plan, **permissions: Unpack[Permissions]) -> None:
    """Raise PolicyViolation (exit 4) listing what needs a permission that was not given."""
    verdict = policy_verdict(p, **permissions)
    if not verdict.blocked:
        return
    problems: list[str] = []
    for block in verdict.blocks:
        problems.append(f"{block.summary} (allow with {block.needs}):")
        problems += [f"  {item}" for item in block.items]
    raise PolicyViolation("blocked by policy; nothing written\n" + "\n".join(problems))
