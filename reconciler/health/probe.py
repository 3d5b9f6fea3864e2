"""Probing an integration's credentials against its platform: the only network code.

:class:`HealthProbe` is the seam: :func:`reconciler.health.check.run_health_check` takes any
object with a ``probe(target)`` method, so tests pass an in-memory fake and the core never
opens a socket. :class:`HttpsProbe` is the real one:

* Stripe (a secret ``sk_`` or restricted ``rk_`` key): ``GET {stripe}/v1/balance``, the
  cheapest authenticated read, with the key as bearer token;
* HubSpot private-app token (``pat-``): ``GET {hubspot}/account-info/v3/details``;
* HubSpot OAuth (the connected portal's access token, from ``oauth_tokens``): the token
  introspection ``GET {hubspot}/oauth/v1/access-tokens/<token>``;
* QuickBooks OAuth (the connected realm's access token): the company info
  ``GET {quickbooks}/v3/company/<realm>/companyinfo/<realm>``, on the production or the
  sandbox root by the integration's environment;
* anything else (OAuth client credentials with no connected account): ``UNKNOWN``, said so.

The roots come from :class:`~reconciler.settings.BaseUrls` (``health.base_urls`` in
``reconciler.yaml``). URLs are never part of a message (the introspection URL holds the
token): only the host is.

A probe never raises for network or platform trouble: it returns ``UNKNOWN`` (no answer:
DNS, refused, timed out, offline) or ``UNHEALTHY``/``DEGRADED`` (an answer that says so).
Messages are built from fixed text, the host and the HTTP status; the credential is never
part of one (and is scrubbed from any library text as a second line of defence).
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from reconciler.model.enums import ConfigType, Environment, HealthStatus, Platform
from reconciler.model.sensitive import MASK, Sensitive
from reconciler.settings import BaseUrls

MAX_MESSAGE = 500
"""``health_message`` is cut to this many characters."""

STRIPE_BALANCE_PATH = "/v1/balance"
HUBSPOT_ACCOUNT_PATH = "/account-info/v3/details"
HUBSPOT_INTROSPECTION_PATH = "/oauth/v1/access-tokens/"
STRIPE_BALANCE_URL = BaseUrls().stripe + STRIPE_BALANCE_PATH
HUBSPOT_ACCOUNT_URL = BaseUrls().hubspot + HUBSPOT_ACCOUNT_PATH
_USER_AGENT = "reconciler-health-check"


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """One active integration to check, with its decrypted credentials (memory only).

    Attributes:
        tenant_id: the tenant.
        platform: the platform.
        environment: the environment.
        config_type: the integration's config type.
        api_key: the decrypted ``api_key`` (``None`` when the row has none).
        api_secret: the decrypted ``api_secret`` (``None`` when the row has none).
        access_token: the connected account's decrypted OAuth access token (HubSpot and
            QuickBooks OAuth integrations), ``None`` when no account is connected.
        account_id: the connected account (HubSpot portal id, QuickBooks realm id).
    """

    tenant_id: str
    platform: Platform
    environment: Environment
    config_type: ConfigType
    api_key: Sensitive[str] | None = None
    api_secret: Sensitive[str] | None = None
    access_token: Sensitive[str] | None = None
    account_id: str | None = None

    @property
    def credentials(self) -> tuple[Sensitive[str] | None, ...]:
        """Every credential the target carries (``None`` where it has none)."""
        return (self.api_key, self.api_secret, self.access_token)

    @property
    def address(self) -> str:
        """``tenant/platform/environment/integration/CONFIG_TYPE`` as plans print it."""
        return (
            f"{self.tenant_id}/{self.platform.file_stem}/{self.environment.manifest_key}"
            f"/integration/{self.config_type.value}"
        )


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The verdict on one integration.

    Attributes:
        status: HEALTHY, DEGRADED, UNHEALTHY or UNKNOWN.
        message: one line for ``health_message``; never contains a credential.
        http_status: the platform's HTTP status, when it answered.
        answered: False when the platform could not be reached (DNS, refused, offline,
            timed out): the credential was not judged.
    """

    status: HealthStatus
    message: str
    http_status: int | None = None
    answered: bool = True

    @property
    def rejected(self) -> bool:
        """The platform refused the credential (HTTP 401 or 403)."""
        return self.http_status in (401, 403)


