"""The Python API: one typed function per verb.

The CLI (``reconciler/cli``) only parses options, calls one of these and renders the result,
so every verb is usable from scripts and tests. The functions do the I/O the pure core must
not: read manifests and keys, talk to PostgreSQL, read the clock. Each verb lives in its own
module here; this package re-exports the ones scripts use most.
"""

from __future__ import annotations

from reconciler.commands.applying import ApplyResult, apply
from reconciler.commands.inputs import (
    ALL,
    fingerprinter_for,
    load_desired,
    open_load_cache,
    read_actual,
    with_plaintext,
)
from reconciler.commands.planning import PlanResult, drift, plan, plan_digest
from reconciler.commands.runs import history
from reconciler.core.policy import check_policy
from reconciler.core.risk import RiskPolicy
from reconciler.progress import Progress
from reconciler.store.runs import ApplyRun
from reconciler.store.session import Database, open_database

__all__ = [
    "ALL",
    "ApplyResult",
    "ApplyRun",
    "Database",
    "PlanResult",
    "Progress",
    "RiskPolicy",
    "apply",
    "check_policy",
    "drift",
    "fingerprinter_for",
    "history",
    "load_desired",
    "open_database",
    "open_load_cache",
    "plan",
    "plan_digest",
    "read_actual",
    "with_plaintext",
]
