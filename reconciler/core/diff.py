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

OAuth tokens: a token whose account a manifest declared at some point (apply recorded when,
on it or on another token of the same account) is *managed*; once its account is no
longer declared it is an undeclared account, revoked with ``prune``. A token whose account
no manifest has ever declared is *unmanaged* (typically written by the application before
adoption): one notice per tenant and platform lists them, and only ``revoke_unmanaged``
(with ``prune``) revokes them. A declared, connected account whose tokens are not marked yet
gets a LOW update (``managed: false -> true``) that apply records with the time.
Token revocations of undeclared accounts have their own breaker, like mass deletions.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from reconciler.core.breakers import mass_deletions, mass_revocations
from reconciler.core.diff_accounts import diff_accounts
from reconciler.core.risk import RiskPolicy, field_change, scored_change
from reconciler.core.settle import Settled
from reconciler.model.actual import (
    ActualIntegration,
    ActualState,
    ActualWebhook,
    SecretDoubt,
)
from reconciler.model.desired import (
    DesiredIntegration,
    DesiredState,
    DesiredWebhook,
    SecretValue,
)
from reconciler.model.field_spec import compile_tuple
from reconciler.model.fields import (
    INTEGRATION_FIELDS,
    WEBHOOK_FIELDS,
    FieldSpec,
    Kind,
    attribute_path,
    call,
    compile_record,
    identity_of,
    plain_of,
    row_of,
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
    settled: Settled | None = None,
) -> DiffResult:
    """Compare desired with actual state (both already restricted to ``selectors``).

    ``revoke_unmanaged`` (effective only with ``prune``) also revokes tokens of accounts no
    manifest has ever declared. ``settled``: objects declared (though not in ``desired``)
    and found stored exactly as declared by :func:`~reconciler.core.settle.settle`; they
    are unchanged, and only the stored objects it leaves are matched with ``desired``.
    """
    sel = selectors or Selectors()
    left = actual if settled is None else settled
    changes: list[Change] = []
    notices: list[Notice] = []
    accounts = diff_accounts(
        desired.oauth_accounts, actual.tokens, policy, prune, sel, prune and revoke_unmanaged
    )
    for result in (
        _diff_objects(_INTEGRATIONS, desired.integrations, left.integrations, policy, prune, sel),
        _diff_objects(_WEBHOOKS, desired.webhooks, left.webhooks, policy, prune, sel),
        accounts,
    ):
        changes.extend(result[0])
        notices.extend(result[1])
    breakers = mass_deletions(changes, actual, desired.tenants, policy)
    breakers += mass_revocations(changes, actual, desired.tenants, policy)
    return DiffResult(tuple(changes), tuple(notices), breakers)


