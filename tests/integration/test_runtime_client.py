"""The Python client for services (``reconciler.runtime``), as a service's own login.

Configuration comes back decrypted and masked; circuit breakers go through the SQL
functions; an OAuth token stored by the client is encrypted under the active key version
and carries the account's identity, so the reconciler recognises it as the declared account.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.crypto.fingerprint import Fingerprinter
from reconciler.crypto.keyring import Keyring
from reconciler.errors import ConfigError, KeyUnavailable, StateError
from reconciler.model.enums import CircuitBreakerStatus
from reconciler.model.sensitive import Sensitive
from reconciler.runtime import OAuthAccount, RuntimeClient
from tests.e2e.workspace import Workspace, stripe_manifest
from tests.integration.test_runtime_functions import Service, drop_service, make_service

API_KEY = "rk_live_" + "Runt1meClientKey12345678"
DECLARED = "acct_1RuntimeDeclared"
UNDECLARED = "acct_1RuntimeOther01"


@pytest.fixture
def ws(tmp_path: Path, database_url: str) -> Workspace:
    """acme's Stripe manifest, applied under a keyring with two versions (2 is active)."""
    ws = Workspace.create(tmp_path, database_url)
    ws.env["RECONCILER_KEYRING"] += ",2:" + base64.b64encode(os.urandom(32)).decode()
    accounts = [{"stripe_account_id": DECLARED, "livemode": True}]
    ws.write("acme", "stripe", stripe_manifest("acme", api_key=API_KEY, accounts=accounts))
    ws.write("globex", "stripe", stripe_manifest("globex"))
    applied = ws.run("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    return ws


@pytest.fixture
def service(pg_server_url: str, database_url: str) -> Iterator[Service]:
    svc = make_service(pg_server_url, database_url, ("acme",))
    try:
        yield svc
    finally:
        drop_service(pg_server_url, svc)


@pytest.fixture
def client(ws: Workspace, service: Service) -> Iterator[RuntimeClient]:
    with RuntimeClient(service.url, environ=ws.env, application_name="billing") as c:
        yield c


def test_active_config_is_decrypted_and_masked(client: RuntimeClient) -> None:
    with client.session("acme") as s:
        (config,) = s.active_config("stripe", "production")
    assert (config.tenant_id, config.config_type, config.key_version) == ("acme", "API_KEY", 2)
    assert isinstance(config.api_key, Sensitive) and config.api_key.reveal() == API_KEY
    assert config.api_secret is None
    assert API_KEY not in repr(config) and API_KEY not in str(config)
    assert config.features == {"invoices": True}


def test_circuit_breaker_through_the_client(client: RuntimeClient) -> None:
    with client.session("acme") as s:
        hook = s.webhook_id("STRIPE", "PRODUCTION", "billing-events")
        assert hook is not None
        assert s.allow_delivery(hook)
    states = []
    for _ in range(5):
        with client.session("acme") as s:
            states.append(s.record_delivery(hook, succeeded=False, error="HTTP 502"))
    assert states == [CircuitBreakerStatus.CLOSED] * 4 + [CircuitBreakerStatus.OPEN]
    with client.session("acme") as s:
        assert not s.allow_delivery(hook)
        assert s.record_delivery(hook, succeeded=True) is CircuitBreakerStatus.CLOSED


def test_a_session_sees_only_its_tenant(client: RuntimeClient) -> None:
    with client.session("acme") as s:
        hook = s.webhook_id("STRIPE", "PRODUCTION", "billing-events")
    assert hook is not None
    # The login is granted acme only: as globex it sees nothing and touches nothing.
    with client.session("globex") as s:
        assert s.active_config("STRIPE", "PRODUCTION") == []
        assert s.webhook_id("STRIPE", "PRODUCTION", "billing-events") is None
        with pytest.raises(StateError, match=f"no webhook {hook}"):
            s.allow_delivery(hook)
    with pytest.raises(ConfigError):
        client.session("").__enter__()


def test_a_stored_token_is_the_declared_account_to_the_reconciler(
    ws: Workspace, client: RuntimeClient
) -> None:
    with client.session("acme") as s:
        declared = s.store_oauth_token(
            OAuthAccount.stripe(DECLARED, livemode=True), "sk_access_1", "rt_refresh_1"
        )
        other = s.store_oauth_token(OAuthAccount.stripe(UNDECLARED, livemode=True), "sk_other")
    rows = ws.sql(
        "SELECT id, encryption_key_version, stripe_livemode, created_by, left(access_token, 5),"
        " left(refresh_token, 5) FROM oauth_tokens ORDER BY id"
    )
    assert rows == [
        (declared, 2, True, "reconciler-runtime", "rcn1:", "rcn1:"),
        (other, 2, True, "reconciler-runtime", "rcn1:", None),
    ]
    with client.session("acme") as s:
        tokens = s.read_oauth_token(declared)
    assert (tokens.access_token.reveal(), tokens.key_version) == ("sk_access_1", 2)
    assert tokens.refresh_token is not None and tokens.refresh_token.reveal() == "rt_refresh_1"

    # The reconciler: the declared account's token is adopted as managed (a LOW update), the
    # other one is an unmanaged account of acme; nothing else changes.
    plan = ws.plan_json()
    accounts = [c for c in plan["changes"] if c["resource"]["kind"] == "oauth_account"]
    assert [(c["action"], c["resource"]["name"], c["risk"]["level"]) for c in accounts] == [
        ("update", DECLARED, "LOW")
    ]
    assert len(plan["changes"]) == 1
    unmanaged = [n["address"] for n in plan["notices"] if n["kind"] == "unmanaged_accounts"]
    assert "acme/stripe/-/oauth_account/*" in unmanaged
    assert ws.run("apply", "--auto-approve").returncode == 0
    assert ws.sql("SELECT id FROM oauth_tokens WHERE managed_since IS NOT NULL") == [(declared,)]
    assert ws.plan_json()["changes"] == []
    assert ws.run("keys", "status").stdout.count("legacy") == 0


def test_a_refresh_keeps_the_rows_key_version_and_refresh_token(
    ws: Workspace, service: Service
) -> None:
    keys = dict(e.split(":", 1) for e in ws.env["RECONCILER_KEYRING"].split(","))
    fingerprints = Fingerprinter(base64.b64decode(ws.env["RECONCILER_FINGERPRINT_KEY"]))
    only_1 = Keyring({1: base64.b64decode(keys["1"])})
    # A token stored while version 1 was active, refreshed by a service that has both.
    with (
        RuntimeClient(service.url, keyring=only_1, fingerprinter=fingerprints) as old,
        old.session("acme") as s,
    ):
        token = s.store_oauth_token(OAuthAccount.stripe(DECLARED, livemode=True), "a1", "r1")
    with RuntimeClient(service.url, environ=ws.env) as new, new.session("acme") as s:
        s.refresh_oauth_token(token, "a2")
        tokens = s.read_oauth_token(token)
    assert (tokens.access_token.reveal(), tokens.key_version) == ("a2", 1)
    assert tokens.refresh_token is not None and tokens.refresh_token.reveal() == "r1"
    with (
        RuntimeClient(service.url, environ=ws.env) as new,
        new.session("acme") as s,
        pytest.raises(StateError, match="no OAuth token"),
    ):
        s.refresh_oauth_token(token + 100, "x")


def test_without_keys_only_circuit_breakers_work(service: Service, ws: Workspace) -> None:
    with RuntimeClient(service.url, environ={}) as c, c.session("acme") as s:
        hook = s.webhook_id("STRIPE", "PRODUCTION", "billing-events")
        assert hook is not None and s.allow_delivery(hook)
        with pytest.raises(KeyUnavailable, match="RECONCILER_KEYRING"):
            s.active_config("STRIPE", "PRODUCTION")


def test_an_account_needs_its_identity() -> None:
    with pytest.raises(ConfigError, match="needs its identity"):
        OAuthAccount("STRIPE", stripe_account_id=DECLARED)  # type: ignore[arg-type]
    assert OAuthAccount.hubspot(123, app_id=456).hubspot_portal_id == "123"
