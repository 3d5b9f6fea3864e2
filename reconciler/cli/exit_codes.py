"""Exit codes, defined once. Scripts and CI jobs depend on these numbers."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Process exit codes of every ``reconciler`` command."""

    OK = 0
    """Success; for plan and drift: no changes."""
    ERROR = 1
    """Invalid input, database or key problem."""
    CHANGES_PRESENT = 2
    """Changes present (plan/drift with ``--detailed-exitcode``)."""
    PLAN_STALE = 3
    """A saved plan is stale: the database or the manifests changed; nothing written."""
    POLICY_BLOCKED = 4
    """Blocked by policy: risk above what is allowed, or a mass deletion; nothing written."""
