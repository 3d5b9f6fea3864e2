"""Exit codes, defined once. Scripts and CI jobs depend on these numbers.

The table (also in README.md, "Exit codes"):

====  ==================================================================================
code  meaning
====  ==================================================================================
0     success; for plan and drift: no changes
1     error: invalid input, database or key problem; nothing written
2     changes present (plan and drift with ``--detailed-exitcode``); never an error
3     a saved plan is stale; nothing written
4     blocked by policy; nothing written
64    usage error: unknown option or command, a bad option value, a selector that matches
      nothing (``EX_USAGE`` of sysexits.h)
130   interrupted (Ctrl-C); nothing committed
====  ==================================================================================

Click reports its own usage errors with 2, which ``--detailed-exitcode`` uses for "changes
present"; the root command maps them to :attr:`ExitCode.USAGE` instead, so a typo in a CI
script can never look like a good plan.
"""

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
    USAGE = 64
    """Usage error: unknown option, bad value, a selector or path that matches nothing."""
    INTERRUPTED = 130
    """Interrupted (SIGINT); nothing committed."""