class HealthProbe(Protocol):
    """Decides the health of one integration. Must not raise for network trouble."""

    def probe(self, target: ProbeTarget) -> ProbeResult:
        """Check ``target`` and return the verdict."""
        ...


@dataclass(frozen=True, slots=True)
class HttpCall:
    """An authenticated GET the probe will make (the token is sent as a bearer header)."""

    url: str
    token: Sensitive[str] | None
    """Sent as bearer token; ``None`` when the URL itself carries it (introspection)."""
    secret: Sensitive[str] | None = None
    """The credential checked, scrubbed from any library text."""

    @property
    def host(self) -> str:
        """The host name, for messages."""
        return self.url.split("/")[2]


def plan_call(target: ProbeTarget, urls: BaseUrls | None = None) -> HttpCall | ProbeResult:
    """The request that checks ``target``, or the verdict when no request can (pure)."""
    roots = urls or BaseUrls()
    key = target.api_key.reveal() if target.api_key is not None else None
    if target.platform is Platform.STRIPE:
        if key is None:
            return ProbeResult(HealthStatus.UNKNOWN, "no API key stored; nothing to check")
        if key.startswith(("sk_", "rk_")):
            return HttpCall(roots.stripe + STRIPE_BALANCE_PATH, Sensitive(key))
        if key.startswith("pk_"):
            return ProbeResult(
                HealthStatus.UNHEALTHY,
                "a publishable key (pk_) is stored; API calls need a secret or restricted key",
            )
        return ProbeResult(
            HealthStatus.UNKNOWN, "the stored key is not a Stripe secret key (sk_/rk_)"
        )
    if target.platform is Platform.HUBSPOT and key is not None and key.startswith("pat-"):
        return HttpCall(roots.hubspot + HUBSPOT_ACCOUNT_PATH, Sensitive(key))
    token = target.access_token
    if target.platform is Platform.HUBSPOT and token is not None:
        quoted = urllib.parse.quote(token.reveal(), safe="")
        return HttpCall(roots.hubspot + HUBSPOT_INTROSPECTION_PATH + quoted, None, token)
    if target.platform is Platform.QUICKBOOKS and token is not None:
        if not target.account_id:
            return ProbeResult(
                HealthStatus.UNKNOWN, "the connected QuickBooks token has no realm id"
            )
        realm = urllib.parse.quote(target.account_id, safe="")
        root = roots.quickbooks(target.environment.value)
        return HttpCall(f"{root}/v3/company/{realm}/companyinfo/{realm}", token)
    if target.platform in (Platform.HUBSPOT, Platform.QUICKBOOKS) and (
        target.config_type is ConfigType.OAUTH
    ):
        return ProbeResult(
            HealthStatus.UNKNOWN,
            "no connected account: the OAuth flow has stored no active access token for this "
            "tenant and platform",
        )
    if key is None and target.api_secret is None:
        return ProbeResult(HealthStatus.UNKNOWN, "no credentials stored; nothing to check")
    return ProbeResult(
        HealthStatus.UNKNOWN,
        "only OAuth client credentials are stored; API calls need the connected account's "
        "access token, which the OAuth flow checks",
    )


def classify_response(
    call: HttpCall, status_code: int, elapsed: float, timeout: float
) -> ProbeResult:
    """The verdict for an HTTP answer (pure)."""
    result = _classify(call, status_code, elapsed, timeout)
    return ProbeResult(result.status, result.message, http_status=status_code)


