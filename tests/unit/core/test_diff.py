from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.diff import _field_changes
from reconciler.core.planner import build_plan
from reconciler.core.risk import RiskPolicy
from reconciler.model.actual import ActualState, ActualToken, SecretDoubt
from reconciler.model.desired import DesiredState, SecretValue
from reconciler.model.enums import AuthType, Environment, RiskLevel
from reconciler.model.plan import Action, NoticeKind, Plan, Selectors
from tests.unit.core.builders import account, as_actual, integration, secret, state, token, webhook

POLICY = RiskPolicy()


def plan(desired: DesiredState, actual: ActualState, **kw: object) -> Plan:
    return build_plan(desired, actual, policy=POLICY, created_at="2026-01-01T00:00:00Z", **kw)  # type: ignore[arg-type]


def test_create_everything_from_empty_database() -> None:
    p = plan(state(integration(), webhook()), ActualState())
    assert [c.action for c in p.changes] == [Action.CREATE, Action.CREATE]
    assert [c.address.kind.value for c in p.changes] == ["integration", "webhook"]
    create = p.changes[0]
    api_key = next(f for f in create.fields if f.field == "api_key")
    assert api_key.sensitive and api_key.after == "(sensitive)"
    assert create.risk.level is RiskLevel.MEDIUM  # production create


def test_no_changes_when_database_matches() -> None:
    desired = state(integration(), webhook(), account())
    p = plan(desired, as_actual(desired, (token(),)))
    assert p.changes == ()
    assert p.notices == ()


def test_field_level_update_with_risk() -> None:
    desired = state(integration(), webhook())
    actual = as_actual(desired)
    changed = state(
        integration(sync_interval=30),
        webhook(endpoint_url="https://hooks.example.com/v2", auth_type=AuthType.NONE),
    )
    p = plan(changed, actual)
    by_kind = {c.address.kind.value: c for c in p.changes}
    integ = by_kind["integration"]
    assert [(f.field, f.before, f.after) for f in integ.fields] == [("sync_interval", 15, 30)]
    assert integ.risk.level is RiskLevel.LOW
    hook = by_kind["webhook"]
    assert {f.field for f in hook.fields} == {"auth_type", "endpoint_url"}
    assert hook.risk.level is RiskLevel.CRITICAL
    assert {r.code for r in hook.risk.reasons} >= {"AUTH_DOWNGRADE_NONE", "ENDPOINT_URL"}


def test_secret_change_is_exact_and_masked() -> None:
    desired = state(integration())
    actual = as_actual(desired)
    same_value_reencrypted = state(integration(api_key=secret("sk_live_canary")))
    assert plan(same_value_reencrypted, actual).changes == ()
    p = plan(state(integration(api_key=secret("sk_live_other"))), actual)
    (change,) = p.changes
    assert [(f.field, f.before, f.after, f.sensitive) for f in change.fields] == [
        ("api_key", "(sensitive)", "(sensitive)", True)
    ]
    assert change.risk.level is RiskLevel.HIGH
    assert "sk_live" not in repr(p.to_dict())


