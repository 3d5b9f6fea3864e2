"""Write a plan with the store adapter, read it back: the diff must be empty.

Runs against real PostgreSQL; checks set-based writes, secret encryption (no plaintext in
the database), version guards and runtime-field initialisation.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from reconciler.core.planner import build_plan
from reconciler.core.risk import RiskPolicy
from reconciler.crypto.aead import CipherContext, FieldCipher
from reconciler.crypto.keyring import Keyring
from reconciler.errors import ApplyFailed, PlanStale
from reconciler.model.actual import ActualState
from reconciler.model.desired import DesiredState
from reconciler.model.plan import Action, Plan
from reconciler.store.read import read_actual_state
from reconciler.store.write import WriteContext, write_changes
from tests.unit.core.builders import FINGERPRINTER, account, integration, secret, state, webhook

POLICY = RiskPolicy()


def _cipher() -> FieldCipher:
    return FieldCipher(Keyring({1: os.urandom(32)}), FINGERPRINTER)


def _plan(conn: sa.Connection, desired: DesiredState, prune: bool = False) -> Plan:
    actual = read_actual_state(
        conn,
        build_plan(desired, ActualState(), policy=POLICY, created_at="t").selectors,
        FINGERPRINTER,
    )
    return build_plan(desired, actual, policy=POLICY, created_at="t", prune=prune)


def _apply(
    engine: sa.Engine, desired: DesiredState, cipher: FieldCipher, prune: bool = False
) -> Plan:
    with engine.begin() as conn:
        p = _plan(conn, desired, prune)
        ctx = WriteContext(now=datetime.now(UTC), actor="tester", cipher=cipher)
        write_changes(conn, p.changes, desired, ctx)
    return p


def test_write_then_read_is_a_fixed_point(engine: sa.Engine) -> None:
    cipher = _cipher()
    desired = state(
        integration(),
        integration(tenant="beta", sync_interval=60),
        webhook(),
        webhook(name="second", subscribed_events=("charge.refunded",)),
    )
    first = _apply(engine, desired, cipher)
    assert [c.action for c in first.changes] == [Action.CREATE] * 4
    with engine.connect() as conn:
        assert _plan(conn, desired, prune=True).changes == ()
        row = conn.execute(
            sa.text(
                "SELECT api_key, api_key_fingerprint, encryption_key_version, health_status::text, "
                "next_sync_at IS NOT NULL, row_version FROM integration_configs "
                "WHERE tenant_id='acme'"
            )
        ).one()
    stored, fp, version, health, scheduled, row_version = row
    assert "sk_live_canary" not in stored and stored.startswith("rcn2:")
    assert fp == secret("sk_live_canary").fingerprint
    assert (version, health, scheduled, row_version) == (1, "UNKNOWN", True, 1)
    ctx = CipherContext.integration("acme", "STRIPE", "PRODUCTION", "API_KEY", "api_key")
    assert cipher.decrypt(stored, 1, ctx, fp).reveal() == "sk_live_canary"


def test_update_keeps_unchanged_secret_ciphertext_and_bumps_version(engine: sa.Engine) -> None:
    cipher = _cipher()
    _apply(engine, state(integration()), cipher)
    with engine.connect() as conn:
        before = conn.execute(sa.text("SELECT api_key FROM integration_configs")).scalar_one()
    p = _apply(engine, state(integration(sync_interval=99)), cipher)
    assert [f.field for f in p.changes[0].fields] == ["sync_interval"]
    with engine.connect() as conn:
        after, rv = conn.execute(
            sa.text("SELECT api_key, row_version FROM integration_configs")
        ).one()
    assert after == before and rv == 2
    p = _apply(engine, state(integration(sync_interval=99, api_key=secret("sk_live_new"))), cipher)
    with engine.connect() as conn:
        rotated = conn.execute(sa.text("SELECT api_key FROM integration_configs")).scalar_one()
    assert rotated != before


def test_replayed_or_swapped_ciphertext_is_planned_as_a_change_and_healed(
    engine: sa.Engine,
) -> None:
    """Earlier values copied back by SQL: the read flags them, apply rewrites them."""
    cipher = _cipher()
    v1 = state(integration(), webhook())
    _apply(engine, v1, cipher)
    with engine.connect() as conn:
        (old_key,) = conn.execute(sa.text("SELECT api_key FROM integration_configs")).one()
    v2 = state(integration(api_key=secret("sk_live_rotated")), webhook())
    _apply(engine, v2, cipher)
    with engine.begin() as conn:
        assert _plan(conn, v2).changes == ()
        conn.execute(sa.text("UPDATE integration_configs SET api_key = :k"), {"k": old_key})
        # And a swap: the webhook's ciphertext into the integration's api_secret column.
        conn.execute(
            sa.text(
                "UPDATE integration_configs SET api_secret = w.signing_secret,"
                " api_secret_fingerprint = w.signing_secret_fingerprint"
                " FROM webhook_configurations w"
            )
        )
    with engine.connect() as conn:
        p = _plan(conn, v2)
    (change,) = p.changes
    assert [(f.field, f.before, f.after) for f in change.fields] == [
        ("api_key", "(sensitive)", "(sensitive)"),
        ("api_secret", "(sensitive)", None),
    ]
    assert "stored api_key does not match its fingerprint" in change.reason
    assert "stored api_secret does not match its fingerprint" in change.reason
    _apply(engine, v2, cipher)
    with engine.connect() as conn:
        assert _plan(conn, v2).changes == ()
        stored, fp, secret_column = conn.execute(
            sa.text("SELECT api_key, api_key_fingerprint, api_secret FROM integration_configs")
        ).one()
    ctx = CipherContext.integration("acme", "STRIPE", "PRODUCTION", "API_KEY", "api_key")
    assert cipher.decrypt(stored, 1, ctx, fp).reveal() == "sk_live_rotated"
    assert secret_column is None


def test_soft_delete_and_restore(engine: sa.Engine) -> None:
    cipher = _cipher()
    _apply(engine, state(integration(), webhook()), cipher)
    p = _apply(engine, state(integration()), cipher, prune=True)
    assert [c.action for c in p.changes] == [Action.DELETE]
    with engine.connect() as conn:
        deleted = conn.execute(
            sa.text("SELECT deleted_at IS NOT NULL, is_active FROM webhook_configurations")
        ).one()
    assert tuple(deleted) == (True, False)
    p = _apply(engine, state(integration(), webhook()), cipher)
    assert [c.action for c in p.changes] == [Action.CREATE]
    with engine.connect() as conn:
        restored = conn.execute(
            sa.text("SELECT deleted_at IS NULL, row_version FROM webhook_configurations")
        ).one()
    assert tuple(restored) == (True, 3)


def test_revoke_token(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id, "
                "stripe_livemode, is_active, encryption_key_version, metadata) "
                "VALUES ('acme', 'STRIPE', 'rcn1:placeholder', 'acct_1Example00', true, true, 1, "
                "'{}')"
            )
        )
    p = _apply(engine, state(account(revoke_reason="offboarding")), _cipher())
    assert [c.action for c in p.changes] == [Action.REVOKE]
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT is_active, revoked_reason, revoked_by FROM oauth_tokens")
        ).one()
    assert tuple(row) == (False, "revoke requested: offboarding", "tester")


def test_row_moved_under_the_plan_is_refused(engine: sa.Engine) -> None:
    cipher = _cipher()
    _apply(engine, state(integration()), cipher)
    desired = state(integration(sync_interval=5))
    with engine.begin() as conn:
        p = _plan(conn, desired)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE integration_configs SET row_version = row_version + 1"))
    with pytest.raises(PlanStale), engine.begin() as conn:
        write_changes(conn, p.changes, desired, WriteContext(datetime.now(UTC), "t", cipher))


def test_constraint_failure_names_the_object(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "ALTER TABLE webhook_configurations ADD CONSTRAINT no_zzz CHECK (name <> 'zzz')"
            )
        )
    desired = state(webhook(name="aaa"), webhook(name="mmm"), webhook(name="zzz"))
    with pytest.raises(
        ApplyFailed, match=r"create acme/stripe/production/webhook/zzz failed.*no_zzz"
    ):
        _apply(engine, desired, _cipher())
    with engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT count(*) FROM webhook_configurations")).scalar_one() == 0
        )
