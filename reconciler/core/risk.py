"""Risk scoring: one rule table, applied to every change.

Each rule has a stable code, a default level and a message. A change's level is the highest
level among the rules it matches. ``reconciler.yaml`` may raise a rule's level
(``risk.overrides``) but never lower it below the default: :class:`RiskPolicy` enforces that.
Which rule a field's change matches is declared with the field (``model/fields.py``).

The table (code: default level — when it matches):

==========================  ========  ===============================================
code                        level     matches
==========================  ========  ===============================================
CREATE                      LOW       a new object outside production
CREATE_PRODUCTION           MEDIUM    a new object in production
SYNC_INTERVAL               LOW       sync interval changed
FEATURE_TOGGLE              LOW       feature toggles changed
RETRY_POLICY                LOW       webhook retry settings changed
CIRCUIT_BREAKER             LOW       webhook circuit-breaker settings changed
ACTIVATE                    LOW       an object (re)activated
ADOPT_ACCOUNT               LOW       a declared, connected account's token becomes managed
PRIMARY_SWITCH              MEDIUM    which integration is primary changed
SYNC_DIRECTION              MEDIUM    sync direction changed
RULES_CHANGED               MEDIUM    mapping, filter or transform rules changed
ENDPOINT_URL                MEDIUM    webhook endpoint URL changed
EVENTS_CHANGED              MEDIUM    webhook subscribed events changed
WEBHOOK_TYPE                MEDIUM    webhook direction changed
DEACTIVATE                  MEDIUM    an object deactivated outside production
SECRET_CHANGED              HIGH      a secret changed, was added or was removed
AUTH_TYPE_CHANGED           HIGH      webhook auth type changed
DEACTIVATE_PRODUCTION       HIGH      an object deactivated in production
TOKEN_REVOKE                HIGH      an OAuth token revoked (declared revoke)
UNDECLARED_ACCOUNT          HIGH      a connected account no manifest declares any more
UNMANAGED_ACCOUNT           HIGH      a connected account no manifest has ever declared
                                      (revoked only with --revoke-unmanaged)
STRIPE_MODE_MISMATCH        CRITICAL  a Stripe account connected in the other live/test mode
AUTH_DOWNGRADE_NONE         CRITICAL  webhook auth type changed to NONE
DELETE                      CRITICAL  an object deleted (soft delete, with --prune)
==========================  ========  ===============================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from reconciler.model.enums import Environment, RiskLevel
from reconciler.model.fields import AUTH_TYPE, FIELD_RULES
from reconciler.model.plan import (
    Action,
    Address,
    Change,
    FieldChange,
    ResourceKind,
    Risk,
    RiskReason,
)

L, M, H, C = RiskLevel.LOW, RiskLevel.MEDIUM, RiskLevel.HIGH, RiskLevel.CRITICAL

RULES: Mapping[str, tuple[RiskLevel, str]] = {
    "CREATE": (L, "new object"),
    "CREATE_PRODUCTION": (M, "new object in production"),
    "SYNC_INTERVAL": (L, "sync interval changed"),
    "FEATURE_TOGGLE": (L, "feature toggles changed"),
    "RETRY_POLICY": (L, "webhook retry policy changed"),
    "CIRCUIT_BREAKER": (L, "circuit-breaker settings changed"),
    "ACTIVATE": (L, "object activated"),
    "ADOPT_ACCOUNT": (L, "connected account declared: its token becomes managed"),
    "PRIMARY_SWITCH": (M, "primary integration changed"),
    "SYNC_DIRECTION": (M, "sync direction changed"),
    "RULES_CHANGED": (M, "mapping, filter or transform rules changed"),
    "ENDPOINT_URL": (M, "webhook endpoint URL changed"),
    "EVENTS_CHANGED": (M, "subscribed events changed"),
    "WEBHOOK_TYPE": (M, "webhook direction changed"),
    "DEACTIVATE": (M, "object deactivated"),
    "SECRET_CHANGED": (H, "secret changed"),
    "AUTH_TYPE_CHANGED": (H, "webhook authentication type changed"),
    "DEACTIVATE_PRODUCTION": (H, "object deactivated in production"),
    "TOKEN_REVOKE": (H, "OAuth token revoked"),
    "UNDECLARED_ACCOUNT": (H, "connected account not declared in any manifest"),
    "UNMANAGED_ACCOUNT": (H, "connected account no manifest has ever declared"),
    "STRIPE_MODE_MISMATCH": (C, "Stripe account connected in the other live/test mode"),
    "AUTH_DOWNGRADE_NONE": (C, f"webhook authentication removed ({AUTH_TYPE.name} NONE)"),
    "DELETE": (C, "object deleted"),
}


@dataclass(frozen=True, slots=True)
class RiskPolicy:
    """Risk configuration (``reconciler.yaml`` ``risk:`` section).

    Attributes:
        overrides: rule code -> level. Only raises are accepted; see :meth:`create`.
        mass_deletion_max_share: share of a tenant's objects one plan may delete before the
            mass-deletion breaker trips.
        mass_deletion_min_objects: the share rule applies only when at least this many
            objects would be deleted (deleting 1 of 2 objects is not a mass deletion).
        mass_revocation_max_share: share of a tenant's active OAuth tokens one plan may
            revoke (as undeclared or unmanaged accounts) before the mass-revocation breaker
            trips.
        mass_revocation_min_tokens: the share rule applies only when at least this many
            tokens would be revoked.
    """

    overrides: Mapping[str, RiskLevel] = field(default_factory=dict)
    mass_deletion_max_share: float = 0.5
    mass_deletion_min_objects: int = 3
    mass_revocation_max_share: float = 0.5
    mass_revocation_min_tokens: int = 3

    @classmethod
    def create(
        cls,
        overrides: Mapping[str, RiskLevel] | None = None,
        *,
        mass_deletion_max_share: float = 0.5,
        mass_deletion_min_objects: int = 3,
        mass_revocation_max_share: float = 0.5,
        mass_revocation_min_tokens: int = 3,
    ) -> RiskPolicy:
        """Build a policy; raise ``ValueError`` for unknown codes or levels below the default."""
        checked: dict[str, RiskLevel] = {}
        for code, level in (overrides or {}).items():
            if code not in RULES:
                raise ValueError(f"unknown risk rule {code!r}; known: {', '.join(sorted(RULES))}")
            default = RULES[code][0]
            if level < default:
                raise ValueError(
                    f"risk rule {code} may be raised but not lowered below {default.value}"
                )
            checked[code] = level
        if not 0 < mass_deletion_max_share <= 1:
            raise ValueError("mass_deletion.max_share must be in (0, 1]")
        if not 0 < mass_revocation_max_share <= 1:
            raise ValueError("mass_revocation.max_share must be in (0, 1]")
        return cls(
            checked,
            mass_deletion_max_share,
            max(1, mass_deletion_min_objects),
            mass_revocation_max_share,
            max(1, mass_revocation_min_tokens),
        )

    def reason(self, code: str, detail: str = "") -> RiskReason:
        level, message = RULES[code]
        level = max(level, self.overrides.get(code, level))
        return RiskReason(code, level, f"{message}: {detail}" if detail else message)


def _combine(reasons: list[RiskReason]) -> Risk:
    if len(reasons) == 1:  # every create, delete and revocation: nothing to order
        return Risk(reasons[0].level, (reasons[0],))
    unique: dict[str, RiskReason] = {}
    for r in reasons:
        unique.setdefault(r.code, r)
    ordered = tuple(sorted(unique.values(), key=lambda r: (-r.level.rank, r.code)))
    level = max((r.level for r in ordered), default=RiskLevel.LOW)
    return Risk(level, ordered)


def score(
    action: Action,
    kind: ResourceKind,
    environment: Environment | None,
    fields: tuple[FieldChange, ...],
    policy: RiskPolicy,
) -> Risk:
    """Score one change from its action, kind, environment and field changes."""
    production = environment is Environment.PRODUCTION
    reasons: list[RiskReason] = []
    match action:
        case Action.CREATE:
            reasons.append(policy.reason("CREATE_PRODUCTION" if production else "CREATE"))
        case Action.DELETE:
            reasons.append(policy.reason("DELETE"))
        case Action.REVOKE:
            reasons.append(policy.reason("TOKEN_REVOKE"))
        case Action.UPDATE:
            for fc in fields:
                reasons.extend(_field_reasons(fc, production, policy))
        case Action.NOOP:
            pass
        case _:  # pragma: no cover - exhaustive
            raise AssertionError(action)
    return _combine(reasons)


def _field_reasons(fc: FieldChange, production: bool, policy: RiskPolicy) -> list[RiskReason]:
    if fc.sensitive:
        return [policy.reason("SECRET_CHANGED", fc.field)]
    # The field table names the rule; two rules look at the new value too.
    code = FIELD_RULES.get(fc.field)
    if code == "ACTIVATE":
        if fc.after is False:
            return [policy.reason("DEACTIVATE_PRODUCTION" if production else "DEACTIVATE")]
        return [policy.reason("ACTIVATE")]
    if code == "AUTH_TYPE_CHANGED":
        out = [policy.reason("AUTH_TYPE_CHANGED", f"{fc.before} → {fc.after}")]
        if fc.after == "NONE":
            out.append(policy.reason("AUTH_DOWNGRADE_NONE"))
        return out
    return [policy.reason(code, fc.field)] if code else []


def scored_change(
    address: Address,
    action: Action,
    fields: list[FieldChange],
    policy: RiskPolicy,
    *,
    reason: str,
    source: str | None,
    row: tuple[int | None, int | None],
) -> Change:
    """A change of ``fields`` (in field order) with its risk scored under ``policy``.

    ``fields`` are made by :func:`field_change` (equal ones of scalars already shared).
    ``row``: the id and version of the row the change is about
    (:func:`~reconciler.model.fields.row_of`).
    """
    ordered = tuple(sorted(fields, key=_FIELD_NAME))
    risk = _shared(score(action, address.kind, address.environment, ordered, policy))
    return Change(address, action, ordered, risk, reason, source, *row)


_FIELD_NAME = attrgetter("field")

_SHARED: dict[Any, Any] = {}
"""Equal immutable parts of changes (risks, field changes of scalars), one object for all:
an initial load plans hundreds of thousands of changes made of a few thousand distinct
parts. Bounded (cleared when full), so a long-lived process does not grow with it."""
_SHARED_MAX = 1 << 16


def _shared(value: Any, key: Any = None) -> Any:
    """The object equal to ``value`` (under ``key``, default itself) seen before, or
    ``value``, remembered."""
    if key is None:
        key = value
    found = _SHARED.get(key)
    if found is None:
        if len(_SHARED) >= _SHARED_MAX:
            _SHARED.clear()
        found = _SHARED[key] = value
    return found


def field_change(field: str, before: Any, after: Any, sensitive: bool = False) -> FieldChange:
    """``FieldChange(field, before, after, sensitive)``, or the equal one made before when
    both values are scalars: an initial load's million-odd field changes are made of a few
    thousand distinct ones, each then made once instead of once per object."""
    key = field_key(field, sensitive, before, after)
    if key is None:
        return FieldChange(field, before, after, sensitive)
    found: FieldChange | None = _SHARED.get(key)
    if found is None:
        found = _shared(FieldChange(field, before, after, sensitive), key)
    return found


def field_key(field: str, sensitive: bool, before: Any, after: Any) -> tuple[Any, ...] | None:
    """What tells equal field changes of scalars apart, their types included (``True``,
    ``1`` and ``1.0`` are equal but render differently); ``None`` for other values. Also
    keys the audit documents' rendered field changes."""
    if type(before) not in _SCALARS or type(after) not in _SCALARS:
        return None
    return (field, sensitive, type(before), before, type(after), after)


_SCALARS = frozenset({str, int, float, bool, type(None)})
