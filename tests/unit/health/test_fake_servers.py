"""The real HTTPS probe against local fake platform servers: every answer a platform can give."""

from __future__ import annotations

import time

import pytest

from reconciler.health.check import MAX_PARALLEL_PROBES, _probe_all, _Row
from reconciler.health.probe import HttpsProbe, ProbeTarget
from reconciler.model.enums import ConfigType, Environment, HealthStatus, Platform
from reconciler.model.sensitive import Sensitive
from reconciler.settings import BaseUrls
from tests.fake_platform import closed_port, fake_platform, silent_port

SECRET_KEY = "sk_live_" + "FakeServerCanary01234567"
RESTRICTED_KEY = "rk_live_" + "FakeServerCanary01234567"
PRIVATE_APP = "pat-na1-" + "11111111-2222-3333-4444-555555555555"
ACCESS_TOKEN = "CJSP" + "FakeOAuthAccessTokenCanary/+="
REALM = "9130349876543210"


def _stripe(key: str) -> ProbeTarget:
    return ProbeTarget(
        "acme", Platform.STRIPE, Environment.PRODUCTION, ConfigType.API_KEY, Sensitive(key)
    )


def _oauth(platform: Platform, environment: Environment = Environment.PRODUCTION) -> ProbeTarget:
    return ProbeTarget(
        "acme",
        platform,
        environment,
        ConfigType.OAUTH,
        Sensitive("client-id"),
        Sensitive("client-secret"),
        access_token=Sensitive(ACCESS_TOKEN),
        account_id=REALM if platform is Platform.QUICKBOOKS else "48213907",
    )


def _probe(url: str, timeout: float = 2.0) -> HttpsProbe:
    return HttpsProbe(
        timeout=timeout,
        base_urls=BaseUrls(
            stripe=url, hubspot=url, quickbooks_production=url, quickbooks_sandbox=url + "/sbx"
        ),
    )


@pytest.mark.parametrize("key", [SECRET_KEY, RESTRICTED_KEY])
def test_stripe_secret_and_restricted_keys_are_checked_with_the_balance(key: str) -> None:
    with fake_platform({"/v1/balance": (200, 0.0)}) as server:
        result = _probe(server.url).probe(_stripe(key))
    assert (result.status, result.http_status, result.answered) == (HealthStatus.HEALTHY, 200, True)
    assert server.seen == [("/v1/balance", f"Bearer {key}")]
    assert key not in result.message and "127.0.0.1" in result.message


@pytest.mark.parametrize(
    ("status", "expected", "rejected", "words"),
    [
        (401, HealthStatus.UNHEALTHY, True, "authentication failed"),
        (403, HealthStatus.DEGRADED, True, "not allowed"),
        (429, HealthStatus.DEGRADED, False, "rate limited"),
        (500, HealthStatus.DEGRADED, False, "HTTP 500"),
        (503, HealthStatus.DEGRADED, False, "HTTP 503"),
    ],
)
def test_platform_answers(status: int, expected: HealthStatus, rejected: bool, words: str) -> None:
    with fake_platform({"/": (status, 0.0)}) as server:
        for target in (_stripe(SECRET_KEY), _oauth(Platform.HUBSPOT), _oauth(Platform.QUICKBOOKS)):
            result = _probe(server.url).probe(target)
            assert result.status is expected, target.platform
            assert (result.http_status, result.rejected, result.answered) == (
                status,
                rejected,
                True,
            )
            assert words in result.message
            assert SECRET_KEY not in result.message and ACCESS_TOKEN not in result.message


def test_slow_answer_is_degraded() -> None:
    with fake_platform({"/v1/balance": (200, 0.6)}) as server:
        result = _probe(server.url, timeout=1.0).probe(_stripe(SECRET_KEY))
    assert result.status is HealthStatus.DEGRADED and "slow" in result.message
    assert result.answered and not result.rejected