def _classify(call: HttpCall, status_code: int, elapsed: float, timeout: float) -> ProbeResult:
    host = call.host
    if 200 <= status_code < 300:
        millis = round(elapsed * 1000)
        if elapsed > timeout / 2:
            return ProbeResult(
                HealthStatus.DEGRADED, f"HTTP {status_code} from {host}, but slow ({millis} ms)"
            )
        return ProbeResult(HealthStatus.HEALTHY, f"HTTP {status_code} from {host} in {millis} ms")
    if status_code == 401:
        return ProbeResult(
            HealthStatus.UNHEALTHY,
            f"authentication failed at {host} (HTTP 401): the credential is wrong, expired or "
            "revoked",
        )
    if status_code == 403:
        return ProbeResult(
            HealthStatus.DEGRADED,
            f"authenticated at {host} but not allowed to read the check endpoint (HTTP 403): "
            "check the key's permissions",
        )
    if status_code == 429:
        return ProbeResult(HealthStatus.DEGRADED, f"rate limited by {host} (HTTP 429)")
    if status_code >= 500:
        return ProbeResult(
            HealthStatus.DEGRADED, f"{host} answered with an error (HTTP {status_code})"
        )
    return ProbeResult(
        HealthStatus.UNHEALTHY, f"unexpected answer from {host} (HTTP {status_code})"
    )


Opener = Callable[[urllib.request.Request, float], int]
"""Sends a request with a timeout and returns the HTTP status (raises urllib errors)."""


def _urlopen(request: urllib.request.Request, timeout: float) -> int:
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        status: int = response.status
        return status


class HttpsProbe:
    """The real probe: one HTTPS GET per checkable integration, bounded by ``timeout``.

    Args:
        timeout: seconds for connect plus answer.
        opener: how to send the request (default ``urllib.request.urlopen``); a test seam.
        base_urls: the platform API roots (default: the platforms' public ones).
    """

    def __init__(
        self,
        timeout: float = 10.0,
        opener: Opener | None = None,
        base_urls: BaseUrls | None = None,
    ) -> None:
        self.timeout = timeout
        self._open = opener or _urlopen
        self.base_urls = base_urls or BaseUrls()

    def __repr__(self) -> str:
        return f"HttpsProbe(timeout={self.timeout})"

    def probe(self, target: ProbeTarget) -> ProbeResult:
        """Check ``target``; network trouble is a verdict, not an exception."""
        planned = plan_call(target, self.base_urls)
        if isinstance(planned, ProbeResult):
            return planned
        checked = planned.secret or planned.token
        secret = checked.reveal() if checked is not None else None
        headers = {"User-Agent": _USER_AGENT, "Accept": "application/json"}
        if planned.token is not None:
            headers["Authorization"] = f"Bearer {planned.token.reveal()}"
        # The URL is a configured platform root (reconciler.yaml) and a fixed path.
        request = urllib.request.Request(planned.url, method="GET", headers=headers)  # noqa: S310
        started = time.monotonic()
        try:
            status = self._open(request, self.timeout)
        except urllib.error.HTTPError as exc:
            status = exc.code
        except TimeoutError:
            return _unanswered(f"no answer from {planned.host} within {self.timeout:g} s")
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                return _unanswered(f"no answer from {planned.host} within {self.timeout:g} s")
            return _unanswered(
                scrub(
                    f"network unreachable: cannot reach {planned.host} ({_reason(exc.reason)})",
                    secret,
                )
            )
        except http.client.HTTPException as exc:
            # The connection opened but no HTTP answer came back (cut off, garbled).
            return _unanswered(f"no usable answer from {planned.host} ({type(exc).__name__})")
        except OSError as exc:
            return _unanswered(
                scrub(f"network unreachable: cannot reach {planned.host} ({_reason(exc)})", secret)
            )
        return classify_response(planned, status, time.monotonic() - started, self.timeout)


def _unanswered(message: str) -> ProbeResult:
    return ProbeResult(HealthStatus.UNKNOWN, message, answered=False)


def _reason(reason: object) -> str:
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    text = " ".join(str(reason).split())
    return text or type(reason).__name__


def scrub(message: str, *secrets: str | None) -> str:
    """``message`` on one line, cut to :data:`MAX_MESSAGE`, with each secret masked."""
    text = " ".join(message.split())
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."
