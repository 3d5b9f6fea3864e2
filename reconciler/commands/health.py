"""``health check``: probe the selected integrations, record their health, advance circuits."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from reconciler.health.check import HealthCheckResult, run_health_check
from reconciler.health.probe import HealthProbe
from reconciler.model.plan import Selectors
from reconciler.progress import QUIET, Progress
from reconciler.settings import BaseUrls


def health_check(
    *,
    selectors: Selectors | None = None,
    probe: HealthProbe | None = None,
    timeout: float = 10.0,
    dry_run: bool = False,
    database_url: str | None = None,
    now: datetime | None = None,
    progress: Progress = QUIET,
    environ: Mapping[str, str] | None = None,
    base_urls: BaseUrls | None = None,
) -> HealthCheckResult:
    """Check the selected active integrations against their platform APIs.

    See :func:`reconciler.health.check.run_health_check` for the steps and the arguments.

    Raises:
        KeyUnavailable: secrets are stored but no keyring is configured.
        DatabaseUnavailable: the database cannot be reached.
    """
    return run_health_check(
        selectors=selectors,
        probe=probe,
        timeout=timeout,
        dry_run=dry_run,
        database_url=database_url,
        now=now,
        progress=progress,
        environ=environ,
        base_urls=base_urls,
    )