# -- values ------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A display/JSON form of a field value (enums as their labels, tuples as lists).

    A list or dict already in that form is returned itself, not copied: the values a plan
    shows are never changed, and an initial load's creates would otherwise hold a copy of
    every mapping and list of the fleet."""
    if type(value) in _SCALARS:  # first: most values are
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if _is_plain(value):
        return value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _is_plain(value: Any) -> bool:
    """Whether ``value`` is a list or dict (string keys) of exactly plain JSON values."""
    kind = type(value)
    if kind is list:
        return all(type(v) in _SCALARS or _is_plain(v) for v in value)
    if kind is dict:
        return all(type(k) is str for k in value) and all(
            type(v) in _SCALARS or _is_plain(v) for v in value.values()
        )
    return False


def _secret_change(
    name: str, before_fp: str | None, after_fp: str | None, doubt: SecretDoubt | None
) -> FieldChange | None:
    if before_fp == after_fp and doubt is None:
        return None
    return field_change(
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
        out.append(field_change(name, _plain(old), _plain(new)))
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
    out = [field_change(k, None, _plain(v)) for k, v in values.items() if v not in (None, {}, [])]
    out += [field_change(k, None, SENSITIVE_MASK, True) for k, fp in secrets.items() if fp]
    return out


def _deleted_fields(
    values: Mapping[str, Any], secrets: Mapping[str, str | None]
) -> list[FieldChange]:
    out = [field_change(k, _plain(v), None) for k, v in values.items() if v not in (None, {}, [])]
    out += [field_change(k, SENSITIVE_MASK, None, True) for k, fp in secrets.items() if fp]
    return out


# -- integrations and webhooks ---------------------------------------------------------------


class _NotDecrypted(Exception):
    """A desired secret without its fingerprint (raised by :attr:`_Kind.desired_fingerprints`)."""

    def __init__(self, position: int) -> None:
        super().__init__(position)
        self.position = position


def _not_decrypted(position: int) -> None:
    raise _NotDecrypted(position)


def _fingerprints_of(secrets: tuple[FieldSpec, ...]) -> Callable[[Any], tuple[str | None, ...]]:
    """The fingerprints of a desired object's secrets as one tuple (None for an absent
    secret); a present secret without one raises :class:`_NotDecrypted` (fingerprints are
    never empty)."""
    expressions = []
    for position, f in enumerate(secrets):
        secret = attribute_path(f.desired_path)
        expressions.append(
            f"(None if {secret} is None else "
            f"({attribute_path(f'{f.desired_path}.fingerprint')} or not_decrypted({position})))"
        )
    return compile_tuple(expressions, {"not_decrypted": _not_decrypted})


@dataclass(frozen=True, slots=True)
class _Kind:
    """How one kind of configuration object is identified and compared (from the field table)."""

    kind: ResourceKind
    key: Callable[[Any], tuple[Any, ...]]
    """The identity as a plain tuple ``(tenant, platform, environment, last part)``: the diff
    matches objects by it and builds an :class:`Address` only for what it reports."""
    name: Callable[[Any], str]
    """The last part of the address (config type or webhook name)."""
    desired_values: Callable[[Any], dict[str, Any]]
    actual_values: Callable[[Any], dict[str, Any]]
    """Reconciled non-secret fields of desired and actual objects."""
    desired_raw: Callable[[Any], tuple[Any, ...]]
    actual_raw: Callable[[Any], tuple[Any, ...]]
    """The same fields as they are held, unconverted: held values that compare equal are no
    change, so an unchanged object needs no conversion."""
    secret_names: tuple[str, ...]
    desired_secrets: Callable[[Any], tuple[SecretValue | None, ...]]
    desired_fingerprints: Callable[[Any], tuple[str | None, ...]]
    stored_fingerprints: Callable[[Any], tuple[str | None, ...]]
    """The secrets' names, their desired values and fingerprints (None for an absent
    secret, and for one not decrypted), and the stored fingerprints, in one order."""
    set_like: frozenset[str] = frozenset()
    """Fields compared as sets (order carries no meaning)."""

    @classmethod
    def of(cls, kind: ResourceKind, fields: tuple[FieldSpec, ...]) -> _Kind:
        identity = identity_of(fields)
        last = identity[-1]
        secrets = secrets_of(fields)
        return cls(
            kind,
            _tuple_getter(*(f.name for f in identity)),
            attrgetter(f"{last.name}.value" if last.kind is Kind.ENUM else last.name),
            _values_of(fields, desired=True),
            _values_of(fields, desired=False),
            _tuple_getter(*(f.desired_path for f in plain_of(fields))),
            _tuple_getter(*(f.name for f in plain_of(fields))),
            tuple(f.name for f in secrets),
            _tuple_getter(*(f.desired_path for f in secrets)),
            _fingerprints_of(secrets),
            _tuple_getter(*(f.fingerprint_column for f in secrets)),
            frozenset(f.name for f in fields if f.set_like),
        )

    def address(self, key: tuple[Any, ...], obj: Any) -> Address:
        """The address of the object whose :attr:`key` is ``key``."""
        return Address(key[0], key[1], key[2], self.kind, self.name(obj))


def _tuple_getter(*paths: str) -> Callable[[Any], tuple[Any, ...]]:
    """An :func:`operator.attrgetter` of ``paths`` that returns a tuple even for one path."""
    if len(paths) == 1:
        one = attrgetter(paths[0])
        return lambda obj: (one(obj),)
    return attrgetter(*paths)


_INTEGRATIONS = _Kind.of(ResourceKind.INTEGRATION, INTEGRATION_FIELDS)
_WEBHOOKS = _Kind.of(ResourceKind.WEBHOOK, WEBHOOK_FIELDS)


def _fingerprints(
    spec: _Kind, d: DesiredIntegration | DesiredWebhook, key: tuple[Any, ...]
) -> tuple[str | None, ...]:
    """The keyed fingerprints of ``d``'s secrets (``None`` where it has none)."""
    try:
        return spec.desired_fingerprints(d)
    except _NotDecrypted as missing:
        name = spec.secret_names[missing.position]
        raise ValueError(
            f"{spec.address(key, d)} ({d.source.path}) {name}: secret was not decrypted; "
            "plans need decrypted manifests"
        ) from None


