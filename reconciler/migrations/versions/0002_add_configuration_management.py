"""add_configuration_management: the configuration-management schema and the reconciler's state.

Revision ID: add_configuration_management
Revises: baseline
Create Date: 2025-01-15

Upgrade (the configuration schema plus what the reconciler needs):

* ``oauth_tokens``: connected-account identity, revocation, key version and bookkeeping
  columns and indexes; existing rows are migrated exactly as the documented data step does;
* new tables ``integration_configs``, ``webhook_configurations``,
  ``configuration_audit_logs`` (append-only by trigger) and ``apply_runs``;
* row-level security (policy ``tenant_isolation`` on ``app.tenant_id``) on the four tenant
  tables, and the NOLOGIN role ``reconciler_app`` with its grants.

Downgrade is the documented rollback, except that it destroys no record: ``oauth_tokens`` returns
to its baseline columns keeping every row, and what the dropped columns held is copied into
``reconciler_archive.oauth_tokens_columns``; the audit log and the apply history are moved,
with their rows, ids and indexes, into the schema ``reconciler_archive`` (enum columns become
text there, and a trigger makes them read-only). Integration and webhook tables are dropped
(the manifests re-create them). Only when the configuration attribute
``discard_audit_history`` is true (``reconciler db downgrade --discard-audit-history``) are
the audit log and the apply history dropped instead. The role ``reconciler_app`` is kept,
because roles belong to the whole cluster and other databases on it may use it.

Upgrade brings an archive back: the token columns into the rows that still exist (the
revocation state and key version only where the token is still the one archived, compared by
a SHA-256 digest), and every archived audit row and apply run into the new tables with its id,
hash and review columns, so ``audit verify`` passes again; the archive is then dropped.

Enum labels are spelled out here rather than imported: a migration is a fixed snapshot,
while ``reconciler.model.enums`` moves on with later migrations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from reconciler.migrations.support import (
    ACCOUNT_COLUMNS,
    APP_ROLE,
    REVIEW_COLUMNS,
    append_only_allowing_reviews,
)

revision: str = "add_configuration_management"
down_revision: str | None = "baseline"

ENUMS: dict[str, tuple[str, ...]] = {
    "config_type": ("API_KEY", "WEBHOOK", "OAUTH", "SETTINGS"),
    "environment": ("PRODUCTION", "SANDBOX", "STAGING", "DEVELOPMENT"),
    "sync_direction": ("INBOUND", "OUTBOUND", "BIDIRECTIONAL"),
    "health_status": ("HEALTHY", "DEGRADED", "UNHEALTHY", "UNKNOWN"),
    "webhook_type": ("INBOUND", "OUTBOUND"),
    "auth_type": ("NONE", "SIGNATURE", "BEARER", "API_KEY", "BASIC", "CUSTOM"),
    "circuit_breaker_status": ("CLOSED", "OPEN", "HALF_OPEN"),
    # Declaration order is the sort order: `risk_level >= 'HIGH'` relies on it.
    "risk_level": ("LOW", "MEDIUM", "HIGH", "CRITICAL"),
    "audit_action": ("CREATE", "UPDATE", "DELETE", "REVOKE", "ROTATE"),
    "entity_type": ("INTEGRATION_CONFIG", "WEBHOOK_CONFIGURATION", "OAUTH_TOKEN"),
    "review_decision": ("APPROVED", "REJECTED"),
    "apply_outcome": ("APPLIED", "NO_CHANGES"),
}

TENANT_TABLES = (
    "oauth_tokens",
    "integration_configs",
    "webhook_configurations",
    "configuration_audit_logs",
)
OAUTH_INDEXES_ADDED = (
    "idx_oauth_tokens_tenant_active",
    "idx_oauth_tokens_stripe_account",
    "idx_oauth_tokens_hubspot_portal",
    "idx_oauth_tokens_quickbooks_realm",
)

TS = sa.TIMESTAMP(timezone=True)
NOW = sa.text("now()")
EMPTY_OBJECT = sa.text("'{}'::jsonb")
EMPTY_ARRAY = sa.text("'[]'::jsonb")


def enum(name: str) -> pg.ENUM:
    """A column type for an enum created by this migration's CREATE TYPE statements."""
    labels = ENUMS.get(name, ("HUBSPOT", "STRIPE", "QUICKBOOKS"))
    return pg.ENUM(*labels, name=name, create_type=False)


