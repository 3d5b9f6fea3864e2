"""The queries of ``reconciler report health|circuits``: read-only views of runtime health.

Built on the monitoring queries the schema's indexes serve (health per integration, open
and half-open circuits per webhook), with soft-deleted rows left out and context added:

* health: integrations per health status and platform, and the DEGRADED/UNHEALTHY active
  integrations with their messages and when they were last checked;
* circuits: per platform the OPEN and HALF_OPEN counts and the average consecutive
  failures (active webhooks), and every webhook whose circuit is not CLOSED, with when an
  OPEN one becomes eligible for HALF_OPEN (``circuit_opened_at`` plus the webhook's
  reset time; ``reconciler health check`` makes that move).

Each report is one read-only transaction of a few grouped queries; nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from reconciler.jsonform import json_form, json_value
from reconciler.model.enums import CircuitBreakerStatus, HealthStatus, Platform

from .health import reset_seconds
from .row_state import SWITCHED_ON, active_live, not_deleted

_PLATFORM = """(cardinality(CAST(:platforms AS text[])) = 0
    OR CAST(platform AS text) = ANY(CAST(:platforms AS text[])))"""
_ACTIVE = f"{active_live()} AND {_PLATFORM}"
"""Active, not deleted rows of the selected platforms."""

_HEALTH_COUNTS = f"""
SELECT platform::text, health_status::text, count(*)
FROM integration_configs
WHERE {_ACTIVE}
GROUP BY platform, health_status
"""

# The "Health Checks" query, plus identity columns and the last check time.
_UNHEALTHY = f"""
SELECT tenant_id, platform::text, environment::text, config_type::text, health_status::text,
       health_message, last_health_check_at
FROM integration_configs
WHERE health_status IN ('DEGRADED', 'UNHEALTHY')
  AND {_ACTIVE}
ORDER BY health_status DESC, tenant_id, platform, environment, config_type
"""

# The "Circuit Breaker Monitoring" query, plus the webhook count per platform.
_CIRCUIT_SUMMARY = f"""
SELECT platform::text,
       COUNT(*) AS webhooks,
       COUNT(*) FILTER (WHERE circuit_breaker_status = 'OPEN') AS open_circuits,
       COUNT(*) FILTER (WHERE circuit_breaker_status = 'HALF_OPEN') AS half_open,
       AVG(consecutive_failures) AS avg_failures
FROM webhook_configurations
WHERE {_ACTIVE}
GROUP BY platform
"""

_NOT_CLOSED = f"""
SELECT tenant_id, platform::text, environment::text, name, circuit_breaker_status::text,
       consecutive_failures, circuit_breaker_threshold, circuit_opened_at,
       {reset_seconds()}, last_failure_at,
       {SWITCHED_ON}
FROM webhook_configurations
WHERE circuit_breaker_status <> 'CLOSED' AND {not_deleted()} AND {_PLATFORM}
ORDER BY circuit_breaker_status, tenant_id, platform, environment, name
"""


def set_read_only(conn: sa.Connection) -> None:
    """``SET TRANSACTION READ ONLY``: a report can never write, even by mistake."""
    conn.execute(sa.text("SET TRANSACTION READ ONLY"))


def _params(platforms: Sequence[Platform]) -> dict[str, Any]:
    return {"platforms": [p.value for p in platforms]}


def _platform_order(platforms: Sequence[Platform]) -> list[Platform]:
    return list(platforms) if platforms else sorted(Platform, key=lambda p: p.value)


# --------------------------------------------------------------------------- health


@dataclass(frozen=True, slots=True)
class UnhealthyIntegration:
    """An active integration whose last check said DEGRADED or UNHEALTHY."""

    tenant_id: str
    platform: Platform
    environment: str
    config_type: str
    status: HealthStatus
    message: str | None
    last_checked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return json_form(
            self,
            (
                ("tenant", "tenant_id"),
                *("platform", "environment", "config_type", "status", "message"),
                ("last_health_check_at", "last_checked_at"),
            ),
        )


@dataclass(frozen=True, slots=True)
class HealthReport:
    """``reconciler report health``.

    Attributes:
        counts: per platform, active integrations per health status (every status listed).
        unhealthy: DEGRADED and UNHEALTHY active integrations, UNHEALTHY first.
    """

    counts: dict[Platform, dict[HealthStatus, int]]
    unhealthy: tuple[UnhealthyIntegration, ...]

    @property
    def needs_attention(self) -> bool:
        """True when any active integration is DEGRADED or UNHEALTHY."""
        return bool(self.unhealthy)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``--format json``)."""
        return {
            "counts": {
                p.value: {s.value: n for s, n in by_status.items()}
                for p, by_status in self.counts.items()
            },
            "unhealthy": json_value(self.unhealthy),
        }


