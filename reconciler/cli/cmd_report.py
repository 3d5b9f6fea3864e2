"""CLI commands: ``reconciler report health | circuits`` (read-only)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

import click

from reconciler.cli.cmd_audit import format_table
from reconciler.cli.exit_codes import ExitCode
from reconciler.cli.options import database_url_option, handle_errors, output_options
from reconciler.model.enums import CircuitBreakerStatus, HealthStatus, Platform
from reconciler.store.reports import (
    CircuitReport,
    HealthReport,
    OpenCircuit,
    circuit_report,
    health_report,
    set_read_only,
)
from reconciler.store.session import connect

NEEDS_ATTENTION = ExitCode.CHANGES_PRESENT
"""Exit 2 under ``--fail-on-unhealthy`` / ``--fail-on-open``: the number plan uses for
"something to look at", so a scheduled job can tell it from an error (1)."""

_format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for machines.",
)
_platform_option = click.option(
    "--platform",
    "platforms",
    multiple=True,
    type=click.Choice([p.file_stem for p in Platform], case_sensitive=False),
    help="Only this platform (repeatable).",
)


def _platforms(given: tuple[str, ...]) -> tuple[Platform, ...]:
    return tuple(sorted({Platform(p.upper()) for p in given}, key=lambda p: p.value))


@click.group("report")
def report_group() -> None:
    """Read-only reports on runtime health (written by `reconciler health check` and the
    integration runtime)."""


@report_group.command("health")
@output_options()
@_platform_option
@_format_option
@click.option(
    "--fail-on-unhealthy",
    is_flag=True,
    help="Exit 2 when any active integration is DEGRADED or UNHEALTHY (for scheduled jobs).",
)
@database_url_option
@handle_errors
def health_cmd(
    platforms: tuple[str, ...], fmt: str, fail_on_unhealthy: bool, database_url: str | None
) -> None:
    """Active integrations per health status, and the DEGRADED/UNHEALTHY ones with messages.

    \b
    Exit codes: 0 (also when something is unhealthy), 1 error,
    2 something is DEGRADED or UNHEALTHY and --fail-on-unhealthy was given.
    """
    with connect(database_url, "report health") as conn:
        set_read_only(conn)
        report = health_report(conn, _platforms(platforms))
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(render_health_text(report), nl=False)
    if fail_on_unhealthy and report.needs_attention:
        sys.exit(NEEDS_ATTENTION)


@report_group.command("circuits")
@output_options()
@_platform_option
@_format_option
@click.option(
    "--fail-on-open",
    is_flag=True,
    help="Exit 2 when any webhook circuit is OPEN or HALF_OPEN (for scheduled jobs).",
)
@database_url_option
@handle_errors
def circuits_cmd(
    platforms: tuple[str, ...], fmt: str, fail_on_open: bool, database_url: str | None
) -> None:
    """Webhook circuit breakers: per platform, and every circuit that is not CLOSED.

    An OPEN circuit becomes eligible for HALF_OPEN `circuit_breaker_reset_seconds` after it
    opened; `reconciler health check` makes that move.

    \b
    Exit codes: 0 (also when circuits are open), 1 error,
    2 a circuit is OPEN or HALF_OPEN and --fail-on-open was given.
    """
    with connect(database_url, "report circuits") as conn:
        set_read_only(conn)
        report = circuit_report(conn, _platforms(platforms))
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(render_circuits_text(report), nl=False)
    if fail_on_open and report.needs_attention:
        sys.exit(NEEDS_ATTENTION)


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
                        _when(u.last_checked_at),
                        u.message,
                    )
                    for u in report.unhealthy
                ],
            )
        )
    return "\n".join(lines) + "\n"


def _when(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else None


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
                    _when(c.opened_at),
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
        return f"{_when(at)} (due now)"
    return f"{_when(at)} (in {_duration(at - now)})"


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 3600:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def register(cli: click.Group) -> None:
    """Add ``report`` to the ``reconciler`` group."""
    cli.add_command(report_group)
