"""``run_health_check`` against real PostgreSQL with an in-memory probe (no network)."""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from reconciler.crypto.aead import CipherContext, FieldCipher
from reconciler.crypto.fingerprint import Fingerprinter
from reconciler.crypto.keyring import Keyring
from reconciler.health import ProbeResult, ProbeTarget, run_health_check
from reconciler.model.enums import HealthStatus, Platform
from reconciler.model.plan import Selectors
from reconciler.settings import BaseUrls
from tests.fake_platform import fake_platform

NOW = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)
STRIPE_KEY = "sk_live_" + "HealthCanary0123456789"
KEY_B64 = base64.b64encode(os.urandom(32)).decode()
ENVIRON = {
    "RECONCILER_KEYRING": f"1:{KEY_B64}",
    "RECONCILER_FINGERPRINT_KEY": base64.b64encode(os.urandom(32)).decode(),
}


class FakeProbe:
    """Answers from a table keyed by platform; records what it was asked (thread-safe)."""

    def __init__(self, answers: dict[Platform, ProbeResult]) -> None:
        self.answers = answers
        self.seen: list[ProbeTarget] = []
        self._lock = threading.Lock()

    def probe(self, target: ProbeTarget) -> ProbeResult:
        with self._lock:
            self.seen.append(target)
        return self.answers[target.platform]


def _insert_integration(
    conn: sa.Connection,
    tenant: str,
    platform: str,
    config_type: str,
    *,
    api_key: str | None = None,
    key_version: int = 1,
    active: bool = True,
    deleted: bool = False,
) -> None:
    stored = fingerprint = None
    if api_key is not None:
        fingerprinter = Fingerprinter.from_base64(
            ENVIRON["RECONCILER_FINGERPRINT_KEY"], source="test"
        )
        cipher = FieldCipher(
            Keyring.parse(ENVIRON["RECONCILER_KEYRING"], source="test"), fingerprinter
        )
        ctx = CipherContext.integration(tenant, platform, "PRODUCTION", config_type, "api_key")
        fingerprint = fingerprinter(api_key)
        stored = cipher.encrypt(api_key, ctx, fingerprint)
    conn.execute(
        sa.text(
            """INSERT INTO integration_configs (tenant_id, platform, config_type, environment,
                   is_active, api_key, api_key_fingerprint, encryption_key_version, deleted_at,
                   row_version)
               VALUES (:t, CAST(:p AS platform), CAST(:c AS config_type), 'PRODUCTION', :a,
                   :k, :f, :v, CASE WHEN :d THEN now() END, 7)"""
        ),
        {
            "f": fingerprint,
            "t": tenant,
            "p": platform,
            "c": config_type,
            "a": active,
            "k": stored,
            "v": key_version if stored else None,
            "d": deleted,
        },
    )


def _insert_webhook(
    conn: sa.Connection,
    tenant: str,
    name: str,
    status: str,
    opened_ago: timedelta | None,
    reset_seconds: int | None,
) -> None:
    conn.execute(
        sa.text(
            """INSERT INTO webhook_configurations (tenant_id, platform, environment, name,
                   webhook_type, endpoint_url, auth_type, circuit_breaker_status,
                   circuit_opened_at, circuit_breaker_reset_seconds, consecutive_failures,
                   row_version)
               VALUES (:t, 'STRIPE', 'PRODUCTION', :n, 'OUTBOUND', 'https://x.example/h',
                   'NONE', CAST(:s AS circuit_breaker_status), :o, :r, 6, 3)"""
        ),
        {
            "t": tenant,
            "n": name,
            "s": status,
            "o": NOW - opened_ago if opened_ago is not None else None,
            "r": reset_seconds,
        },
    )


