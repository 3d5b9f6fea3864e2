"""The HTTPS probe's decisions, through its opener seam and through real urllib (no internet)."""

from __future__ import annotations

import errno
import urllib.error
import urllib.request
from email.message import Message

import pytest

from reconciler.health import probe as probe_module
from reconciler.health.probe import HttpsProbe, ProbeTarget, plan_call
from reconciler.model.enums import ConfigType, Environment, HealthStatus, Platform
from reconciler.model.sensitive import Sensitive
from reconciler.settings import BaseUrls

KEY = "sk_live_" + "ProbeCanary0123456789"


def _target(platform: Platform, key: str | None, secret: str | None = None) -> ProbeTarget:
    return ProbeTarget(
        "acme",
        platform,
        Environment.PRODUCTION,
        ConfigType.API_KEY if platform is Platform.STRIPE else ConfigType.OAUTH,
        Sensitive(key) if key is not None else None,
        Sensitive(secret) if secret is not None else None,
    )


def _answer(status: int) -> HttpsProbe:
    def opener(request: urllib.request.Request, timeout: float) -> int:
        assert request.get_header("Authorization") == f"Bearer {KEY}"
        if status >= 400:
            raise urllib.error.HTTPError(request.full_url, status, "x", Message(), None)
        return status

    return HttpsProbe(timeout=5, opener=opener)


@pytest.mark.parametrize(
    ("status", "expected", "words"),
    [
        (200, HealthStatus.HEALTHY, "HTTP 200 from api.stripe.com"),
        (401, HealthStatus.UNHEALTHY, "authentication failed"),
        (403, HealthStatus.DEGRADED, "not allowed"),
        (429, HealthStatus.DEGRADED, "rate limited"),
        (503, HealthStatus.DEGRADED, "HTTP 503"),
        (404, HealthStatus.UNHEALTHY, "unexpected answer"),
    ],
)
def test_http_answers(status: int, expected: HealthStatus, words: str) -> None:
    result = _answer(status).probe(_target(Platform.STRIPE, KEY))
    assert result.status is expected
    assert words in result.message and KEY not in result.message


@pytest.mark.parametrize(
    "error",
    [
        urllib.error.URLError(OSError(errno.ENETUNREACH, "Network is unreachable")),
        urllib.error.URLError(TimeoutError("timed out")),
        TimeoutError("timed out"),
        ConnectionResetError(errno.ECONNRESET, f"reset while sending {KEY}"),
    ],
)
def test_no_answer_is_unknown_without_the_secret(error: Exception) -> None:
    def opener(request: urllib.request.Request, timeout: float) -> int:
        raise error

    result = HttpsProbe(timeout=2, opener=opener).probe(_target(Platform.STRIPE, KEY))
    assert result.status is HealthStatus.UNKNOWN
    assert "api.stripe.com" in result.message and KEY not in result.message


def test_real_urllib_against_a_closed_port() -> None:
    urls = BaseUrls(stripe="https://127.0.0.1:9")
    result = HttpsProbe(timeout=2, base_urls=urls).probe(_target(Platform.STRIPE, KEY))
    assert result.status is HealthStatus.UNKNOWN
    assert result.message.startswith("network unreachable: cannot reach 127.0.0.1:9")
    assert KEY not in result.message


def test_what_can_be_checked() -> None:
    stripe = plan_call(_target(Platform.STRIPE, KEY))
    assert not isinstance(stripe, probe_module.ProbeResult)
    assert stripe.url == "https://api.stripe.com/v1/balance"
    hubspot = plan_call(_target(Platform.HUBSPOT, "pat-na1-" + "0" * 36))
    assert not isinstance(hubspot, probe_module.ProbeResult)
    assert hubspot.url == "https://api.hubapi.com/account-info/v3/details"

    for target, status, words in [
        (_target(Platform.HUBSPOT, "client-id", "client-secret"), "UNKNOWN", "no connected"),
        (_target(Platform.QUICKBOOKS, "client-id", "client-secret"), "UNKNOWN", "no connected"),
        (_target(Platform.STRIPE, None), "UNKNOWN", "no API key"),
        (_target(Platform.QUICKBOOKS, None), "UNKNOWN", "no connected account"),
        (_target(Platform.STRIPE, "pk_live_abc"), "UNHEALTHY", "publishable"),
    ]:
        verdict = plan_call(target)
        assert isinstance(verdict, probe_module.ProbeResult)
        assert (verdict.status.value, words in verdict.message) == (status, True)


def test_slow_success_is_degraded() -> None:
    call = plan_call(_target(Platform.STRIPE, KEY))
    assert not isinstance(call, probe_module.ProbeResult)
    slow = probe_module.classify_response(call, 200, elapsed=4.0, timeout=5.0)
    assert slow.status is HealthStatus.DEGRADED and "slow" in slow.message
