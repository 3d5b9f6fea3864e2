"""CLI command: ``reconciler health check``."""

from __future__ import annotations

import json

import click

from reconciler.cli.options import (
    database_url_option,
    handle_errors,
    make_selectors,
    output_options,
    selector_options,
    text_or_json_option,
)
from reconciler.commands.health import health_check
from reconciler.progress import Progress
from reconciler.render.health import render_check_text
from reconciler.settings import load_settings


@click.group("health")
def health_group() -> None:
    """Integration health checks (writes runtime-owned health fields only)."""


@health_group.command("check")
@output_options()
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1, max=300),
    default=None,
    metavar="S",
    help="Seconds to wait for each platform API [default: health.timeout_seconds, or 10].",
)
@click.option("--dry-run", is_flag=True, help="Check and report, but write nothing.")
@text_or_json_option
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
@selector_options
@database_url_option
@handle_errors
def check_cmd(
    timeout: float | None,
    dry_run: bool,
    fmt: str,
    quiet: bool,
    tenants: tuple[str, ...],
    platforms: tuple[str, ...],
    exclude_tenants: tuple[str, ...],
    database_url: str | None,
) -> None:
    """Check the selected active integrations against their platform APIs.

    Stripe secret and restricted keys are checked with GET /v1/balance, HubSpot private-app
    tokens with the account-info endpoint, HubSpot OAuth integrations by introspecting the
    connected portal's access token, QuickBooks OAuth integrations by reading the connected
    realm's company info. An OAuth integration with no connected account is UNKNOWN. No
    answer (offline, DNS, timeout) is UNKNOWN, never an error. The API roots come from
    health.base_urls in reconciler.yaml. Writes health_status, health_message and
    last_health_check_at (the row's version is not changed, so saved plans stay valid), and
    moves webhook circuits OPEN longer than their reset time to HALF_OPEN.

    \b
    Examples:
      reconciler health check
      reconciler health check --tenant acme-robotics --platform stripe --dry-run
    """
    settings = load_settings()
    result = health_check(
        selectors=make_selectors(tenants, platforms, exclude_tenants),
        timeout=settings.health_timeout_seconds if timeout is None else timeout,
        base_urls=settings.base_urls,
        dry_run=dry_run,
        database_url=database_url,
        progress=Progress(enabled=not quiet),
    )
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(render_check_text(result), nl=False)


def register(cli: click.Group) -> None:
    """Add ``health`` to the ``reconciler`` group."""
    cli.add_command(health_group)