def _diff_objects(
    spec: _Kind,
    desired: Iterable[DesiredIntegration | DesiredWebhook],
    actual: Iterable[ActualIntegration | ActualWebhook],
    policy: RiskPolicy,
    prune: bool,
    sel: Selectors,
) -> tuple[list[Change], list[Notice]]:
    """Creates and field-level updates of declared objects; deletes (or notices) of the rest."""
    # Matched by plain tuples (hashed in C); most objects of a fleet are unchanged, and only
    # a change needs its Address.
    rows = {spec.key(a): a for a in actual}
    changes: list[Change] = []
    seen: set[tuple[Any, ...]] = set()
    for d in desired:
        key = spec.key(d)
        seen.add(key)
        fingerprints = _fingerprints(spec, d, key)
        a = rows.get(key)
        # Unchanged, as most objects of a fleet are. Equal values are no change whatever
        # their types (an int and an equal float, an enum and its label): _field_changes
        # finds none between them either.
        if (
            a is not None
            and a.live
            and fingerprints == spec.stored_fingerprints(a)
            and spec.desired_raw(d) == spec.actual_raw(a)
            and not a.doubted
        ):
            continue
        values = spec.desired_values(d)
        if a is None or not a.live:
            reason = (
                "declared in manifests" if a is None else "declared again (restores a deleted row)"
            )
            created = dict(zip(spec.secret_names, fingerprints, strict=True))
            changes.append(
                scored_change(
                    spec.address(key, d),
                    Action.CREATE,
                    _created_fields(values, created),
                    policy,
                    reason=reason,
                    source=d.source.path,
                    row=row_of(a),
                )
            )
            continue
        stored_values = spec.actual_values(a)
        stored = spec.stored_fingerprints(a)
        fields = _field_changes(stored_values, values, spec.set_like)
        for name, before, after in zip(spec.secret_names, stored, fingerprints, strict=True):
            fc = _secret_change(name, before, after, a.doubted.get(name))
            if fc:
                fields.append(fc)
        if fields:
            changes.append(
                scored_change(
                    spec.address(key, d),
                    Action.UPDATE,
                    fields,
                    policy,
                    reason=_update_reason(fields, a.doubted),
                    source=d.source.path,
                    row=row_of(a),
                )
            )
    notices: list[Notice] = []
    for key, a in rows.items():
        if key in seen or not a.live or not sel.matches(a.tenant_id, a.platform):
            continue
        secrets = dict(zip(spec.secret_names, spec.stored_fingerprints(a), strict=True))
        fields = _deleted_fields(spec.actual_values(a), secrets)
        _undeclared(spec.address(key, a), row_of(a), fields, policy, prune, changes, notices)
    return changes, notices


def _undeclared(
    addr: Address,
    row: tuple[int | None, int | None],
    fields: list[FieldChange],
    policy: RiskPolicy,
    prune: bool,
    changes: list[Change],
    notices: list[Notice],
) -> None:
    if prune:
        changes.append(
            scored_change(
                addr,
                Action.DELETE,
                fields,
                policy,
                reason="not in manifests (--prune)",
                source=None,
                row=row,
            )
        )
    else:
        notices.append(
            Notice(NoticeKind.KEPT, addr, "not in manifests, kept (use --prune to delete)")
        )