def test_doubted_secret_is_a_change_even_with_equal_fingerprints() -> None:
    """A stored value the store could not bind to its fingerprint is rewritten by apply."""
    desired = state(integration(), webhook())
    actual = as_actual(desired)
    replayed = replace(
        actual,
        integrations=(replace(actual.integrations[0], doubted={"api_key": SecretDoubt.MISMATCH}),),
        webhooks=(replace(actual.webhooks[0], doubted={"signing_secret": SecretDoubt.LEGACY}),),
    )
    p = plan(desired, replayed)
    by_kind = {c.address.kind.value: c for c in p.changes}
    integ, hook = by_kind["integration"], by_kind["webhook"]
    assert integ.action is Action.UPDATE
    assert [(f.field, f.before, f.after, f.sensitive) for f in integ.fields] == [
        ("api_key", "(sensitive)", "(sensitive)", True)
    ]
    assert integ.reason == (
        "stored api_key does not match its fingerprint (replayed, swapped or edited in the "
        "database); apply rewrites it from the manifest"
    )
    assert integ.risk.level is RiskLevel.HIGH
    assert [f.field for f in hook.fields] == ["signing_secret"]
    assert "legacy rcn1" in hook.reason and "keys rotate" in hook.reason

    # Together with an ordinary difference, both are said.
    p = plan(state(integration(sync_interval=30), webhook()), replayed)
    integ = next(c for c in p.changes if c.address.kind.value == "integration")
    assert {f.field for f in integ.fields} == {"api_key", "sync_interval"}
    assert integ.reason.startswith("manifest differs; stored api_key does not match")

    # A doubted value the manifest no longer declares is removed.
    p = plan(state(integration(api_key=None), webhook()), replayed)
    integ = next(c for c in p.changes if c.address.kind.value == "integration")
    assert [(f.field, f.before, f.after) for f in integ.fields] == [
        ("api_key", "(sensitive)", None)
    ]


def test_event_order_is_not_a_change() -> None:
    desired = state(webhook(subscribed_events=("a.b", "c.d")))
    actual = as_actual(desired)  # builder stores events reversed
    assert plan(desired, actual).changes == ()


def test_undeclared_objects_kept_without_prune_deleted_with_prune() -> None:
    old = state(integration(), webhook(), webhook(name="other"))
    actual = as_actual(old)
    new = state(integration(), webhook())
    kept = plan(new, actual)
    assert kept.changes == ()
    assert [n.kind for n in kept.notices] == [NoticeKind.KEPT]
    pruned = plan(new, actual, prune=True)
    (delete,) = pruned.changes
    assert delete.action is Action.DELETE and delete.address.name == "other"
    assert delete.risk.level is RiskLevel.CRITICAL
    assert pruned.mass_deletions == ()


def test_whole_tenant_removal_trips_breaker() -> None:
    old = state(integration(tenant="gone"), webhook(tenant="gone"), integration())
    p = plan(state(integration()), as_actual(old), prune=True)
    assert [c.action for c in p.changes] == [Action.DELETE, Action.DELETE]
    (breaker,) = p.mass_deletions
    assert breaker.tenant == "gone" and breaker.whole_tenant and breaker.deleting == 2


def test_share_breaker() -> None:
    hooks = [webhook(name=f"h{i}") for i in range(4)]
    old = state(integration(), *hooks)
    p = plan(state(integration(), hooks[0]), as_actual(old), prune=True)
    (breaker,) = p.mass_deletions
    assert not breaker.whole_tenant and (breaker.deleting, breaker.total) == (3, 5)


def test_deletions_come_last_in_reverse_kind_order() -> None:
    old = state(integration(tenant="a"), webhook(tenant="a"), integration(tenant="b"))
    p = plan(state(integration(tenant="b", sync_interval=60)), as_actual(old), prune=True)
    assert [(c.action, c.address.tenant, c.address.kind.value) for c in p.changes] == [
        (Action.UPDATE, "b", "integration"),
        (Action.DELETE, "a", "webhook"),
        (Action.DELETE, "a", "integration"),
    ]


def test_soft_deleted_row_is_restored_by_create() -> None:
    desired = state(integration())
    actual = as_actual(desired)
    from datetime import UTC, datetime

    deleted = ActualState((replace(actual.integrations[0], deleted_at=datetime.now(UTC)),))
    (change,) = plan(desired, deleted).changes
    assert change.action is Action.CREATE and change.row_id == 1