def key_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.String(255), nullable=False),
    ]


def bookkeeping_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("created_at", TS, nullable=False, server_default=NOW),
        sa.Column("updated_at", TS, nullable=False, server_default=NOW),
        sa.Column("deleted_at", TS),
        sa.Column("created_by", sa.String(255)),
        sa.Column("updated_by", sa.String(255)),
        sa.Column("deleted_by", sa.String(255)),
        sa.Column("row_version", sa.Integer, nullable=False, server_default=sa.text("1")),
    ]


def upgrade() -> None:
    for name, labels in ENUMS.items():
        quoted = ", ".join(f"'{label}'" for label in labels)
        op.execute(f"CREATE TYPE {name} AS ENUM ({quoted})")

    upgrade_oauth_tokens()
    restore_token_columns()
    create_integration_configs()
    create_webhook_configurations()
    create_configuration_audit_logs()
    create_apply_runs()
    restore_audit_history()
    drop_empty_archive()
    enable_row_level_security()


def oauth_columns_added() -> tuple[sa.Column[Any], ...]:
    """The columns this revision adds to ``oauth_tokens``, in the order it adds them."""
    return (
        sa.Column("hubspot_portal_id", sa.String(255)),
        sa.Column("hubspot_user_id", sa.String(255)),
        sa.Column("hubspot_app_id", sa.String(255)),
        sa.Column("stripe_account_id", sa.String(255)),
        sa.Column("stripe_user_id", sa.String(255)),
        sa.Column("stripe_livemode", sa.Boolean),
        sa.Column("quickbooks_realm_id", sa.String(32)),
        sa.Column("refresh_token_expires_at", TS),
        sa.Column("is_active", sa.Boolean),
        sa.Column("revoked_at", TS),
        sa.Column("revoked_by", sa.String(255)),
        sa.Column("revoked_reason", sa.Text),
        sa.Column("encryption_key_version", sa.Integer),
        sa.Column("metadata", pg.JSONB),
        sa.Column("created_by", sa.String(255)),
        sa.Column("row_version", sa.Integer, nullable=False, server_default=sa.text("1")),
    )


def upgrade_oauth_tokens() -> None:
    for column in oauth_columns_added():
        op.add_column("oauth_tokens", column)

    # The documented data step, verbatim: existing tokens become active, key version 1.
    op.execute(
        "UPDATE oauth_tokens SET is_active = true, encryption_key_version = 1, "
        "metadata = '{}'::jsonb WHERE is_active IS NULL"
    )
    for name, default in (
        ("is_active", sa.true()),
        ("encryption_key_version", sa.text("1")),
        ("metadata", EMPTY_OBJECT),
    ):
        op.alter_column("oauth_tokens", name, nullable=False, server_default=default)

    op.create_index("idx_oauth_tokens_tenant_active", "oauth_tokens", ["tenant_id", "is_active"])
    op.create_index("idx_oauth_tokens_stripe_account", "oauth_tokens", ["stripe_account_id"])
    op.create_index("idx_oauth_tokens_hubspot_portal", "oauth_tokens", ["hubspot_portal_id"])
    op.create_index("idx_oauth_tokens_quickbooks_realm", "oauth_tokens", ["quickbooks_realm_id"])


