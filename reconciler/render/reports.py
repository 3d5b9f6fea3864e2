"""Text of ``reconciler report health`` and ``reconciler report circuits``."""

from __future__ import annotations

from datetime import datetime, timedelta

from reconciler.model.enums import CircuitBreakerStatus, HealthStatus
from reconciler.render.table import format_table, utc_time
from reconciler.store.reports import CircuitReport, HealthReport, OpenCircuit


def render_health_text(report: HealthReport) -> str:
    """The health report for a terminal."""
    statuses = list(HealthStatus)
    rows = [
        (p.value, *(by_status[s] for s in statuses), sum(by_status.values()))
        for p, by_status in report.counts.items()
    ]
    lines = [
        "Active integrations by health status:",
        format_table(("PLATFORM", *(s.value for s in statuses), "TOTAL"), rows),
        "",
    ]
    if not report.unhealthy:
        lines.append("No DEGRADED or UNHEALTHY active integrations.")
    else:
        lines.append(f"{len(report.unhealthy)} DEGRADED or UNHEALTHY active integration(s):")
        lines.append(
            format_table(
                ("STATUS", "TENANT", "PLATFORM", "ENVIRONMENT", "TYPE", "CHECKED (UTC)", "MESSAGE"),
                [
                    (
                        u.status.value,
                        u.tenant_id,
                        u.platform.value,
                        u.environment,
                        u.config_type,
                        utc_time(u.last_checked_at),
                        u.message,
                    )
                    for u in report.unhealthy
                ],
            )
        )
    return "\n".join(lines) + "\n"


def render_circuits_text(report: CircuitReport) -> str:
    """The circuit report for a terminal."""
    lines = [
        "Circuit breakers of active webhooks by platform:",
        format_table(
            ("PLATFORM", "WEBHOOKS", "OPEN", "HALF_OPEN", "AVG FAILURES"),
            [
                (
                    p.platform.value,
                    p.webhooks,
                    p.open,
                    p.half_open,
                    f"{p.avg_failures:.2f}" if p.avg_failures is not None else None,
                )
                for p in report.platforms
            ],
        ),
        "",
    ]
    if not report.circuits:
        lines.append("All circuits are CLOSED.")
        return "\n".join(lines) + "\n"
    lines.append(f"{len(report.circuits)} circuit(s) not CLOSED:")
    lines.append(
        format_table(
            (
                "STATUS",
                "TENANT",
                "PLATFORM",
                "ENVIRONMENT",
                "WEBHOOK",
                "FAILURES",
                "OPENED (UTC)",
                "HALF_OPEN ELIGIBLE",
            ),
            [
                (
                    c.status.value,
                    c.tenant_id,
                    c.platform.value,
                    c.environment,
                    c.name if c.active else f"{c.name} (inactive)",
                    f"{c.consecutive_failures}/{c.threshold}"
                    if c.threshold is not None
                    else c.consecutive_failures,
                    utc_time(c.opened_at),
                    _eligible(c, report.generated_at),
                )
                for c in report.circuits
            ],
        )
    )
    return "\n".join(lines) + "\n"


def _eligible(circuit: OpenCircuit, now: datetime) -> str | None:
    at = circuit.eligible_at
    if at is None:
        return "unknown (no opened_at)" if circuit.status is CircuitBreakerStatus.OPEN else None
    if at <= now:
        return f"{utc_time(at)} (due now)"
    return f"{utc_time(at)} (in {_duration(at - now)})"


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 3600:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"