def test_oauth_accounts() -> None:
    declared = account()
    waiting = account(account_id="acct_1Waiting000")
    revoke = account(account_id="acct_1Revoke0000", revoke_reason="offboarded")
    tokens = (
        token(id=1),
        token(id=2, account_id="acct_1Revoke0000"),
        token(id=3, account_id="acct_1Stranger00"),
    )
    desired = state(declared, waiting, revoke)
    p = plan(desired, ActualState(tokens=tokens))
    assert [(c.action, c.address.name) for c in p.changes] == [(Action.REVOKE, "acct_1Revoke0000")]
    assert p.changes[0].risk.level is RiskLevel.HIGH
    kinds = {(n.kind, n.address.name) for n in p.notices}
    assert kinds == {
        (NoticeKind.WAITING_FOR_CONNECTION, "acct_1Waiting000"),
        (NoticeKind.UNDECLARED_ACCOUNT, "acct_1Stranger00"),
    }
    pruned = plan(desired, ActualState(tokens=tokens), prune=True)
    assert [(c.action, c.address.name) for c in pruned.changes][-1] == (
        Action.REVOKE,
        "acct_1Stranger00",
    )
    assert {r.code for r in pruned.changes[-1].risk.reasons} == {
        "TOKEN_REVOKE",
        "UNDECLARED_ACCOUNT",
    }


def test_selectors_limit_prune() -> None:
    old = state(integration(tenant="a"), integration(tenant="b"))
    p = plan(state(), as_actual(old), prune=True, selectors=Selectors(tenants=("a",)))
    assert [c.address.tenant for c in p.changes] == ["a"]


def test_policy_raises_but_never_lowers() -> None:
    strict = RiskPolicy.create({"SYNC_INTERVAL": RiskLevel.HIGH})
    desired = state(integration())
    p = build_plan(
        state(integration(sync_interval=5)), as_actual(desired), policy=strict, created_at="t"
    )
    assert p.changes[0].risk.level is RiskLevel.HIGH
    import pytest

    with pytest.raises(ValueError, match="not lowered"):
        RiskPolicy.create({"DELETE": RiskLevel.LOW})
    with pytest.raises(ValueError, match="unknown risk rule"):
        RiskPolicy.create({"NOPE": RiskLevel.HIGH})


def test_plan_round_trips_through_json() -> None:
    old = state(integration(), webhook(), webhook(name="x"))
    p = plan(state(integration(sync_interval=1), webhook()), as_actual(old), prune=True)
    assert Plan.from_dict(p.to_dict()) == p


_tenants = st.sampled_from(["a", "b", "c"])
_names = st.sampled_from(["w1", "w2", "w3"])
_envs = st.sampled_from(list(Environment))


@st.composite
def desired_states(draw: st.DrawFn) -> DesiredState:
    ints = {
        (t, e): integration(tenant=t, environment=e, sync_interval=draw(st.integers(1, 10080)))
        for t, e in draw(st.lists(st.tuples(_tenants, _envs), max_size=6))
    }
    hooks = {
        (t, n): webhook(
            tenant=t,
            name=n,
            subscribed_events=tuple(
                draw(st.lists(st.sampled_from(["x.y", "y.z", "z.a"]), unique=True))
            ),
        )
        for t, n in draw(st.lists(st.tuples(_tenants, _names), max_size=6))
    }
    return state(*ints.values(), *hooks.values())


@given(desired_states())
def test_property_diff_against_itself_is_empty(desired: DesiredState) -> None:
    p = plan(desired, as_actual(desired), prune=True)
    assert p.changes == ()


@given(desired_states(), desired_states())
def test_property_plan_is_deterministic(a: DesiredState, b: DesiredState) -> None:
    actual = as_actual(b)
    first = plan(a, actual, prune=True)
    shuffled = DesiredState(
        tuple(reversed(a.integrations)),
        tuple(reversed(a.webhooks)),
        (),
        a.tenants,
        a.manifests_digest,
    )
    assert plan(shuffled, actual, prune=True).to_dict() == first.to_dict()


def test_risk_levels_order_by_severity_not_name() -> None:
    assert RiskLevel.LOW < RiskLevel.MEDIUM < RiskLevel.HIGH < RiskLevel.CRITICAL
    assert max(RiskLevel.HIGH, RiskLevel.LOW) is RiskLevel.HIGH
    assert sorted(RiskLevel) == list(RiskLevel)


# -- unmanaged tokens -----------------------------------------------------------------------------


