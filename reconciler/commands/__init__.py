"""The Python API: one typed function per verb.

The CLI (``reconciler/cli``) only parses options, calls one of these and renders the result,
so every verb is usable from scripts and tests. The functions do the I/O the pure core must
not: read manifests and keys, talk to PostgreSQL, read the clock. Each verb lives in its own
module here (``planning``, ``applying``, ``runs``, ``keys``, ``audit``, ``db``, ``importing``,
``health``, ``reports``) and returns a result type; this package re-exports them.

The re-exports are imported when first used, not with the package: a command imports only
the modules its verb needs (``validate`` and ``fmt`` never load the database driver), which
keeps the start of every command short.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_EXPORTS: dict[str, str] = {
    "ApplyResult": "reconciler.commands.applying",
    "apply": "reconciler.commands.applying",
    "AuditCheckpoint": "reconciler.commands.audit",
    "AuditVerification": "reconciler.commands.audit",
    "audit_checkpoint": "reconciler.commands.audit",
    "audit_summary": "reconciler.commands.audit",
    "list_audit": "reconciler.commands.audit",
    "pending_reviews": "reconciler.commands.audit",
    "rejected_reviews": "reconciler.commands.audit",
    "review": "reconciler.commands.audit",
    "verify_audit": "reconciler.commands.audit",
    "EmbeddedStop": "reconciler.commands.db",
    "MigrationSql": "reconciler.commands.db",
    "SchemaChange": "reconciler.commands.db",
    "SchemaRevision": "reconciler.commands.db",
    "current": "reconciler.commands.db",
    "downgrade": "reconciler.commands.db",
    "grant": "reconciler.commands.db",
    "list_roles": "reconciler.commands.db",
    "migration_sql": "reconciler.commands.db",
    "revoke": "reconciler.commands.db",
    "stop_database": "reconciler.commands.db",
    "upgrade": "reconciler.commands.db",
    "health_check": "reconciler.commands.health",
    "ImportOutcome": "reconciler.commands.importing",
    "import_manifests": "reconciler.commands.importing",
    "ALL": "reconciler.commands.inputs",
    "fingerprinter_for": "reconciler.commands.inputs",
    "load_desired": "reconciler.commands.inputs",
    "open_load_cache": "reconciler.commands.inputs",
    "read_actual": "reconciler.commands.inputs",
    "with_plaintext": "reconciler.commands.inputs",
    "GeneratedKey": "reconciler.commands.keys",
    "KeyRotation": "reconciler.commands.keys",
    "KeyStatus": "reconciler.commands.keys",
    "TokenAdoption": "reconciler.commands.keys",
    "adopt_tokens": "reconciler.commands.keys",
    "generate_key": "reconciler.commands.keys",
    "key_status": "reconciler.commands.keys",
    "rotate_keys": "reconciler.commands.keys",
    "PlanResult": "reconciler.commands.planning",
    "drift": "reconciler.commands.planning",
    "plan": "reconciler.commands.planning",
    "plan_digest": "reconciler.commands.planning",
    "circuit_report": "reconciler.commands.reports",
    "health_report": "reconciler.commands.reports",
    "history": "reconciler.commands.runs",
    "check_policy": "reconciler.core.policy",
    "RiskPolicy": "reconciler.core.risk",
    "Progress": "reconciler.progress",
    "ApplyRun": "reconciler.store.runs",
    "Database": "reconciler.store.session",
    "open_database": "reconciler.store.session",
}
"""Each name this package re-exports, by the module that defines it."""


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_module(module), name)
    globals()[name] = value  # once imported, found as a plain attribute
    return value


def _module(name: str) -> Any:
    """The module ``name`` of :data:`_EXPORTS`, imported now (plain imports: none of them is
    optional)."""
    match name:
        case "reconciler.commands.applying":
            import reconciler.commands.applying as commands_applying

            return commands_applying
        case "reconciler.commands.audit":
            import reconciler.commands.audit as commands_audit

            return commands_audit
        case "reconciler.commands.db":
            import reconciler.commands.db as commands_db

            return commands_db
        case "reconciler.commands.health":
            import reconciler.commands.health as commands_health

            return commands_health
        case "reconciler.commands.importing":
            import reconciler.commands.importing as commands_importing

            return commands_importing
        case "reconciler.commands.inputs":
            import reconciler.commands.inputs as commands_inputs

            return commands_inputs
        case "reconciler.commands.keys":
            import reconciler.commands.keys as commands_keys

            return commands_keys
        case "reconciler.commands.planning":
            import reconciler.commands.planning as commands_planning

            return commands_planning
        case "reconciler.commands.reports":
            import reconciler.commands.reports as commands_reports

            return commands_reports
        case "reconciler.commands.runs":
            import reconciler.commands.runs as commands_runs

            return commands_runs
        case "reconciler.core.policy":
            import reconciler.core.policy as core_policy

            return core_policy
        case "reconciler.core.risk":
            import reconciler.core.risk as core_risk

            return core_risk
        case "reconciler.progress":
            import reconciler.progress as progress

            return progress
        case "reconciler.store.runs":
            import reconciler.store.runs as store_runs

            return store_runs
        case "reconciler.store.session":
            import reconciler.store.session as store_session

            return store_session
        case _:
            raise AssertionError(f"no import for {name}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
