"""CLI commands: ``reconciler report health | circuits`` (read-only)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from reconciler.cli.exit_codes import ExitCode
from reconciler.cli.options import (
    database_url_option,
    handle_errors,
    output_options,
    text_or_json_option,
)
from reconciler.commands.reports import circuit_report, health_report
from reconciler.model.enums import Platform
from reconciler.render.reports import render_circuits_text, render_health_text

NEEDS_ATTENTION = ExitCode.CHANGES_PRESENT
"""Exit 2 under ``--fail-on-unhealthy`` / ``--fail-on-open``: the number plan uses for
"something to look at", so a scheduled job can tell it from an error (1)."""

_platform_option = click.option(
    "--platform",
    "platforms",
    multiple=True,
    type=click.Choice([p.file_stem for p in Platform], case_sensitive=False),
    help="Only this platform (repeatable).",
)


def _platforms(given: tuple[str, ...]) -> tuple[Platform, ...]:
    return tuple(Platform(p.upper()) for p in given)


def _emit(document: dict[str, Any], text: Callable[[], str], fmt: str) -> None:
    """Print a report as JSON (``document``) or as its text rendering."""
    if fmt == "json":
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        click.echo(text(), nl=False)


@click.group("report")
def report_group() -> None:
    """Read-only reports on runtime health (written by `reconciler health check` and the
    integration runtime)."""


@report_group.command("health")
@output_options()
@_platform_option
@text_or_json_option
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

    \b
    Examples:
      reconciler report health
      reconciler report health --platform stripe --format json
      reconciler report health --fail-on-unhealthy      # in a scheduled job
    """
    report = health_report(platforms=_platforms(platforms), database_url=database_url)
    _emit(report.to_dict(), lambda: render_health_text(report), fmt)
    if fail_on_unhealthy and report.needs_attention:
        sys.exit(NEEDS_ATTENTION)


@report_group.command("circuits")
@output_options()
@_platform_option
@text_or_json_option
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

    \b
    Examples:
      reconciler report circuits
      reconciler report circuits --platform hubspot --format json
      reconciler report circuits --fail-on-open         # in a scheduled job
    """
    report = circuit_report(platforms=_platforms(platforms), database_url=database_url)
    _emit(report.to_dict(), lambda: render_circuits_text(report), fmt)
    if fail_on_open and report.needs_attention:
        sys.exit(NEEDS_ATTENTION)


def register(cli: click.Group) -> None:
    """Add ``report`` to the ``reconciler`` group."""
    cli.add_command(report_group)