def test_answer_after_the_timeout_is_no_answer() -> None:
    with fake_platform({"/v1/balance": (200, 2.0)}) as server:
        started = time.monotonic()
        result = _probe(server.url, timeout=0.5).probe(_stripe(SECRET_KEY))
    assert time.monotonic() - started < 1.5
    assert (result.status, result.answered, result.http_status) == (
        HealthStatus.UNKNOWN,
        False,
        None,
    )
    assert "no answer" in result.message and SECRET_KEY not in result.message


def test_a_server_that_never_answers() -> None:
    with silent_port() as port:
        result = _probe(f"http://127.0.0.1:{port}", timeout=0.5).probe(_stripe(SECRET_KEY))
    assert (result.status, result.answered) == (HealthStatus.UNKNOWN, False)
    assert "no answer" in result.message


def test_nothing_listening_is_unreachable() -> None:
    port = closed_port()
    result = _probe(f"http://127.0.0.1:{port}").probe(_oauth(Platform.HUBSPOT))
    assert (result.status, result.answered, result.rejected) == (HealthStatus.UNKNOWN, False, False)
    assert result.message.startswith("network unreachable")
    assert ACCESS_TOKEN not in result.message


def test_hubspot_private_app_token() -> None:
    target = ProbeTarget(
        "acme", Platform.HUBSPOT, Environment.PRODUCTION, ConfigType.API_KEY, Sensitive(PRIVATE_APP)
    )
    with fake_platform({"/account-info/v3/details": (200, 0.0)}) as server:
        result = _probe(server.url).probe(target)
    assert result.status is HealthStatus.HEALTHY
    assert server.seen == [("/account-info/v3/details", f"Bearer {PRIVATE_APP}")]


def test_hubspot_oauth_token_is_introspected() -> None:
    with fake_platform({"/oauth/v1/access-tokens/": (200, 0.0)}) as server:
        result = _probe(server.url).probe(_oauth(Platform.HUBSPOT))
    assert result.status is HealthStatus.HEALTHY
    ((path, auth),) = server.seen
    # The token travels URL-quoted in the path (HubSpot's introspection), nowhere else.
    assert path == "/oauth/v1/access-tokens/CJSPFakeOAuthAccessTokenCanary%2F%2B%3D"
    assert auth is None
    assert ACCESS_TOKEN not in result.message and "access-tokens" not in result.message


@pytest.mark.parametrize(
    ("environment", "prefix"),
    [(Environment.PRODUCTION, ""), (Environment.SANDBOX, "/sbx"), (Environment.STAGING, "/sbx")],
)
def test_quickbooks_reads_the_realms_company_info(environment: Environment, prefix: str) -> None:
    with fake_platform({f"{prefix}/v3/company/": (200, 0.0)}) as server:
        result = _probe(server.url).probe(_oauth(Platform.QUICKBOOKS, environment))
    assert result.status is HealthStatus.HEALTHY
    assert server.seen == [
        (f"{prefix}/v3/company/{REALM}/companyinfo/{REALM}", f"Bearer {ACCESS_TOKEN}")
    ]


def test_oauth_integration_without_a_connected_account_is_not_probed() -> None:
    target = ProbeTarget(
        "acme",
        Platform.QUICKBOOKS,
        Environment.PRODUCTION,
        ConfigType.OAUTH,
        Sensitive("client-id"),
        Sensitive("client-secret"),
    )
    with fake_platform({"/": (200, 0.0)}) as server:
        result = _probe(server.url).probe(target)
    assert server.seen == []
    assert result.status is HealthStatus.UNKNOWN and "no connected account" in result.message


def test_probes_run_concurrently_but_bounded() -> None:
    rows = [
        _Row(i, _stripe(SECRET_KEY), HealthStatus.UNKNOWN, None)
        for i in range(MAX_PARALLEL_PROBES * 2 + 1)
    ]
    with fake_platform({"/v1/balance": (200, 0.3)}) as server:
        results = _probe_all(_probe(server.url), rows)
    assert [r.http_status for r in results] == [200] * len(rows)
    # Overlapping requests seen by the server: concurrent, never more than the bound (no
    # timing assertion, which a loaded machine would make flaky).
    assert 1 < server.most_active <= MAX_PARALLEL_PROBES
