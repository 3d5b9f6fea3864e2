"""diff(desired, actual) -> changes: the pure comparison of manifests with the database.

Identity (README, "What a plan contains"): integration ``(tenant, platform, environment,
config_type)``, webhook ``(tenant, platform, environment, name)``, OAuth account ``(tenant,
platform, account id)``. Only reconciled fields (``model/fields.py``) are compared, so runtime-owned
columns can never show up as a difference. Secrets are compared by keyed fingerprint, so a
manifest re-encrypted with the same values (``sops updatekeys``) shows no change. A stored
secret the store could not prove to be its fingerprint's value (``ActualIntegration.doubted``:
a ciphertext replayed or swapped in the database, or the unbound legacy form) shows as
changed even when the fingerprints agree, with the reason in the change, so ``apply``
rewrites it from the manifest.

Objects in the database that no manifest declares are deleted only with ``prune``; without
it they are reported as notices ("kept"). Soft-deleted rows are treated as absent: declaring
one again plans a create that restores the row.

OAuth tokens: a token whose account a manifest declared at some point (``managed_since`` set
on it, or on another token of the same account) is *managed*; once its account is no
longer declared it is an undeclared account, revoked with ``prune``. A token whose account
no manifest has ever declared is *unmanaged* (typically written by the application before
adoption): one notice per tenant and platform lists them, and only ``revoke_unmanaged``
(with ``prune``) revokes them. A declared, connected account whose tokens are not marked yet
gets a LOW update (``managed: false -> true``) that apply records in ``managed_since``.
Token revocations of undeclared accounts have their own breaker, like mass deletions.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from operator import attrgetter
from typing import Any

from reconciler.core.risk import RiskPolicy, score
from reconciler.model.actual import (
    ActualIntegration,
    ActualState,
    ActualToken,
    ActualWebhook,
    SecretDoubt,
)
from reconciler.model.desired import (
    DesiredIntegration,
    DesiredOAuthAccount,
    DesiredState,
    DesiredWebhook,
    SecretValue,
)
from reconciler.model.enums import Platform
from reconciler.model.fields import (
    INTEGRATION_FIELDS,
    MANAGED,
    WEBHOOK_FIELDS,
    FieldSpec,
    Kind,
    attribute_path,
    call,
    compile_record,
    identity_of,
    plain_of,
    secrets_of,
)
from reconciler.model.plan import (
    SENSITIVE_MASK,
    Action,
    Address,
    Change,
    FieldChange,
    MassDeletion,
    Notice,
    NoticeKind,
    ResourceKind,
    Risk,
    RiskReason,
    Selectors,
)


@dataclass(frozen=True, slots=True)
class DiffResult:
    """Unordered output of :func:`diff`; ``core.order`` sorts it and ``core.planner`` wraps it."""

    changes: tuple[Change, ...]
    notices: tuple[Notice, ...]
    mass_deletions: tuple[MassDeletion, ...]


def diff(
    desired: DesiredState,
    actual: ActualState,
    *,
    policy: RiskPolicy,
    prune: bool = False,
    selectors: Selectors | None = None,
    revoke_unmanaged: bool = False,
) -> DiffResult:
    """Compare desired with actual state (both already restricted to ``selectors``).

    ``revoke_unmanaged`` (effective only with ``prune``) also revokes tokens of accounts no
    manifest has ever declared.
    """
    sel = selectors or Selectors()
    changes: list[Change] = []
    notices: list[Notice] = []
    accounts = _diff_accounts(
        desired.oauth_accounts, actual.tokens, policy, prune, sel, prune and revoke_unmanaged
    )
    for result in (
        _diff_objects(_INTEGRATIONS, desired.integrations, actual.integrations, policy, prune, sel),
        _diff_objects(_WEBHOOKS, desired.webhooks, actual.webhooks, policy, prune, sel),
        accounts,
    ):
        changes.extend(result[0])
        notices.extend(result[1])
    breakers = _mass_deletions(changes, actual, desired.tenants, policy)
    breakers += _mass_revocations(changes, actual, desired.tenants, policy)
    return DiffResult(tuple(changes), tuple(notices), breakers)


# -- values ------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A display/JSON form of a field value (enums as their labels, tuples as lists)."""
    if isinstance(value, enum.Enum):
        return value.value
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _secret_fp(secret: SecretValue | None, where: str) -> str | None:
    if secret is None:
        return None
    if secret.fingerprint is None:
        raise ValueError(f"{where}: secret was not decrypted; plans need decrypted manifests")
    return secret.fingerprint