def _unmanaged(id: int, account_id: str | None) -> ActualToken:
    return token(id=id, account_id=account_id, managed_since=None)


def test_unmanaged_tokens_are_one_notice_and_never_pruned() -> None:
    tokens = (
        _unmanaged(1, "acct_1Legacy0001"),
        _unmanaged(2, "acct_1Legacy0002"),
        _unmanaged(3, None),
        _unmanaged(4, "acct_1Legacy0004"),
        token(id=5, tenant="globex", account_id=None, managed_since=None),
    )
    for prune in (False, True):
        p = plan(state(), ActualState(tokens=tokens), prune=prune)
        assert p.changes == ()
        assert [(n.kind, str(n.address)) for n in p.notices] == [
            (NoticeKind.UNMANAGED_ACCOUNTS, "acme/stripe/-/oauth_account/*"),
            (NoticeKind.UNMANAGED_ACCOUNTS, "globex/stripe/-/oauth_account/*"),
        ]
        assert p.notices[0].message.startswith(
            "4 token(s) of accounts no manifest has ever declared, kept (acct_1Legacy0001, "
            "acct_1Legacy0002, token-3"
        )
        assert p.mass_deletions == ()


def test_revoke_unmanaged_needs_prune_and_names_the_rule() -> None:
    tokens = (_unmanaged(1, "acct_1Legacy0001"), token(id=2, account_id="acct_1Kept0000002"))
    desired = state(account(account_id="acct_1Kept0000002"))
    assert plan(desired, ActualState(tokens=tokens), revoke_unmanaged=True).changes == ()
    p = plan(desired, ActualState(tokens=tokens), prune=True, revoke_unmanaged=True)
    [change] = p.changes
    assert (change.action, change.address.name) == (Action.REVOKE, "acct_1Legacy0001")
    assert {r.code for r in change.risk.reasons} == {"TOKEN_REVOKE", "UNMANAGED_ACCOUNT"}
    assert change.reason == "unmanaged connected account (--revoke-unmanaged)"
    assert p.notices == ()


def test_declared_once_is_managed_even_through_another_token() -> None:
    """The account was declared (one token marked): a later token of it is not unmanaged."""
    tokens = (
        token(id=1, account_id="acct_1Removed0001", is_active=False, revoked_at=datetime.now(UTC)),
        _unmanaged(2, "acct_1Removed0001"),
    )
    p = plan(state(), ActualState(tokens=tokens), prune=True)
    [change] = p.changes
    assert change.row_id == 2
    assert {r.code for r in change.risk.reasons} == {"TOKEN_REVOKE", "UNDECLARED_ACCOUNT"}


def test_declared_connected_account_is_adopted_once() -> None:
    desired = state(account())
    p = plan(desired, ActualState(tokens=(_unmanaged(1, "acct_1Example00"),)))
    [change] = p.changes
    assert change.action is Action.UPDATE and change.row_id == 1
    assert [(f.field, f.before, f.after) for f in change.fields] == [("managed", False, True)]
    assert change.risk.level is RiskLevel.LOW
    assert [r.code for r in change.risk.reasons] == ["ADOPT_ACCOUNT"]
    assert change.source == desired.oauth_accounts[0].source.path
    assert plan(desired, ActualState(tokens=(token(id=1),))).changes == ()