def _health(engine: sa.Engine) -> dict[tuple[str, str], tuple[Any, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """SELECT tenant_id, platform::text, health_status::text, health_message,
                          last_health_check_at, row_version, updated_at
                   FROM integration_configs ORDER BY id"""
            )
        )
        return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def _circuits(engine: sa.Engine) -> dict[tuple[str, str], tuple[Any, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """SELECT tenant_id, name, circuit_breaker_status::text, row_version
                   FROM webhook_configurations ORDER BY id"""
            )
        )
        return {(r[0], r[1]): (r[2], r[3]) for r in rows}


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every SQL statement any engine sends during the test."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(" ".join(str(args[2]).split()))

    sa.event.listen(sa.Engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(sa.Engine, "before_cursor_execute", record)


@pytest.fixture
def seeded(engine: sa.Engine) -> sa.Engine:
    with engine.begin() as conn:
        _insert_integration(conn, "acme", "STRIPE", "API_KEY", api_key=STRIPE_KEY)
        _insert_integration(conn, "acme", "HUBSPOT", "OAUTH", api_key="client-id")
        _insert_integration(conn, "globex", "QUICKBOOKS", "OAUTH")
        _insert_integration(conn, "inactive", "STRIPE", "API_KEY", active=False)
        _insert_integration(conn, "gone", "STRIPE", "API_KEY", deleted=True)
        _insert_webhook(conn, "acme", "due", "OPEN", timedelta(minutes=10), 300)
        _insert_webhook(conn, "acme", "not-yet", "OPEN", timedelta(minutes=1), 300)
        _insert_webhook(conn, "acme", "default-reset", "OPEN", timedelta(minutes=6), None)
        _insert_webhook(conn, "acme", "no-opened-at", "OPEN", None, 300)
        _insert_webhook(conn, "acme", "closed", "CLOSED", None, 300)
        _insert_webhook(conn, "other", "due", "OPEN", timedelta(hours=2), 60)
    return engine


ANSWERS = {
    # A careless probe echoing the key: the stored message must still not contain it.
    Platform.STRIPE: ProbeResult(HealthStatus.UNHEALTHY, f"401 for key {STRIPE_KEY}"),
    Platform.HUBSPOT: ProbeResult(HealthStatus.HEALTHY, "HTTP 200"),
    Platform.QUICKBOOKS: ProbeResult(HealthStatus.DEGRADED, "slow"),
}


def test_verdicts_are_written_set_based_without_touching_row_version(
    seeded: sa.Engine, database_url: str, statements: list[str]
) -> None:
    before = _health(seeded)
    probe = FakeProbe(ANSWERS)
    result = run_health_check(probe=probe, database_url=database_url, now=NOW, environ=ENVIRON)
    after = _health(seeded)

    # Only active, non-deleted rows were probed, with their decrypted credentials.
    assert sorted(t.address for t in probe.seen) == [
        "acme/hubspot/production/integration/OAUTH",
        "acme/stripe/production/integration/API_KEY",
        "globex/quickbooks/production/integration/OAUTH",
    ]
    stripe = next(t for t in probe.seen if t.platform is Platform.STRIPE)
    assert stripe.api_key is not None and stripe.api_key.reveal() == STRIPE_KEY

    assert after[("acme", "STRIPE")][:3] == ("UNHEALTHY", "401 for key (sensitive)", NOW)
    assert after[("acme", "HUBSPOT")][:3] == ("HEALTHY", "HTTP 200", NOW)
    assert after[("globex", "QUICKBOOKS")][:3] == ("DEGRADED", "slow", NOW)
    for untouched in (("inactive", "STRIPE"), ("gone", "STRIPE")):
        assert after[untouched] == before[untouched]
    # Runtime-owned fields only: row_version and updated_at keep tracking configuration.
    for key in before:
        assert after[key][3:] == before[key][3:]
    assert STRIPE_KEY not in repr(result.to_dict())
    assert result.counts() == {"HEALTHY": 1, "DEGRADED": 1, "UNHEALTHY": 1, "UNKNOWN": 0}

    updates = [s for s in statements if s.startswith("UPDATE integration_configs")]
    assert len(updates) == 1  # one statement for all rows


def test_open_circuits_past_their_reset_time_become_half_open(
    seeded: sa.Engine, database_url: str
) -> None:
    result = run_health_check(
        selectors=Selectors(tenants=("acme",)),
        probe=FakeProbe(ANSWERS),
        database_url=database_url,
        now=NOW,
        environ=ENVIRON,
    )
    assert [t.address for t in result.transitions] == [
        "acme/stripe/production/webhook/default-reset",
        "acme/stripe/production/webhook/due",
    ]
    assert _circuits(seeded) == {
        ("acme", "due"): ("HALF_OPEN", 3),
        ("acme", "not-yet"): ("OPEN", 3),
        ("acme", "default-reset"): ("HALF_OPEN", 3),
        ("acme", "no-opened-at"): ("OPEN", 3),
        ("acme", "closed"): ("CLOSED", 3),
        ("other", "due"): ("OPEN", 3),  # not selected
    }
    # Only the selected tenant's integrations were checked.
    assert {i.tenant_id for i in result.integrations} == {"acme"}


def test_dry_run_reports_and_writes_nothing(seeded: sa.Engine, database_url: str) -> None:
    before = (_health(seeded), _circuits(seeded))
    result = run_health_check(
        probe=FakeProbe(ANSWERS),
        dry_run=True,
        database_url=database_url,
        now=NOW,
        environ=ENVIRON,
    )
    assert (_health(seeded), _circuits(seeded)) == before
    assert result.dry_run
    assert len(result.integrations) == 3
    assert [t.address for t in result.transitions] == [
        "acme/stripe/production/webhook/default-reset",
        "acme/stripe/production/webhook/due",
        "other/stripe/production/webhook/due",
    ]


def test_undecryptable_credential_is_unknown_not_a_crash(
    engine: sa.Engine, database_url: str
) -> None:
    with engine.begin() as conn:
        _insert_integration(conn, "acme", "STRIPE", "API_KEY", api_key=STRIPE_KEY, key_version=9)
    probe = FakeProbe(ANSWERS)
    result = run_health_check(probe=probe, database_url=database_url, now=NOW, environ=ENVIRON)
    assert probe.seen == []
    (checked,) = result.integrations
    assert checked.status is HealthStatus.UNKNOWN
    assert "key version 9" in checked.message and STRIPE_KEY not in checked.message
    assert _health(engine)[("acme", "STRIPE")][0] == "UNKNOWN"


def test_replayed_credential_is_not_probed(engine: sa.Engine, database_url: str) -> None:
    """An earlier key copied back into the row is never sent to the platform."""
    with engine.begin() as conn:
        _insert_integration(conn, "acme", "STRIPE", "API_KEY", api_key=STRIPE_KEY)
        earlier = conn.execute(sa.text("SELECT api_key FROM integration_configs")).scalar_one()
        conn.execute(sa.text("DELETE FROM integration_configs"))
        _insert_integration(conn, "acme", "STRIPE", "API_KEY", api_key=STRIPE_KEY + "later")
        conn.execute(sa.text("UPDATE integration_configs SET api_key = :k"), {"k": earlier})
    probe = FakeProbe(ANSWERS)
    result = run_health_check(probe=probe, database_url=database_url, now=NOW, environ=ENVIRON)
    assert probe.seen == []
    (checked,) = result.integrations
    assert checked.status is HealthStatus.UNKNOWN
    assert "api_key does not match its fingerprint" in checked.message
    assert STRIPE_KEY not in checked.message and earlier not in checked.message


def test_a_probe_that_raises_costs_one_row(engine: sa.Engine, database_url: str) -> None:
    class Broken:
        def probe(self, target: ProbeTarget) -> ProbeResult:
            raise RuntimeError(f"boom {target.api_key.reveal() if target.api_key else ''}")

    with engine.begin() as conn:
        _insert_integration(conn, "acme", "STRIPE", "API_KEY", api_key=STRIPE_KEY)
    result = run_health_check(probe=Broken(), database_url=database_url, now=NOW, environ=ENVIRON)
    (checked,) = result.integrations
    assert checked.status is HealthStatus.UNKNOWN
    assert checked.message == "the health probe failed (RuntimeError)"


def _insert_token(
    conn: sa.Connection, tenant: str, platform: str, account: str, access_token: str
) -> int:
    column = "hubspot_portal_id" if platform == "HUBSPOT" else "quickbooks_realm_id"
    token_id: int = conn.execute(
        sa.text(
            f"""INSERT INTO oauth_tokens (tenant_id, platform, access_token,
                    encryption_key_version, {column})
                VALUES (:t, CAST(:p AS platform), '', 1, :a) RETURNING id"""
        ),
        {"t": tenant, "p": platform, "a": account},
    ).scalar_one()
    fingerprinter = Fingerprinter.from_base64(ENVIRON["RECONCILER_FINGERPRINT_KEY"], source="test")
    cipher = FieldCipher(Keyring.parse(ENVIRON["RECONCILER_KEYRING"], source="test"), fingerprinter)
    sealed = cipher.encrypt(
        access_token, CipherContext.oauth_token(tenant, token_id, "access_token"), None
    )
    conn.execute(
        sa.text("UPDATE oauth_tokens SET access_token = :s WHERE id = :i"),
        {"s": sealed, "i": token_id},
    )
    return token_id


def test_oauth_integrations_are_checked_with_the_connected_accounts_token(
    engine: sa.Engine, database_url: str
) -> None:
    hubspot_token = "CJSP" + "HealthOAuthCanaryHubSpot"
    quickbooks_token = "eyJ" + "HealthOAuthCanaryQuickBooks"
    with engine.begin() as conn:
        _insert_integration(conn, "acme", "HUBSPOT", "OAUTH", api_key="client-id")
        _insert_integration(conn, "acme", "QUICKBOOKS", "OAUTH", api_key="client-id")
        _insert_integration(conn, "globex", "QUICKBOOKS", "OAUTH", api_key="client-id")
        _insert_token(conn, "acme", "HUBSPOT", "48213907", hubspot_token)
        _insert_token(conn, "acme", "QUICKBOOKS", "9130349876543210", quickbooks_token)
    answers = {
        "/oauth/v1/access-tokens/": (200, 0.0),
        "/v3/company/": (401, 0.0),
    }
    with fake_platform(answers) as server:
        urls = BaseUrls(hubspot=server.url, quickbooks_production=server.url)
        result = run_health_check(
            database_url=database_url, now=NOW, environ=ENVIRON, base_urls=urls, timeout=2
        )
    verdicts = {i.address: (i.status, i.message) for i in result.integrations}
    assert verdicts["acme/hubspot/production/integration/OAUTH"][0] is HealthStatus.HEALTHY
    quickbooks = verdicts["acme/quickbooks/production/integration/OAUTH"]
    assert quickbooks[0] is HealthStatus.UNHEALTHY and "HTTP 401" in quickbooks[1]
    # No connected account: nothing to call, said so.
    globex = verdicts["globex/quickbooks/production/integration/OAUTH"]
    assert globex[0] is HealthStatus.UNKNOWN and "no connected account" in globex[1]
    assert sorted(path for path, _ in server.seen) == [
        f"/oauth/v1/access-tokens/{hubspot_token}",
        "/v3/company/9130349876543210/companyinfo/9130349876543210",
    ]
    assert (
        "/v3/company/9130349876543210/companyinfo/9130349876543210",
        f"Bearer {quickbooks_token}",
    ) in server.seen
    text = repr(result.to_dict()) + repr(_health(engine))
    assert hubspot_token not in text and quickbooks_token not in text
