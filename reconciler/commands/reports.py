"""``report health`` and ``report circuits``: read-only views of runtime health."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from reconciler.model.enums import Platform
from reconciler.store import reports
from reconciler.store.reports import CircuitReport, HealthReport
from reconciler.store.session import Connection, connect

_Report = TypeVar("_Report")


def health_report(
    *, platforms: Sequence[Platform] = (), database_url: str | None = None
) -> HealthReport:
    """Active integrations per health status, and the DEGRADED/UNHEALTHY ones (read-only)."""
    return _read_only("report health", reports.health_report, platforms, database_url)


def circuit_report(
    *, platforms: Sequence[Platform] = (), database_url: str | None = None
) -> CircuitReport:
    """Webhook circuit breakers per platform, and every circuit that is not CLOSED (read-only)."""
    return _read_only("report circuits", reports.circuit_report, platforms, database_url)


def _read_only(
    purpose: str,
    read: Callable[[Connection, tuple[Platform, ...]], _Report],
    platforms: Sequence[Platform],
    database_url: str | None,
) -> _Report:
    """``read`` the ``platforms`` (sorted, each once) in a read-only transaction."""
    with connect(database_url, purpose) as conn:
        reports.set_read_only(conn)
        return read(conn, tuple(sorted(set(platforms), key=lambda p: p.value)))
