"""``report health`` and ``report circuits``: read-only views of runtime health."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.model.enums import Platform
from reconciler.store import reports
from reconciler.store.reports import CircuitReport, HealthReport
from reconciler.store.session import connect


def health_report(
    *, platforms: Sequence[Platform] = (), database_url: str | None = None
) -> HealthReport:
    """Active integrations per health status, and the DEGRADED/UNHEALTHY ones.

    Reads in a read-only transaction.
    """
    with connect(database_url, "report health") as conn:
        reports.set_read_only(conn)
        return reports.health_report(conn, _ordered(platforms))


def circuit_report(
    *, platforms: Sequence[Platform] = (), database_url: str | None = None
) -> CircuitReport:
    """Webhook circuit breakers per platform, and every circuit that is not CLOSED.

    Reads in a read-only transaction.
    """
    with connect(database_url, "report circuits") as conn:
        reports.set_read_only(conn)
        return reports.circuit_report(conn, _ordered(platforms))


def _ordered(platforms: Sequence[Platform]) -> tuple[Platform, ...]:
    return tuple(sorted(set(platforms), key=lambda p: p.value))