def create_integration_configs() -> None:
    op.create_table(
        "integration_configs",
        *key_columns(),
        sa.Column("platform", enum("platform"), nullable=False),
        sa.Column("config_type", enum("config_type"), nullable=False),
        sa.Column("environment", enum("environment"), nullable=False),
        sa.Column("is_primary", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("api_key", sa.Text),
        sa.Column("api_key_fingerprint", sa.String(64)),
        sa.Column("api_secret", sa.Text),
        sa.Column("api_secret_fingerprint", sa.String(64)),
        sa.Column("encryption_key_version", sa.Integer),
        sa.Column("sync_interval", sa.Integer),
        sa.Column("sync_direction", enum("sync_direction")),
        sa.Column("next_sync_at", TS),
        sa.Column("last_sync_at", TS),
        sa.Column(
            "health_status",
            enum("health_status"),
            nullable=False,
            server_default=sa.text("'UNKNOWN'"),
        ),
        sa.Column("health_message", sa.Text),
        sa.Column("last_health_check_at", TS),
        sa.Column("features", pg.JSONB, nullable=False, server_default=EMPTY_OBJECT),
        sa.Column("mapping_rules", pg.JSONB, nullable=False, server_default=EMPTY_OBJECT),
        sa.Column("filter_rules", pg.JSONB, nullable=False, server_default=EMPTY_OBJECT),
        sa.Column("transform_rules", pg.JSONB, nullable=False, server_default=EMPTY_OBJECT),
        *bookkeeping_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="integration_configs_pkey"),
        sa.UniqueConstraint(
            "tenant_id",
            "platform",
            "config_type",
            "environment",
            name="uq_integration_configs_identity",
        ),
        sa.CheckConstraint(
            "sync_interval BETWEEN 1 AND 10080", name="ck_integration_configs_sync_interval"
        ),
    )
    op.create_index(
        "idx_integration_configs_tenant_platform_active",
        "integration_configs",
        ["tenant_id", "platform", "is_active"],
    )
    op.create_index(
        "idx_integration_configs_platform_health",
        "integration_configs",
        ["platform", "health_status"],
    )
    op.create_index("idx_integration_configs_next_sync", "integration_configs", ["next_sync_at"])
    op.create_index("idx_features_gin", "integration_configs", ["features"], postgresql_using="gin")


