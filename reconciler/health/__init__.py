"""Runtime health: integration health checks, circuit-breaker transitions and their reports.

The reconciler owns configuration; the fields here are *runtime-owned* (``health_status``,
``health_message``, ``last_health_check_at``, ``circuit_breaker_status``): manifests never
set them and plans never show them. This package writes them without bumping
the row's version, so a health check never makes a saved plan stale.

* :mod:`reconciler.health.probe`: the :class:`HealthProbe` protocol and the real HTTPS probe
  (``urllib.request`` with a timeout, API roots from ``health.base_urls``). Tests use an
  in-memory probe or local fake servers; the network stays out of everything else. The
  same probe tests new credentials before an apply
  (:mod:`reconciler.commands.verification`).
* :mod:`reconciler.health.check`: ``reconciler health check``: probe the selected active
  integrations, write the results set-based, move circuits that stayed OPEN longer than
  their reset time to HALF_OPEN.
* :mod:`reconciler.health.reports`: ``reconciler report health|circuits``: read-only.
"""

from __future__ import annotations

from reconciler.health.check import CheckedIntegration, HealthCheckResult, run_health_check
from reconciler.health.probe import HealthProbe, HttpsProbe, ProbeResult, ProbeTarget
from reconciler.health.reports import (
    CircuitReport,
    HealthReport,
    circuit_report,
    health_report,
)

__all__ = [
    "CheckedIntegration",
    "CircuitReport",
    "HealthCheckResult",
    "HealthProbe",
    "HealthReport",
    "HttpsProbe",
    "ProbeResult",
    "ProbeTarget",
    "circuit_report",
    "health_report",
    "run_health_check",
]
