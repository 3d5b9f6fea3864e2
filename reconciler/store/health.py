"""The SQL of ``reconciler health check``: runtime-owned health and circuit columns."""

from __future__ import annotations

DEFAULT_RESET_SECONDS = 300
"""Reset time of a circuit whose row has none (the manifest default)."""