def _secret_change(
    name: str, before_fp: str | None, after_fp: str | None, doubt: SecretDoubt | None
) -> FieldChange | None:
    if before_fp == after_fp and doubt is None:
        return None
    return FieldChange(
        name,
        # A doubted secret has something stored (a ciphertext, a fingerprint or both).
        SENSITIVE_MASK if before_fp or doubt is not None else None,
        SENSITIVE_MASK if after_fp else None,
        sensitive=True,
    )


_DOUBT_TEXT = {
    SecretDoubt.MISMATCH: (
        "does not match its fingerprint (replayed, swapped or edited in the database); "
        "apply rewrites it from the manifest"
    ),
    SecretDoubt.LEGACY: (
        "is in the legacy rcn1 form, not bound to its fingerprint; apply rewrites it "
        "(or `reconciler keys rotate` upgrades it)"
    ),
}


def _update_reason(fields: list[FieldChange], doubted: Mapping[str, SecretDoubt]) -> str:
    """Why an update: the manifest differs, and/or stored secrets are doubted."""
    named = {f.field for f in fields}
    notes = [f"stored {n} {_DOUBT_TEXT[d]}" for n, d in sorted(doubted.items()) if n in named]
    if not notes:
        return "manifest differs"
    differs = any(f.field not in doubted for f in fields)
    return "; ".join((["manifest differs"] if differs else []) + notes)


def _field_changes(
    before: Mapping[str, Any], after: Mapping[str, Any], set_like: frozenset[str] = frozenset()
) -> list[FieldChange]:
    out: list[FieldChange] = []
    for name, new in after.items():
        old = before.get(name)
        if name in set_like:
            if set(old or ()) == set(new or ()):
                continue
        # Plain equality first: it is the common case at fleet scale and needs no copies.
        elif (old == new and type(old) is type(new)) or _plain(old) == _plain(new):
            continue
        out.append(FieldChange(name, _plain(old), _plain(new)))
    return out


_COMPARED_AS: Mapping[Kind, str] = {Kind.JSON: "dict", Kind.LIST: "list", Kind.FLOAT: "float"}
"""How a value is compared when its model type is not the plain one (mappings, tuples)."""


def _values_of(fields: tuple[FieldSpec, ...], desired: bool) -> Callable[[Any], dict[str, Any]]:
    """The reconciled non-secret values of a desired (or actual) object, by field name."""
    return compile_record(
        [
            (
                f.name,
                call(
                    _COMPARED_AS.get(f.kind, ""),
                    attribute_path(f.desired_path if desired else f.name),
                ),
            )
            for f in plain_of(fields)
        ]
    )


def _created_fields(
    values: Mapping[str, Any], secrets: Mapping[str, str | None]
) -> list[FieldChange]:
    out = [FieldChange(k, None, _plain(v)) for k, v in values.items() if v not in (None, {}, [])]
    out += [FieldChange(k, None, SENSITIVE_MASK, True) for k, fp in secrets.items() if fp]
    return out


def _deleted_fields(
    values: Mapping[str, Any], secrets: Mapping[str, str | None]
) -> list[FieldChange]:
    out = [FieldChange(k, _plain(v), None) for k, v in values.items() if v not in (None, {}, [])]
    out += [FieldChange(k, SENSITIVE_MASK, None, True) for k, fp in secrets.items() if fp]
    return out


