"""``health check``: probe the selected integrations, record their health, advance circuits.

The verb is :func:`reconciler.health.check.run_health_check` itself (its docstring lists
the steps, the arguments and what it raises), offered here under the API's name so that
every verb is reached from :mod:`reconciler.commands`.
"""

from __future__ import annotations

from reconciler.health.check import HealthCheckResult
from reconciler.health.check import run_health_check as health_check

__all__ = ["HealthCheckResult", "health_check"]
