"""``reconciler report health|circuits``: read-only views of runtime health.

The reports and their queries live in :mod:`reconciler.store.reports`; this module names
them for the health package.
"""

from __future__ import annotations

from reconciler.store.reports import (
    CircuitReport,
    HealthReport,
    OpenCircuit,
    PlatformCircuits,
    UnhealthyIntegration,
    circuit_report,
    health_report,
)

__all__ = [
    "CircuitReport",
    "HealthReport",
    "OpenCircuit",
    "PlatformCircuits",
    "UnhealthyIntegration",
    "circuit_report",
    "health_report",
]
