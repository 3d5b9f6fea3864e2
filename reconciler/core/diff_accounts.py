"""The OAuth-account half of :func:`~reconciler.core.diff.diff`: adopt, revoke or report tokens.

A token whose account a manifest declared at some point is *managed*; once its account is no
longer declared it is revoked with ``prune``. A token of an account no manifest has ever
declared is *unmanaged*: reported per tenant and platform, revoked only with
``revoke_unmanaged`` (see the module docstring of ``core/diff.py``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from operator import attrgetter

from reconciler.core.risk import RiskPolicy, field_change, scored_change
from reconciler.model.actual import ActualToken
from reconciler.model.desired import DesiredOAuthAccount
from reconciler.model.enums import Platform
from reconciler.model.fields import LIVEMODE, MANAGED, TOKEN_ACTIVE, row_of
from reconciler.model.plan import (
    Action,
    Address,
    Change,
    Notice,
    NoticeKind,
    ResourceKind,
    Risk,
    RiskReason,
    Selectors,
)

_ACCOUNT_KEY = tuple[str, Platform, str | None]

_livemode = LIVEMODE.read
"""A Stripe account's live mode, declared or connected (``None``: not known)."""

UNMANAGED_LISTED = 5
"""How many unmanaged accounts a summary notice names before "and N more"."""


def diff_accounts(
    desired: Iterable[DesiredOAuthAccount],
    tokens: Iterable[ActualToken],
    policy: RiskPolicy,
    prune: bool,
    sel: Selectors,
    revoke_unmanaged: bool,
) -> tuple[list[Change], list[Notice]]:
    active: dict[_ACCOUNT_KEY, list[ActualToken]] = defaultdict(list)
    ever_managed: set[_ACCOUNT_KEY] = set()
    for t in tokens:
        key0: _ACCOUNT_KEY = (t.tenant_id, t.platform, t.account_id)
        if t.managed and t.account_id is not None:
            # Any token of the account (revoked ones too) proves it was declared once.
            ever_managed.add(key0)
        if t.live:
            active[key0].append(t)
    changes: list[Change] = []
    notices: list[Notice] = []
    declared: set[_ACCOUNT_KEY] = set()
    for d in desired:
        key: _ACCOUNT_KEY = (d.tenant_id, d.platform, d.account_id)
        declared.add(key)
        found = active.get(key, ())
        if len(found) > 1:
            found = sorted(found, key=_token_id)
        if d.revoke_reason is None and found and _settled(d, found):
            continue  # the common case at fleet scale: nothing to change or report
        addr = Address(
            d.tenant_id, d.platform, d.environment, ResourceKind.OAUTH_ACCOUNT, d.account_id
        )
        if d.revoke_reason is not None:
            for t in found:
                changes.append(
                    _revoke(addr, t, f"revoke requested: {d.revoke_reason}", d.source.path, policy)
                )
            continue
        if not found:
            notices.append(
                Notice(
                    NoticeKind.WAITING_FOR_CONNECTION,
                    addr,
                    "declared, waiting for the OAuth connection",
                )
            )
            continue
        for t in found:
            if not t.managed:
                changes.append(_adopt(addr, t, d.source.path, policy))
        expected = _livemode(d)
        if d.platform is Platform.STRIPE and expected is not None:
            for t in found:
                connected = _livemode(t)
                if connected is not None and connected != expected:
                    mode = "live" if connected else "test"
                    notices.append(
                        Notice(
                            NoticeKind.ACCOUNT_MODE_MISMATCH,
                            addr,
                            f"connected in {mode} mode, manifest expects the other mode",
                            policy.reason("STRIPE_MODE_MISMATCH").level,
                        )
                    )
    unmanaged: dict[tuple[str, Platform], list[str]] = defaultdict(list)
    for key, found in active.items():
        tenant, platform, account = key
        if key in declared or not sel.matches(tenant, platform):
            continue
        for t in sorted(found, key=_token_id):
            name = account or f"token-{t.id}"
            addr = Address(tenant, platform, None, ResourceKind.OAUTH_ACCOUNT, name)
            managed = t.managed or key in ever_managed
            if not managed and not revoke_unmanaged:
                unmanaged[(tenant, platform)].append(name)
            elif not managed:
                changes.append(
                    _with_reason(
                        _revoke(
                            addr,
                            t,
                            "unmanaged connected account (--revoke-unmanaged)",
                            None,
                            policy,
                        ),
                        policy.reason("UNMANAGED_ACCOUNT"),
                    )
                )
            elif prune:
                changes.append(
                    _with_reason(
                        _revoke(addr, t, "undeclared connected account (--prune)", None, policy),
                        policy.reason("UNDECLARED_ACCOUNT"),
                    )
                )
            else:
                notices.append(
                    Notice(
                        NoticeKind.UNDECLARED_ACCOUNT,
                        addr,
                        "undeclared connected account (use --prune to revoke its token)",
                        policy.reason("UNDECLARED_ACCOUNT").level,
                    )
                )
    for (tenant, platform), names in unmanaged.items():
        notices.append(_unmanaged_notice(tenant, platform, names))
    return changes, notices


_token_id = attrgetter("id")


def _settled(d: DesiredOAuthAccount, found: Sequence[ActualToken]) -> bool:
    """Whether every token of the declared, connected account ``d`` is managed and, for
    Stripe, connected in the declared mode (or an unknown one): no change, no notice."""
    expected = _livemode(d) if d.platform is Platform.STRIPE else None
    return all(t.managed and (expected is None or _livemode(t) in (None, expected)) for t in found)


def _unmanaged_notice(tenant: str, platform: Platform, names: list[str]) -> Notice:
    """One notice for every unmanaged token of a tenant and platform."""
    listed = ", ".join(names[:UNMANAGED_LISTED])
    if len(names) > UNMANAGED_LISTED:
        listed += f" and {len(names) - UNMANAGED_LISTED} more"
    return Notice(
        NoticeKind.UNMANAGED_ACCOUNTS,
        Address(tenant, platform, None, ResourceKind.OAUTH_ACCOUNT, "*"),
        f"{len(names)} token(s) of accounts no manifest has ever declared, kept ({listed}); "
        "`reconciler import` declares them, `--prune --revoke-unmanaged` revokes them",
    )


def _with_reason(change: Change, extra: RiskReason) -> Change:
    """``change`` with one more risk reason (the level rises to it if higher)."""
    risk = change.risk
    if extra.code in {r.code for r in risk.reasons}:
        return change
    reasons = tuple(sorted((*risk.reasons, extra), key=lambda r: (-r.level.rank, r.code)))
    return replace(change, risk=Risk(max(risk.level, extra.level), reasons))


def _adopt(addr: Address, token: ActualToken, source: str, policy: RiskPolicy) -> Change:
    """Mark a declared, connected account's token as managed (apply records since when)."""
    return scored_change(
        addr,
        Action.UPDATE,
        [field_change(MANAGED, False, True)],
        policy,
        reason=(
            "declared and connected: its token becomes managed (removing the account from "
            "the manifests later revokes it with --prune)"
        ),
        source=source,
        row=row_of(token),
    )


def _revoke(
    addr: Address, token: ActualToken, reason: str, source: str | None, policy: RiskPolicy
) -> Change:
    fields = [field_change(TOKEN_ACTIVE.name, True, False)]
    return scored_change(
        addr,
        Action.REVOKE,
        fields,
        policy,
        reason=reason,
        source=source,
        row=row_of(token),
    )
