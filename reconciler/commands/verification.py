"""Test connections before activation: probe the credentials an apply is about to write.

``apply --verify-connections`` (or ``apply: {verify_connections: true}`` in
``reconciler.yaml``) calls :func:`verify_connections` after the policy gate and before the
transaction. Every integration the plan creates, re-keys (a changed secret) or activates
(from inactive to active), and that is active as declared, is probed with its *new*
credentials against its platform, a few at a time, each bounded by
``health.timeout_seconds``:

* the platform refuses the credential (HTTP 401 or 403): :class:`ConnectionRejected`
  (exit 4), naming each such integration and the answer; nothing is written;
* the platform does not answer (DNS, refused, offline, timed out):
  ``apply.verify_connections_unreachable`` decides: ``warn`` (the default) prints a warning
  and goes on, ``block`` raises :class:`ConnectionUnreachable` (exit 4);
* any other answer (429, 5xx) is a warning: the platform answered, but did not confirm the
  credential;
* credentials no request can check (OAuth client credentials, whose calls need a connected
  account's token) are skipped.

The probe sees the plaintext in memory only; every message is built from the address, the
host and the HTTP status, and scrubbed of the credential.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TextIO, TypedDict, Unpack

from reconciler.errors import ConnectionRejected, ConnectionUnreachable
from reconciler.health.probe import (
    HealthProbe,
    HttpsProbe,
    ProbeResult,
    ProbeTarget,
    plan_call,
    scrub,
)
from reconciler.model.desired import DesiredIntegration, DesiredState
from reconciler.model.enums import HealthStatus
from reconciler.model.fields import ACTIVE, INTEGRATION_SECRETS
from reconciler.model.plan import Action, Change, Plan, ResourceKind
from reconciler.progress import QUIET, Progress
from reconciler.settings import Settings

MAX_PARALLEL_TESTS = 8


@dataclass(frozen=True, slots=True)
class ConnectionTest:
    """The outcome of testing one integration's new credentials.

    Attributes:
        address: the integration's plan address.
        source: the manifest declaring it.
        result: the probe's verdict (its message never holds a credential).
    """

    address: str
    source: str | None
    result: ProbeResult

    @property
    def where(self) -> str:
        """The address, with the manifest that declares it."""
        return f"{self.address} ({self.source})" if self.source else self.address

    @property
    def outcome(self) -> str:
        """``passed``, ``rejected``, ``unreachable`` or ``unconfirmed``."""
        if self.result.rejected:
            return "rejected"
        if not self.result.answered:
            return "unreachable"
        if self.result.status is HealthStatus.HEALTHY:
            return "passed"
        return "unconfirmed"


def to_verify(plan: Plan, desired: DesiredState) -> list[tuple[Change, DesiredIntegration]]:
    """The plan's integrations whose credentials are new, changed or being activated (pure)."""
    declared = {str(i.address): i for i in desired.integrations}
    out = []
    for change in plan.changes:
        integration = declared.get(str(change.address))
        if change.address.kind is not ResourceKind.INTEGRATION or integration is None:
            continue
        writes = change.action in (Action.CREATE, Action.UPDATE)
        if not writes or not ACTIVE.read_desired(integration):
            continue
        rekeyed = any(f.field in INTEGRATION_SECRETS for f in change.fields)
        activated = any(f.field == ACTIVE.name and f.after is True for f in change.fields)
        if change.action is Action.CREATE or rekeyed or activated:
            out.append((change, integration))
    return out


def _target(integration: DesiredIntegration) -> ProbeTarget:
    def value(name: str) -> Any:
        secret = getattr(integration, name)
        return None if secret is None else secret.value

    return ProbeTarget(
        integration.tenant_id,
        integration.platform,
        integration.environment,
        integration.config_type,
        **{name: value(name) for name in INTEGRATION_SECRETS},
    )


def probe_connections(
    plan: Plan,
    desired: DesiredState,
    settings: Settings,
    *,
    probe: HealthProbe | None = None,
    progress: Progress = QUIET,
) -> list[ConnectionTest]:
    """Probe the credentials the plan writes (see the module docstring); never raises.

    ``desired`` must hold the plaintext of those credentials (``with_plaintext``).
    """
    prober = probe or HttpsProbe(
        timeout=settings.health_timeout_seconds, base_urls=settings.base_urls
    )
    targets = [(change, _target(integration)) for change, integration in to_verify(plan, desired)]
    pending = [
        (change, target)
        for change, target in targets
        if not isinstance(plan_call(target, settings.base_urls), ProbeResult)
    ]
    if not pending:
        return []

    def run(item: tuple[Change, ProbeTarget]) -> ConnectionTest:
        change, target = item
        try:
            result = prober.probe(target)
        except Exception as exc:  # a bug in a probe: not a verdict on the credential
            result = ProbeResult(
                HealthStatus.UNKNOWN, f"the probe failed ({type(exc).__name__})", answered=False
            )
        plain = [s.reveal() for s in target.credentials if s is not None]
        safe = ProbeResult(
            result.status, scrub(result.message, *plain), result.http_status, result.answered
        )
        return ConnectionTest(str(change.address), change.source, safe)

    with progress.stage(f"Testing {len(pending)} connection(s)", len(pending), unit="connection"):
        workers = min(MAX_PARALLEL_TESTS, len(pending))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify") as pool:
            return list(pool.map(run, pending))


class Probing(TypedDict, total=False):
    """How :func:`probe_connections` tests, as keyword arguments :func:`verify_connections`
    passes on: ``probe`` (default HTTPS) and ``progress``."""

    probe: HealthProbe | None
    progress: Progress


def verify_connections(
    plan: Plan,
    desired: DesiredState,
    settings: Settings,
    *,
    stderr: TextIO | None = None,
    **probing: Unpack[Probing],
) -> list[ConnectionTest]:
    """When ``settings.verify_connections``: test the plan's new credentials, refuse on failure.

    Raises:
        ConnectionRejected: a platform refused a credential (HTTP 401/403).
        ConnectionUnreachable: a platform did not answer, and the policy is ``block``.
    """
    if not settings.verify_connections:
        return []
    tests = probe_connections(plan, desired, settings, **probing)
    out = sys.stderr if stderr is None else stderr
    rejected = [t for t in tests if t.outcome == "rejected"]
    unreachable = [t for t in tests if t.outcome == "unreachable"]
    if rejected:
        lines = [f"{t.where}: {t.result.message}" for t in rejected]
        raise ConnectionRejected(
            f"connection test failed for {len(rejected)} credential(s); nothing written\n"
            + "\n".join(lines)
        )
    if unreachable and settings.verify_connections_unreachable == "block":
        lines = [f"{t.where}: {t.result.message}" for t in unreachable]
        raise ConnectionUnreachable(
            f"cannot test {len(unreachable)} credential(s): the platform did not answer "
            "(apply.verify_connections_unreachable: block); nothing written\n" + "\n".join(lines)
        )
    for t in tests:
        if t.outcome == "unreachable":
            print(f"warning: connection not tested: {t.where}: {t.result.message}", file=out)
        elif t.outcome == "unconfirmed":
            print(f"warning: connection not confirmed: {t.where}: {t.result.message}", file=out)
    return tests
