"""What apply would refuse in a plan: the verdict recorded with it and the reasons for it.

Part of the plan's JSON form (see ``model/plan.py``); ``core/policy.py`` decides the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.jsonform import json_form
from reconciler.model.enums import RiskLevel


@dataclass(frozen=True, slots=True)
class PolicyBlock:
    """One reason apply would refuse a plan, and the permission that would allow it.

    Attributes:
        kind: ``risk``, ``mass_deletion`` or ``mass_revocation``.
        summary: what is refused, e.g. ``2 change(s) above the allowed risk HIGH``.
        needs: the flag that allows it, e.g. ``--allow-risk critical``.
        items: one line per change or tenant concerned.
    """

    RISK = "risk"
    MASS_DELETION = "mass_deletion"
    MASS_REVOCATION = "mass_revocation"

    kind: str
    summary: str
    needs: str
    items: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return json_form(self, ("kind", "summary", "needs", "items"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PolicyBlock:
        kind = str(d["kind"])
        if kind not in (cls.RISK, cls.MASS_DELETION, cls.MASS_REVOCATION):
            raise ValueError(f"unknown policy block kind {kind!r}")
        return cls(kind, str(d["summary"]), str(d["needs"]), tuple(str(i) for i in d["items"]))


@dataclass(frozen=True, slots=True)
class PolicyVerdict:
    """What apply would refuse, decided when the plan is made (see ``core/policy.py``).

    The permissions are the ones in force for the plan: ``reconciler.yaml`` and the policy
    flags given to ``plan``. A saved verdict is informative only: readers derive it again
    from the plan's changes and these permissions, and apply decides with its own flags.

    Attributes:
        allow_risk: the highest risk level allowed.
        allow_mass_deletion: whether ``--allow-mass-deletion`` was given.
        allow_mass_revocation: whether ``--allow-mass-revocation`` was given.
        blocks: why apply would refuse; empty when it would go ahead.
    """

    allow_risk: RiskLevel
    allow_mass_deletion: bool = False
    allow_mass_revocation: bool = False
    blocks: tuple[PolicyBlock, ...] = ()

    @property
    def blocked(self) -> bool:
        return bool(self.blocks)

    def needs(self) -> list[str]:
        """The flags that would let apply go ahead, e.g. ``["--allow-risk critical"]``."""
        return [b.needs for b in self.blocks]

    def to_dict(self) -> dict[str, Any]:
        return json_form(
            self,
            ("blocked", "allow_risk", "allow_mass_deletion", "allow_mass_revocation", "blocks"),
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PolicyVerdict:
        return cls(
            RiskLevel(d["allow_risk"]),
            bool(d.get("allow_mass_deletion", False)),
            bool(d.get("allow_mass_revocation", False)),
            tuple(PolicyBlock.from_dict(b) for b in d.get("blocks", ())),
        )