# -- integrations and webhooks ---------------------------------------------------------------


def _make_change(
    address: Address,
    action: Action,
    fields: list[FieldChange],
    policy: RiskPolicy,
    *,
    reason: str,
    source: str | None,
    row_id: int | None,
    row_version: int | None,
) -> Change:
    ordered = tuple(sorted(fields, key=lambda f: f.field))
    risk = score(action, address.kind, address.environment, ordered, policy)
    return Change(address, action, ordered, risk, reason, source, row_id, row_version)


@dataclass(frozen=True, slots=True)
class _Kind:
    """How one kind of configuration object is identified and compared (from the field table)."""

    kind: ResourceKind
    name: Callable[[Any], str]
    """The last part of the address (config type or webhook name)."""
    desired_values: Callable[[Any], dict[str, Any]]
    actual_values: Callable[[Any], dict[str, Any]]
    """Reconciled non-secret fields of desired and actual objects."""
    secrets: tuple[tuple[str, Callable[[Any], Any], Callable[[Any], Any]], ...]
    """(field, desired getter, actual fingerprint getter) of each secret."""
    set_like: frozenset[str] = frozenset()
    """Fields compared as sets (order carries no meaning)."""

    @classmethod
    def of(cls, kind: ResourceKind, fields: tuple[FieldSpec, ...]) -> _Kind:
        last = identity_of(fields)[-1]
        label = attrgetter(f"{last.name}.value" if last.kind is Kind.ENUM else last.name)
        return cls(
            kind,
            label,
            _values_of(fields, desired=True),
            _values_of(fields, desired=False),
            tuple(
                (f.name, f.read_desired, attrgetter(f.fingerprint_column))
                for f in secrets_of(fields)
            ),
            frozenset(f.name for f in fields if f.set_like),
        )


_INTEGRATIONS = _Kind.of(ResourceKind.INTEGRATION, INTEGRATION_FIELDS)
_WEBHOOKS = _Kind.of(ResourceKind.WEBHOOK, WEBHOOK_FIELDS)


def _address(spec: _Kind, obj: Any) -> Address:
    return Address(obj.tenant_id, obj.platform, obj.environment, spec.kind, spec.name(obj))


def _diff_objects(
    spec: _Kind,
    desired: Iterable[DesiredIntegration | DesiredWebhook],
    actual: Iterable[ActualIntegration | ActualWebhook],
    policy: RiskPolicy,
    prune: bool,
    sel: Selectors,
) -> tuple[list[Change], list[Notice]]:
    """Creates and field-level updates of declared objects; deletes (or notices) of the rest."""
    rows = {_address(spec, a): a for a in actual}
    changes: list[Change] = []
    seen: set[Address] = set()
    for d in desired:
        addr = _address(spec, d)
        seen.add(addr)
        where = f"{addr} ({d.source.path})"
        secrets = {n: _secret_fp(get(d), f"{where} {n}") for n, get, _ in spec.secrets}
        values = spec.desired_values(d)
        a = rows.get(addr)
        if a is None or a.deleted_at is not None:
            reason = (
                "declared in manifests" if a is None else "declared again (restores a deleted row)"
            )
            changes.append(
                _make_change(
                    addr,
                    Action.CREATE,
                    _created_fields(values, secrets),
                    policy,
                    reason=reason,
                    source=d.source.path,
                    row_id=a.id if a else None,
                    row_version=a.row_version if a else None,
                )
            )
            continue
        fields = _field_changes(spec.actual_values(a), values, spec.set_like)
        for name, _, stored in spec.secrets:
            fc = _secret_change(name, stored(a), secrets[name], a.doubted.get(name))
            if fc:
                fields.append(fc)
        if fields:
            changes.append(
                _make_change(
                    addr,
                    Action.UPDATE,
                    fields,
                    policy,
                    reason=_update_reason(fields, a.doubted),
                    source=d.source.path,
                    row_id=a.id,
                    row_version=a.row_version,
                )
            )
    notices: list[Notice] = []
    for addr, a in rows.items():
        if addr in seen or a.deleted_at is not None or not sel.matches(a.tenant_id, a.platform):
            continue
        secrets = {n: stored(a) for n, _, stored in spec.secrets}
        fields = _deleted_fields(spec.actual_values(a), secrets)
        _undeclared(addr, a.id, a.row_version, fields, policy, prune, changes, notices)
    return changes, notices


