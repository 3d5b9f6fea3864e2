"""CLI commands: ``reconciler report health | circuits`` (read-only)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import click

from reconciler.cli.exit_codes import ExitCode
from reconciler.cli.options import (
    database_url_option,
    handle_errors,
    output_options,
    platform_option,
    text_or_json_option,
)
from reconciler.commands.reports import circuit_report, health_report
from reconciler.model.enums import Platform
from reconciler.render.reports import render_circuits_text, render_health_text

NEEDS_ATTENTION = ExitCode.CHANGES_PRESENT
"""Exit 2 under ``--fail-on-unhealthy`` / ``--fail-on-open``: the number plan uses for
"something to look at", so a scheduled job can tell it from an error (1)."""

_R = TypeVar("_R", bound="_Report")


def _platforms(given: tuple[str, ...]) -> tuple[Platform, ...]:
    return tuple(Platform(p.upper()) for p in given)


@click.group("report")
def report_group() -> None:
    """Read-only reports on runtime health (written by `reconciler health check` and the
    integration runtime)."""


class _Report(Protocol):
    """What both reports offer: their JSON form and whether something needs looking at."""

    @property
    def needs_attention(self) -> bool: ...

    def to_dict(self) -> dict[str, Any]: ...


def _report_command(
    name: str,
    read: Callable[..., _R],
    render: Callable[[_R], str],
    *,
    fail_option: str,
    fail_help: str,
    doc: str,
) -> click.Command:
    """``report NAME``: ``read`` the report, print it as JSON or ``render`` it as text, and
    exit 2 (:data:`NEEDS_ATTENTION`) under ``fail_option`` when it needs attention."""

    def command(platforms: tuple[str, ...], fmt: str, fail: bool, database_url: str | None) -> None:
        report = read(platforms=_platforms(platforms), database_url=database_url)
        if fmt == "json":
            click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        else:
            click.echo(render(report), nl=False)
        if fail and report.needs_attention:
            sys.exit(NEEDS_ATTENTION)

    command.__doc__ = doc
    decorated = handle_errors(command)
    for option in (
        database_url_option,
        click.option(fail_option, "fail", is_flag=True, help=fail_help),
        text_or_json_option,
        platform_option,
        output_options(),
    ):
        decorated = option(decorated)
    return report_group.command(name)(decorated)


health_cmd = _report_command(
    "health",
    health_report,
    render_health_text,
    fail_option="--fail-on-unhealthy",
    fail_help="Exit 2 when any active integration is DEGRADED or UNHEALTHY (for scheduled jobs).",
    doc="""Active integrations per health status, and the DEGRADED/UNHEALTHY ones with messages.

    \b
    Exit codes: 0 (also when something is unhealthy), 1 error,
    2 something is DEGRADED or UNHEALTHY and --fail-on-unhealthy was given.

    \b
    Examples:
      reconciler report health
      reconciler report health --platform stripe --format json
      reconciler report health --fail-on-unhealthy      # in a scheduled job
    """,
)

circuits_cmd = _report_command(
    "circuits",
    circuit_report,
    render_circuits_text,
    fail_option="--fail-on-open",
    fail_help="Exit 2 when any webhook circuit is OPEN or HALF_OPEN (for scheduled jobs).",
    doc="""Webhook circuit breakers: per platform, and every circuit that is not CLOSED.

    An OPEN circuit becomes eligible for HALF_OPEN `circuit_breaker_reset_seconds` after it
    opened; `reconciler health check` makes that move.

    \b
    Exit codes: 0 (also when circuits are open), 1 error,
    2 a circuit is OPEN or HALF_OPEN and --fail-on-open was given.

    \b
    Examples:
      reconciler report circuits
      reconciler report circuits --platform hubspot --format json
      reconciler report circuits --fail-on-open         # in a scheduled job
    """,
)


def register(cli: click.Group) -> None:
    """Add ``report`` to the ``reconciler`` group."""
    cli.add_command(report_group)
