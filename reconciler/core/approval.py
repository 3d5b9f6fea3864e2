"""Which changes of a plan need approval, and which approvals count (pure).

A plan with changes at or above the approval level (``reconciler.yaml`` ``approval.level``,
default CRITICAL) applies only with enough approvals of the digest of its changes, each from
a person who is neither the plan's author nor the one applying it, nor (as the approval
recorded it) the author of the plan that was approved. ``--allow-risk`` still lets it
through without them: break-glass, recorded as such.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from reconciler.model.enums import RiskLevel
from reconciler.model.plan import Change, Plan


def same_person(a: str | None, b: str | None) -> bool:
    """Whether two actor names are one person as people read them ("Root " is "root")."""
    if a is None or b is None:
        return False
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def needing_approval(plan: Plan, level: RiskLevel) -> list[Change]:
    """The changes at or above ``level``."""
    return [c for c in plan.changes if c.risk.level >= level]


@dataclass(frozen=True, slots=True)
class Authorization:
    """How an apply of changes needing approval was authorized.

    Attributes:
        needed: how many approvals were needed (0: no change needed any).
        approvers: the people whose approvals counted, in order.
        approval_ids: their approval rows.
        refused: approvers that did not count, with why (e.g. the plan's author).
        break_glass: applied without enough approvals, by ``--allow-risk``.
    """

    needed: int
    approvers: tuple[str, ...] = ()
    approval_ids: tuple[int, ...] = ()
    refused: tuple[tuple[str, str], ...] = ()
    break_glass: bool = False

    @property
    def approved(self) -> bool:
        return self.needed > 0 and len(self.approvers) >= self.needed

    def to_dict(self) -> dict[str, object]:
        return {
            "approvals_needed": self.needed,
            "approved_by": list(self.approvers),
            "approval_ids": list(self.approval_ids),
            "break_glass": self.break_glass,
        }


def count_approvals(
    approvals: Iterable[tuple[int, str, str | None]],
    *,
    needed: int,
    author: str | None,
    performer: str,
) -> Authorization:
    """The approvals that count among ``(id, approved_by, plan_author)`` rows of one digest.

    Distinct people only; never the plan's author, the approval's recorded plan author, nor
    the one applying.
    """
    approvers: list[str] = []
    ids: list[int] = []
    refused: list[tuple[str, str]] = []
    for approval_id, by, recorded_author in approvals:
        if same_person(by, author) or same_person(by, recorded_author):
            refused.append((by, "the plan's author"))
        elif same_person(by, performer):
            refused.append((by, "the one applying"))
        elif any(same_person(by, seen) for seen in approvers):
            continue
        else:
            approvers.append(by)
            ids.append(approval_id)
    return Authorization(needed, tuple(approvers), tuple(ids), tuple(refused))


def approval_message(
    gated: Sequence[Change], auth: Authorization, level: RiskLevel, author: str | None
) -> str:
    """Why an apply is refused for want of approvals (the PolicyViolation text)."""
    lines = [
        f"blocked: {len(gated)} change(s) at or above {level.value} need {auth.needed} "
        f"approval(s) from someone other than the plan's author"
        + (f" ({author})" if author else "")
        + f"; {len(auth.approvers)} found; nothing written",
    ]
    lines += [f"  {c.action.symbol} {c.address} [{c.risk.level.value}]" for c in gated]
    lines += [f"  not counted: approval by {by} ({why})" for by, why in auth.refused]
    highest = max(c.risk.level for c in gated).value.lower()
    lines.append(
        "approve with `reconciler approve PLAN --by NAME` (someone else), or break glass "
        f"with --allow-risk {highest} (recorded as such)"
    )
    return "\n".join(lines)