def test_mass_revocation_breaker() -> None:
    tokens = (
        *tuple(token(id=i, account_id=f"acct_1Gone{i:08d}") for i in range(1, 5)),
        token(id=9, account_id="acct_1Kept0000009"),
    )
    keep = account(account_id="acct_1Kept0000009")
    p = plan(state(keep), ActualState(tokens=tokens), prune=True)
    assert [(m.tenant, m.deleting, m.total, m.whole_tenant, m.kind) for m in p.mass_deletions] == [
        ("acme", 4, 5, False, "tokens")
    ]
    # Under the share: two of five, and a declared revoke does not count.
    few = plan(state(keep), ActualState(tokens=(*tokens[:2], tokens[-1])), prune=True)
    assert few.mass_deletions == ()
    # A tenant whose files are all gone trips it whatever the count.
    gone = plan(state(), ActualState(tokens=tokens[:1]), prune=True)
    assert [(m.deleting, m.whole_tenant, m.kind) for m in gone.mass_deletions] == [
        (1, True, "tokens")
    ]
    strict = RiskPolicy.create(mass_revocation_max_share=0.9, mass_revocation_min_tokens=5)
    relaxed = build_plan(
        state(keep),
        ActualState(tokens=tokens),
        policy=strict,
        created_at="2026-01-01T00:00:00Z",
        prune=True,
    )
    assert relaxed.mass_deletions == ()


def test_equal_parts_of_changes_are_held_once() -> None:
    """An initial load plans one create per object: equal field changes and risks are one
    object for all of them, never one per change. Values that are equal but render
    differently (``1`` and ``True``) stay apart."""
    desired = state(
        integration("a"),
        integration("b"),
        integration("c", sync_interval=1),
        integration("d", sync_interval=True),
    )
    p = plan(desired, ActualState())
    by_tenant = {c.address.tenant: {f.field: f for f in c.fields} for c in p.changes}
    risks = {c.address.tenant: c.risk for c in p.changes}
    assert by_tenant["a"]["is_active"] is by_tenant["b"]["is_active"]
    assert by_tenant["a"]["sync_interval"] is by_tenant["b"]["sync_interval"]
    assert risks["a"] is risks["b"]
    assert type(by_tenant["c"]["sync_interval"].after) is int
    assert by_tenant["d"]["sync_interval"].after is True
    assert by_tenant["a"]["features"].after == {"invoices": True}


def test_a_secret_that_was_not_decrypted_is_refused_and_an_absent_one_is_not() -> None:
    # api_secret absent (None) is fine; a present secret without its fingerprint is not.
    desired = state(integration(api_secret=secret("sk_other")), webhook())
    fine = state(integration(api_secret=None), webhook())
    assert plan(fine, as_actual(fine)).changes == ()
    for undecrypted in (
        integration(api_secret=SecretValue(None, None)),
        integration(api_key=SecretValue(None, None), api_secret=None),
    ):
        with pytest.raises(ValueError, match=r"\) api_\w+: secret was not decrypted"):
            plan(state(undecrypted), as_actual(desired))
    with pytest.raises(ValueError, match="signing_secret: secret was not decrypted"):
        plan(state(webhook(signing_secret=SecretValue(None, None))), as_actual(desired))


@pytest.mark.parametrize(
    ("stored", "declared"),
    [
        (2.0, 2),
        (1, True),
        (Environment.PRODUCTION.value, Environment.PRODUCTION),
        ({"a": 1}, MappingProxyType({"a": 1.0})),
        ((Environment.SANDBOX,), (Environment.SANDBOX.value,)),
    ],
)
def test_equal_values_of_other_types_are_no_field_change(stored: object, declared: object) -> None:
    # The diff skips an object whose held values compare equal without comparing their
    # types: that is only right while the field comparison agrees.
    assert stored == declared
    assert _field_changes({"f": stored}, {"f": declared}) == []


def test_equal_field_changes_of_many_objects_are_one_object() -> None:
    # A fleet-wide change (or an initial load) holds each distinct scalar field change once.
    desired = state(integration("a"), integration("b"))
    changed = state(integration("a", sync_interval=30), integration("b", sync_interval=30))
    updates = plan(changed, as_actual(desired)).changes
    assert [c.action for c in updates] == [Action.UPDATE, Action.UPDATE]
    assert updates[0].fields[0] is updates[1].fields[0]
    creates = plan(desired, ActualState()).changes
    pairs = list(zip(creates[0].fields, creates[1].fields, strict=True))
    scalars = [(a, b) for a, b in pairs if not isinstance(a.after, dict | list)]
    assert len(scalars) > 3 and all(a is b for a, b in scalars)