def health_report(conn: sa.Connection, platforms: Sequence[Platform] = ()) -> HealthReport:
    """Read the health report (two queries)."""
    params = _params(platforms)
    counts = {p: dict.fromkeys(HealthStatus, 0) for p in _platform_order(platforms)}
    for platform, status, n in conn.execute(sa.text(_HEALTH_COUNTS), params):
        counts.setdefault(Platform(platform), dict.fromkeys(HealthStatus, 0))[
            HealthStatus(status)
        ] = n
    unhealthy = tuple(
        UnhealthyIntegration(r[0], Platform(r[1]), r[2], r[3], HealthStatus(r[4]), r[5], r[6])
        for r in conn.execute(sa.text(_UNHEALTHY), params)
    )
    return HealthReport(counts, unhealthy)


# --------------------------------------------------------------------------- circuits


@dataclass(frozen=True, slots=True)
class PlatformCircuits:
    """The circuit-breaker summary for one platform (active webhooks)."""

    platform: Platform
    webhooks: int
    open: int
    half_open: int
    avg_failures: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return json_form(
            self,
            ("platform", "webhooks", ("open_circuits", "open"), "half_open", "avg_failures"),
        )


@dataclass(frozen=True, slots=True)
class OpenCircuit:
    """A webhook whose circuit is OPEN or HALF_OPEN.

    Attributes:
        eligible_at: for OPEN: when it may move to HALF_OPEN (``opened_at`` + reset
            seconds); ``None`` for HALF_OPEN or when ``opened_at`` is unknown.
        active: whether the webhook is enabled (the summary counts active ones only).
    """

    tenant_id: str
    platform: Platform
    environment: str
    name: str
    status: CircuitBreakerStatus
    consecutive_failures: int
    threshold: int | None
    opened_at: datetime | None
    reset_seconds: int
    last_failure_at: datetime | None
    active: bool

    @property
    def eligible_at(self) -> datetime | None:
        """When an OPEN circuit may be tried again (HALF_OPEN)."""
        if self.status is not CircuitBreakerStatus.OPEN or self.opened_at is None:
            return None
        return self.opened_at + timedelta(seconds=self.reset_seconds)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return json_form(
            self,
            (
                ("tenant", "tenant_id"),
                *("platform", "environment", "name", "status", "consecutive_failures"),
                ("failure_threshold", "threshold"),
                "opened_at",
                ("reset_after_seconds", "reset_seconds"),
                ("half_open_eligible_at", "eligible_at"),
                *("last_failure_at", "active"),
            ),
        )


@dataclass(frozen=True, slots=True)
class CircuitReport:
    """``reconciler report circuits``.

    Attributes:
        generated_at: the database's time when the report was read (for "eligible in").
        platforms: the per-platform summary, every selected platform listed.
        circuits: every non-deleted webhook whose circuit is OPEN or HALF_OPEN.
    """

    generated_at: datetime
    platforms: tuple[PlatformCircuits, ...]
    circuits: tuple[OpenCircuit, ...]

    @property
    def needs_attention(self) -> bool:
        """True when any circuit is OPEN or HALF_OPEN."""
        return bool(self.circuits)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``--format json``)."""
        return json_form(self, ("generated_at", "platforms", "circuits"))


def circuit_report(conn: sa.Connection, platforms: Sequence[Platform] = ()) -> CircuitReport:
    """Read the circuit-breaker report (two queries and the server time)."""
    params = _params(platforms)
    now: datetime = conn.execute(sa.text("SELECT now()")).scalar_one()
    found = {
        Platform(r[0]): PlatformCircuits(
            Platform(r[0]),
            r[1],
            r[2],
            r[3],
            round(float(r[4]), 2) if r[4] is not None else None,
        )
        for r in conn.execute(sa.text(_CIRCUIT_SUMMARY), params)
    }
    summary = tuple(
        found.get(p, PlatformCircuits(p, 0, 0, 0, None)) for p in _platform_order(platforms)
    )
    circuits = tuple(
        OpenCircuit(
            r[0],
            Platform(r[1]),
            r[2],
            r[3],
            CircuitBreakerStatus(r[4]),
            r[5],
            r[6],
            r[7],
            r[8],
            r[9],
            r[10],
        )
        for r in conn.execute(sa.text(_NOT_CLOSED), params)
    )
    return CircuitReport(now, summary, circuits)