def create_webhook_configurations() -> None:
    op.create_table(
        "webhook_configurations",
        *key_columns(),
        sa.Column("platform", enum("platform"), nullable=False),
        sa.Column("environment", enum("environment"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("webhook_type", enum("webhook_type"), nullable=False),
        sa.Column("endpoint_url", sa.Text, nullable=False),
        sa.Column("auth_type", enum("auth_type"), nullable=False),
        sa.Column("signing_secret", sa.Text),
        sa.Column("signing_secret_fingerprint", sa.String(64)),
        sa.Column("auth_token", sa.Text),
        sa.Column("auth_token_fingerprint", sa.String(64)),
        sa.Column("auth_password", sa.Text),
        sa.Column("auth_password_fingerprint", sa.String(64)),
        sa.Column("encryption_key_version", sa.Integer),
        sa.Column("subscribed_events", pg.JSONB, nullable=False, server_default=EMPTY_ARRAY),
        sa.Column("retry_max_attempts", sa.Integer),
        sa.Column("retry_initial_delay_seconds", sa.Integer),
        sa.Column("retry_backoff_multiplier", sa.Double),
        sa.Column("retry_max_delay_seconds", sa.Integer),
        sa.Column("circuit_breaker_threshold", sa.Integer),
        sa.Column("circuit_breaker_reset_seconds", sa.Integer),
        sa.Column(
            "circuit_breaker_status",
            enum("circuit_breaker_status"),
            nullable=False,
            server_default=sa.text("'CLOSED'"),
        ),
        sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("circuit_opened_at", TS),
        sa.Column(
            "total_trigger_count", sa.BigInteger, nullable=False, server_default=sa.text("0")
        ),
        sa.Column(
            "total_failure_count", sa.BigInteger, nullable=False, server_default=sa.text("0")
        ),
        sa.Column("last_trigger_at", TS),
        sa.Column("last_success_at", TS),
        sa.Column("last_failure_at", TS),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        *bookkeeping_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="webhook_configurations_pkey"),
        sa.UniqueConstraint(
            "tenant_id",
            "platform",
            "environment",
            "name",
            name="uq_webhook_configurations_identity",
        ),
    )
    op.create_index(
        "idx_webhook_configurations_tenant_platform_circuit",
        "webhook_configurations",
        ["tenant_id", "platform", "circuit_breaker_status"],
    )
    op.create_index(
        "idx_webhook_configurations_circuit_status",
        "webhook_configurations",
        ["circuit_breaker_status"],
    )
    op.create_index(
        "idx_webhook_configurations_last_trigger", "webhook_configurations", ["last_trigger_at"]
    )


def create_configuration_audit_logs() -> None:
    op.create_table(
        "configuration_audit_logs",
        *key_columns(),
        sa.Column("entity_type", enum("entity_type"), nullable=False),
        sa.Column("entity_id", sa.BigInteger),
        sa.Column("entity_address", sa.Text),
        sa.Column("action", enum("audit_action"), nullable=False),
        sa.Column("changes", pg.JSONB, nullable=False),
        sa.Column("risk_level", enum("risk_level"), nullable=False),
        sa.Column("risk_reasons", pg.JSONB, nullable=False, server_default=EMPTY_ARRAY),
        sa.Column("requires_review", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("reviewed_at", TS),
        sa.Column("reviewed_by", sa.String(255)),
        sa.Column("review_decision", enum("review_decision")),
        sa.Column("review_note", sa.Text),
        sa.Column("performed_by", sa.String(255), nullable=False),
        sa.Column("ip_address", pg.INET),
        sa.Column("user_agent", sa.Text),
        sa.Column("session_id", sa.String(255)),
        sa.Column("apply_run_id", sa.Uuid),
        sa.Column("git_commit", sa.String(64)),
        sa.Column("source_path", sa.Text),
        sa.Column("created_at", TS, nullable=False, server_default=NOW),
        sa.Column("prev_hash", sa.CHAR(64)),
        sa.Column("entry_hash", sa.CHAR(64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="configuration_audit_logs_pkey"),
    )
    table = "configuration_audit_logs"
    op.create_index("idx_configuration_audit_logs_created_at", table, ["created_at"])
    op.create_index("idx_configuration_audit_logs_entity", table, ["entity_type", "entity_id"])
    op.create_index(
        "idx_configuration_audit_logs_risk_review", table, ["risk_level", "requires_review"]
    )
    op.create_index(
        "idx_configuration_audit_logs_tenant_created", table, ["tenant_id", "created_at"]
    )
    op.create_index("idx_configuration_audit_logs_apply_run", table, ["apply_run_id"])
    op.create_index(
        "idx_pending_reviews",
        table,
        ["tenant_id", "risk_level"],
        postgresql_where=sa.text("requires_review = true AND reviewed_at IS NULL"),
    )

    # Append-only: compare the whole row minus the review columns, so a column added later
    # is protected without touching this function.
    op.execute(append_only_allowing_reviews("CREATE"))
    op.execute(
        "CREATE TRIGGER configuration_audit_logs_append_only "
        "BEFORE UPDATE OR DELETE ON configuration_audit_logs "
        "FOR EACH ROW EXECUTE FUNCTION configuration_audit_logs_append_only()"
    )
    op.execute(
        "CREATE TRIGGER configuration_audit_logs_no_truncate "
        "BEFORE TRUNCATE ON configuration_audit_logs "
        "FOR EACH STATEMENT EXECUTE FUNCTION configuration_audit_logs_append_only()"
    )


def create_apply_runs() -> None:
    op.create_table(
        "apply_runs",
        sa.Column("id", sa.Uuid, nullable=False, server_default=sa.text("gen_random_uuid()")),
        sa.Column("started_at", TS, nullable=False, server_default=NOW),
        sa.Column("finished_at", TS),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("git_commit", sa.String(64)),
        sa.Column("manifests_digest", sa.String(128), nullable=False),
        sa.Column("plan_digest", sa.String(128)),
        sa.Column("outcome", enum("apply_outcome"), nullable=False),
        sa.Column("created_count", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("updated_count", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("deleted_count", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("revoked_count", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("reconciler_version", sa.String(64), nullable=False),
        sa.Column("user_agent", sa.Text),
        sa.PrimaryKeyConstraint("id", name="apply_runs_pkey"),
    )
    op.create_index("idx_apply_runs_started_at", "apply_runs", ["started_at"])


def enable_row_level_security() -> None:
    # Roles are cluster-wide: create it only if no other database on the server did already.
    # A concurrent CREATE ROLE can fail with unique_violation instead of duplicate_object.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{APP_ROLE}') THEN
                CREATE ROLE {APP_ROLE} NOLOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END
        $$
        """
    )
    for table in TENANT_TABLES:
        # ENABLE, not FORCE: the owner (the reconciler's own role) reads and writes all
        # tenants; application roles see only the tenant in app.tenant_id.
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            "USING (tenant_id = current_setting('app.tenant_id', true)) "
            "WITH CHECK (tenant_id = current_setting('app.tenant_id', true))"
        )
    op.execute(
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON oauth_tokens, integration_configs, "
        f"webhook_configurations TO {APP_ROLE}"
    )
    # Audit rows: read, append, and record reviews; never delete (the trigger refuses too).
    op.execute(
        f"GRANT SELECT, INSERT, UPDATE ({', '.join(REVIEW_COLUMNS)}) "
        f"ON configuration_audit_logs TO {APP_ROLE}"
    )
    op.execute(f"GRANT SELECT ON apply_runs TO {APP_ROLE}")


def downgrade() -> None:
    # Dropping a table drops its policies, grants, triggers and indexes with it.
    create_archive_schema()
    if discard_audit_history():
        announce_discarded_history()
        op.execute("DROP TABLE apply_runs")
        op.execute("DROP TABLE configuration_audit_logs")
    else:
        archive_audit_history()
    op.execute("DROP TABLE webhook_configurations")
    op.execute("DROP TABLE integration_configs")
    op.execute("DROP FUNCTION configuration_audit_logs_append_only()")

    # The baseline table had no row-level security; off before archiving, so no row is hidden.
    op.execute("DROP POLICY tenant_isolation ON oauth_tokens")
    op.execute("ALTER TABLE oauth_tokens DISABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE oauth_tokens NO FORCE ROW LEVEL SECURITY")
    archive_token_columns()
    op.execute(f"REVOKE ALL ON oauth_tokens FROM {APP_ROLE}")
    for index in OAUTH_INDEXES_ADDED:
        op.drop_index(index, table_name="oauth_tokens")
    for column in oauth_columns_added():
        op.drop_column("oauth_tokens", column.name)

    for name in ENUMS:
        op.execute(f"DROP TYPE {name}")


# --- The archive: what a downgrade keeps and a later upgrade brings back -------------------
#
# Everything below is plain SQL (DO blocks decide at run time whether an archive exists), so
# the offline SQL of `reconciler db sql` does exactly what the online migration does.

ARCHIVE = "reconciler_archive"
DISCARD_OPTION = "discard_audit_history"
HISTORY_TABLES = ("configuration_audit_logs", "apply_runs")
TOKEN_ARCHIVE = f"{ARCHIVE}.oauth_tokens_columns"
# Columns that describe the connected account: restored into the row whatever happened to it.
TOKEN_ACCOUNT_COLUMNS = (*ACCOUNT_COLUMNS, "metadata", "created_by", "row_version")
# Columns that describe the stored token: restored only while it is still the archived one
# (the application may have refreshed or re-authorized it while the schema was rolled back).
TOKEN_STATE_COLUMNS = (
    "refresh_token_expires_at",
    "is_active",
    "revoked_at",
    "revoked_by",
    "revoked_reason",
    "encryption_key_version",
)
CIPHERTEXT_DIGEST = (
    "encode(sha256(convert_to(jsonb_build_array({t}.access_token, {t}.refresh_token)::text, "
    "'UTF8')), 'hex')"
)
AUDIT_COLUMNS = (
    "id",
    "tenant_id",
    "entity_type",
    "entity_id",
    "entity_address",
    "action",
    "changes",
    "risk_level",
    "risk_reasons",
    "requires_review",
    "reviewed_at",
    "reviewed_by",
    "review_decision",
    "review_note",
    "performed_by",
    "ip_address",
    "user_agent",
    "session_id",
    "apply_run_id",
    "git_commit",
    "source_path",
    "created_at",
    "prev_hash",
    "entry_hash",
)
APPLY_RUN_COLUMNS = (
    "id",
    "started_at",
    "finished_at",
    "actor",
    "git_commit",
    "manifests_digest",
    "plan_digest",
    "outcome",
    "created_count",
    "updated_count",
    "deleted_count",
    "revoked_count",
    "reconciler_version",
    "user_agent",
)
# Archived enum columns are text; restoring casts them back.
ENUM_COLUMNS = {
    "entity_type": "entity_type",
    "action": "audit_action",
    "risk_level": "risk_level",
    "review_decision": "review_decision",
    "outcome": "apply_outcome",
}


def discard_audit_history() -> bool:
    """Whether this downgrade may drop the audit log and apply history instead of archiving.

    Set by ``reconciler db downgrade --discard-audit-history`` (and ``db sql --rollback
    --discard-audit-history``) as the Alembic configuration attribute ``discard_audit_history``
    (``env.py`` also maps ``-x discard_audit_history=true`` onto it).
    """
    config = op.get_context().config
    return config is not None and config.attributes.get(DISCARD_OPTION) is True


def create_archive_schema() -> None:
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {ARCHIVE}")
    # Archived rows are a record: read-only until an upgrade moves them back.
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION {ARCHIVE}.refuse_changes() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION USING
                MESSAGE = TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME || ' is archived: '
                    || TG_OP || ' is not allowed (reconciler db upgrade restores it)',
                ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )


def make_read_only(table: str) -> None:
    name = table.split(".")[-1]
    op.execute(
        f"CREATE TRIGGER {name}_read_only BEFORE INSERT OR UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {ARCHIVE}.refuse_changes()"
    )
    op.execute(
        f"CREATE TRIGGER {name}_no_truncate BEFORE TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {ARCHIVE}.refuse_changes()"
    )


def archive_audit_history() -> None:
    """Move the audit log and the apply history into the archive schema, rows and all.

    ``SET SCHEMA`` keeps the rows, ids, indexes, constraints and identity sequence; an archive
    table of the same name left from before makes it fail, so nothing is ever overwritten.
    """
    refuse_unknown_columns()
    op.execute("DROP TRIGGER configuration_audit_logs_append_only ON configuration_audit_logs")
    op.execute("DROP TRIGGER configuration_audit_logs_no_truncate ON configuration_audit_logs")
    op.execute("DROP POLICY tenant_isolation ON configuration_audit_logs")
    # Nothing may hide archived rows from the upgrade that copies them back (a later
    # revision may have forced row-level security on either table).
    for table in HISTORY_TABLES:
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    # Only the owner keeps access: revoke every grant, also those later revisions made to
    # roles this one does not know (table and column privileges, PUBLIC included).
    tables = ", ".join(f"'{table}'::regclass" for table in HISTORY_TABLES)
    op.execute(
        f"""
        DO $$
        DECLARE
            g record;
        BEGIN
            FOR g IN
                SELECT DISTINCT x.tbl, CASE WHEN x.grantee = 0 THEN 'PUBLIC'
                                            ELSE x.grantee::regrole::text END AS grantee
                  FROM (SELECT c.oid::regclass AS tbl, c.relowner AS owner,
                               (aclexplode(c.relacl)).grantee
                          FROM pg_class c WHERE c.oid IN ({tables})
                        UNION ALL
                        SELECT c.oid::regclass, c.relowner, (aclexplode(a.attacl)).grantee
                          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                         WHERE c.oid IN ({tables})) x
                 WHERE x.grantee <> x.owner
            LOOP
                EXECUTE 'REVOKE ALL ON ' || g.tbl || ' FROM ' || g.grantee;
            END LOOP;
        END
        $$
        """
    )
    # Every enum column becomes text, including any a later revision added and left in place,
    # so that the enum types can go without taking a column with them.
    tables = ", ".join(f"'{table}'::regclass" for table in HISTORY_TABLES)
    op.execute(
        f"""
        DO $$
        DECLARE
            c record;
        BEGIN
            FOR c IN
                SELECT a.attrelid::regclass AS tbl, quote_ident(a.attname) AS col
                  FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                 WHERE a.attrelid IN ({tables}) AND a.attnum > 0 AND NOT a.attisdropped
                   AND t.typtype = 'e'
            LOOP
                EXECUTE 'ALTER TABLE ' || c.tbl || ' ALTER COLUMN ' || c.col
                    || ' TYPE text USING ' || c.col || '::text';
            END LOOP;
        END
        $$
        """
    )
    for table in HISTORY_TABLES:
        op.execute(f"ALTER TABLE {table} SET SCHEMA {ARCHIVE}")
        make_read_only(f"{ARCHIVE}.{table}")


def refuse_unknown_columns() -> None:
    """Stop (nothing changed) if a later revision's downgrade left a column in these tables.

    The upgrade restores exactly this revision's columns, so such a column's values would be
    lost by the round trip; the rule (``migrations/README.md``) is that the revision that
    added it archives it in its own downgrade and restores it in its own upgrade.
    """
    known = " OR ".join(
        f"(a.attrelid = '{table}'::regclass AND a.attname IN "
        f"({', '.join(repr(c) for c in columns)}))"
        for table, columns in (
            ("configuration_audit_logs", AUDIT_COLUMNS),
            ("apply_runs", APPLY_RUN_COLUMNS),
        )
    )
    tables = ", ".join(f"'{table}'::regclass" for table in HISTORY_TABLES)
    op.execute(
        f"""
        DO $$
        DECLARE
            unknown text;
        BEGIN
            SELECT string_agg(a.attrelid::regclass || '.' || a.attname, ', '
                              ORDER BY a.attrelid::regclass::text, a.attname)
              INTO unknown
              FROM pg_attribute a
             WHERE a.attrelid IN ({tables}) AND a.attnum > 0 AND NOT a.attisdropped
               AND NOT ({known});
            IF unknown IS NOT NULL THEN
                RAISE EXCEPTION USING
                    MESSAGE = 'cannot archive the audit log and apply history: column(s) '
                        || unknown || ' are not this revision''s and would be lost; the '
                        || 'revision that added them must archive them in its downgrade',
                    ERRCODE = 'invalid_table_definition';
            END IF;
        END
        $$
        """
    )


def announce_discarded_history() -> None:
    # Said by the database itself, so a DBA running the SQL with psql sees it too.
    op.execute(
        """
        DO $$
        BEGIN
            RAISE WARNING USING MESSAGE = 'discarding the audit log ('
                || (SELECT count(*) FROM configuration_audit_logs) || ' rows) and the apply '
                || 'history (' || (SELECT count(*) FROM apply_runs) || ' runs)';
        END
        $$
        """
    )


def archive_token_columns() -> None:
    """Copy what the dropped ``oauth_tokens`` columns hold, keyed by the row's primary key."""
    columns = ", ".join((*TOKEN_ACCOUNT_COLUMNS, *TOKEN_STATE_COLUMNS))
    op.execute(
        f"CREATE TABLE {TOKEN_ARCHIVE} AS SELECT tenant_id, id, {columns}, "
        f"{CIPHERTEXT_DIGEST.format(t='oauth_tokens')} AS token_digest FROM oauth_tokens"
    )
    op.execute(
        f"ALTER TABLE {TOKEN_ARCHIVE} ADD CONSTRAINT oauth_tokens_columns_pkey "
        "PRIMARY KEY (tenant_id, id)"
    )
    make_read_only(TOKEN_ARCHIVE)


def restore_token_columns() -> None:
    account = ", ".join(f"{c} = a.{c}" for c in TOKEN_ACCOUNT_COLUMNS)
    unchanged = f"a.token_digest = {CIPHERTEXT_DIGEST.format(t='t')}"
    state = ", ".join(
        f"{c} = CASE WHEN {unchanged} THEN a.{c} ELSE t.{c} END" for c in TOKEN_STATE_COLUMNS
    )
    op.execute(
        f"""
        DO $$
        BEGIN
            IF to_regclass('{TOKEN_ARCHIVE}') IS NOT NULL THEN
                UPDATE oauth_tokens t SET {account}, {state}
                  FROM {TOKEN_ARCHIVE} a
                 WHERE a.tenant_id = t.tenant_id AND a.id = t.id;
                DROP TABLE {TOKEN_ARCHIVE};
            END IF;
        END
        $$
        """
    )


def restore_audit_history() -> None:
    """Move archived audit rows and apply runs back, ids and hashes unchanged.

    A ``REVIEW`` row (archived from ``keyed_audit_chain``) needs that label, which this
    revision's ``audit_action`` lacks: it is added first, as that revision's downgrade keeps
    it while such rows exist.
    """
    audit = f"{ARCHIVE}.configuration_audit_logs"
    runs = f"{ARCHIVE}.apply_runs"
    with_review = ", ".join(f"'{label}'" for label in (*ENUMS["audit_action"], "REVIEW"))
    op.execute(
        f"""
        DO $$
        BEGIN
            IF to_regclass('{audit}') IS NOT NULL THEN
                IF EXISTS (SELECT FROM {audit} WHERE action = 'REVIEW') THEN
                    CREATE TYPE audit_action_new AS ENUM ({with_review});
                    ALTER TABLE configuration_audit_logs ALTER COLUMN action
                        TYPE audit_action_new USING action::text::audit_action_new;
                    DROP TYPE audit_action;
                    ALTER TYPE audit_action_new RENAME TO audit_action;
                END IF;
                INSERT INTO configuration_audit_logs ({", ".join(AUDIT_COLUMNS)})
                SELECT {_restored(AUDIT_COLUMNS)} FROM {audit};
                PERFORM setval(pg_get_serial_sequence('configuration_audit_logs', 'id'), max(id))
                   FROM configuration_audit_logs HAVING count(*) > 0;
                DROP TABLE {audit};
            END IF;
            IF to_regclass('{runs}') IS NOT NULL THEN
                INSERT INTO apply_runs ({", ".join(APPLY_RUN_COLUMNS)})
                SELECT {_restored(APPLY_RUN_COLUMNS)} FROM {runs};
                DROP TABLE {runs};
            END IF;
        END
        $$
        """
    )


def _restored(columns: Sequence[str]) -> str:
    return ", ".join(f"{c}::{ENUM_COLUMNS[c]}" if c in ENUM_COLUMNS else c for c in columns)


def drop_empty_archive() -> None:
    # Only what this revision put there, and the schema only if nothing else is in it and it
    # is ours (a DBA may have created it beforehand, or keep other tables in it). Nested IFs:
    # SQL does not promise to evaluate AND from left to right.
    op.execute(
        f"""
        DO $$
        DECLARE
            archive oid := to_regnamespace('{ARCHIVE}');
        BEGIN
            IF archive IS NULL THEN
                RETURN;
            END IF;
            IF NOT EXISTS (SELECT FROM pg_class WHERE relnamespace = archive) THEN
                DROP FUNCTION IF EXISTS {ARCHIVE}.refuse_changes();
                IF NOT EXISTS (SELECT FROM pg_proc WHERE pronamespace = archive)
                   AND pg_has_role((SELECT nspowner FROM pg_namespace WHERE oid = archive),
                                   'USAGE')
                THEN
                    DROP SCHEMA {ARCHIVE};
                END IF;
            END IF;
        END
        $$
        """
    )