def _undeclared(
    addr: Address,
    row_id: int,
    row_version: int,
    fields: list[FieldChange],
    policy: RiskPolicy,
    prune: bool,
    changes: list[Change],
    notices: list[Notice],
) -> None:
    if prune:
        changes.append(
            _make_change(
                addr,
                Action.DELETE,
                fields,
                policy,
                reason="not in manifests (--prune)",
                source=None,
                row_id=row_id,
                row_version=row_version,
            )
        )
    else:
        notices.append(
            Notice(NoticeKind.KEPT, addr, "not in manifests, kept (use --prune to delete)")
        )


# -- OAuth accounts ------------------------------------------------------------------------------


_ACCOUNT_KEY = tuple[str, Platform, str | None]

UNMANAGED_LISTED = 5
"""How many unmanaged accounts a summary notice names before "and N more"."""


def _diff_accounts(
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
        if t.managed_since is not None and t.account_id is not None:
            # Any token of the account (revoked ones too) proves it was declared once.
            ever_managed.add(key0)
        if t.is_active and t.revoked_at is None:
            active[key0].append(t)
    changes: list[Change] = []
    notices: list[Notice] = []
    declared: set[_ACCOUNT_KEY] = set()
    for d in desired:
        key: _ACCOUNT_KEY = (d.tenant_id, d.platform, d.account_id)
        declared.add(key)
        addr = Address(
            d.tenant_id, d.platform, d.environment, ResourceKind.OAUTH_ACCOUNT, d.account_id
        )
        found = sorted(active.get(key, ()), key=lambda t: t.id)
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
            if t.managed_since is None:
                changes.append(_adopt(addr, t, d.source.path, policy))
        if d.platform is Platform.STRIPE and d.stripe_livemode is not None:
            for t in found:
                if t.stripe_livemode is not None and t.stripe_livemode != d.stripe_livemode:
                    mode = "live" if t.stripe_livemode else "test"
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
        for t in sorted(found, key=lambda t: t.id):
            name = account or f"token-{t.id}"
            addr = Address(tenant, platform, None, ResourceKind.OAUTH_ACCOUNT, name)
            managed = t.managed_since is not None or key in ever_managed
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
    """Mark a declared, connected account's token as managed (``managed_since``)."""
    return _make_change(
        addr,
        Action.UPDATE,
        [FieldChange(MANAGED, False, True)],
        policy,
        reason=(
            "declared and connected: its token becomes managed (removing the account from "
            "the manifests later revokes it with --prune)"
        ),
        source=source,
        row_id=token.id,
        row_version=token.row_version,
    )


def _revoke(
    addr: Address, token: ActualToken, reason: str, source: str | None, policy: RiskPolicy
) -> Change:
    fields = [FieldChange("is_active", True, False)]
    return _make_change(
        addr,
        Action.REVOKE,
        fields,
        policy,
        reason=reason,
        source=source,
        row_id=token.id,
        row_version=token.row_version,
    )


# -- breaker ------------------------------------------------------------------------------------


def _mass_deletions(
    changes: list[Change],
    actual: ActualState,
    tenants_with_files: frozenset[str],
    policy: RiskPolicy,
) -> tuple[MassDeletion, ...]:
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


def _mass_revocations(
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
