"""The Python API: one typed function per verb.

The CLI (``reconciler/cli``) only parses options, calls one of these and renders the result,
so every verb is usable from scripts and tests. The functions do the I/O the pure core must
not: read manifests and keys, talk to PostgreSQL, read the clock. Each verb lives in its own
module here (``planning``, ``applying``, ``runs``, ``keys``, ``audit``, ``db``, ``importing``,
``health``, ``reports``) and returns a result type; this package re-exports them.
"""

from __future__ import annotations

from reconciler.commands.applying import ApplyResult, apply
from reconciler.commands.audit import (
    AuditCheckpoint,
    AuditVerification,
    audit_checkpoint,
    audit_summary,
    list_audit,
    pending_reviews,
    rejected_reviews,
    review,
    verify_audit,
)
from reconciler.commands.db import (
    EmbeddedStop,
    MigrationSql,
    SchemaChange,
    SchemaRevision,
    current,
    downgrade,
    grant,
    list_roles,
    migration_sql,
    revoke,
    stop_database,
    upgrade,
)
from reconciler.commands.health import health_check
from reconciler.commands.importing import ImportOutcome, import_manifests
from reconciler.commands.inputs import (
    ALL,
    fingerprinter_for,
    load_desired,
    open_load_cache,
    read_actual,
    with_plaintext,
)
from reconciler.commands.keys import (
    GeneratedKey,
    KeyRotation,
    KeyStatus,
    TokenAdoption,
    adopt_tokens,
    generate_key,
    key_status,
    rotate_keys,
)
from reconciler.commands.planning import PlanResult, drift, plan, plan_digest
from reconciler.commands.reports import circuit_report, health_report
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
    "AuditCheckpoint",
    "AuditVerification",
    "Database",
    "EmbeddedStop",
    "GeneratedKey",
    "ImportOutcome",
    "KeyRotation",
    "KeyStatus",
    "MigrationSql",
    "PlanResult",
    "Progress",
    "RiskPolicy",
    "SchemaChange",
    "SchemaRevision",
    "TokenAdoption",
    "adopt_tokens",
    "apply",
    "audit_checkpoint",
    "audit_summary",
    "check_policy",
    "circuit_report",
    "current",
    "downgrade",
    "drift",
    "fingerprinter_for",
    "generate_key",
    "grant",
    "health_check",
    "health_report",
    "history",
    "import_manifests",
    "key_status",
    "list_audit",
    "list_roles",
    "load_desired",
    "migration_sql",
    "open_database",
    "open_load_cache",
    "pending_reviews",
    "plan",
    "plan_digest",
    "read_actual",
    "rejected_reviews",
    "review",
    "revoke",
    "rotate_keys",
    "stop_database",
    "upgrade",
    "verify_audit",
    "with_plaintext",
]
