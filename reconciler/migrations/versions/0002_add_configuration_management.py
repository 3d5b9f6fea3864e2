"""add_configuration_management: the configuration-management schema and the reconciler's state.

Revision ID: add_configuration_management
Revises: baseline
Create Date: 2025-01-15

Upgrade (the seed schema's migration plus what the reconciler needs):

* ``oauth_tokens``: connected-account identity, revocation, key version and bookkeeping
  columns and indexes; existing rows are migrated exactly as the seed's data step does;
* new tables ``integration_configs``, ``webhook_configurations``,
  ``configuration_audit_logs`` (append-only by trigger) and ``apply_runs``;
* row-level security (policy ``tenant_isolation`` on ``app.tenant_id``) on the four tenant
  tables, and the NOLOGIN role ``reconciler_app`` with its grants.

Downgrade is the seed's rollback: everything above is dropped and ``oauth_tokens`` returns to
its baseline columns, keeping every row. The role ``reconciler_app`` is kept, because roles
belong to the whole cluster and other databases on it may use it.

Enum labels are spelled out here rather than imported: a migration is a fixed snapshot,
while ``reconciler.model.enums`` moves on with later migrations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "add_configuration_management"
down_revision: str | None = "baseline"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

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
APP_ROLE = "reconciler_app"
REVIEW_COLUMNS = ("reviewed_at", "reviewed_by", "review_decision", "review_note")

OAUTH_COLUMNS_ADDED = (
    "hubspot_portal_id",
    "hubspot_user_id",
    "hubspot_app_id",
    "stripe_account_id",
    "stripe_user_id",
    "stripe_livemode",
    "quickbooks_realm_id",
    "refresh_token_expires_at",
    "is_active",
    "revoked_at",
    "revoked_by",
    "revoked_reason",
    "encryption_key_version",
    "metadata",
    "created_by",
    "row_version",
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
    create_integration_configs()
    create_webhook_configurations()
    create_configuration_audit_logs()
    create_apply_runs()
    enable_row_level_security()


def upgrade_oauth_tokens() -> None:
    for column in (
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
    ):
        op.add_column("oauth_tokens", column)

    # The seed's data step, verbatim: existing tokens become active, key version 1.
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
    review = ", ".join(f"'{c}'" for c in REVIEW_COLUMNS)
    op.execute(
        f"""
        CREATE FUNCTION configuration_audit_logs_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' THEN
                IF (to_jsonb(NEW) - ARRAY[{review}]) IS DISTINCT FROM
                   (to_jsonb(OLD) - ARRAY[{review}]) THEN
                    RAISE EXCEPTION USING
                        MESSAGE = 'configuration_audit_logs is append-only: an UPDATE may '
                            || 'change only the review columns ({", ".join(REVIEW_COLUMNS)})',
                        ERRCODE = 'insufficient_privilege';
                END IF;
                RETURN NEW;
            END IF;
            -- No "%" placeholder: offline SQL rendering would double it.
            RAISE EXCEPTION USING
                MESSAGE = 'configuration_audit_logs is append-only: ' || TG_OP || ' is not allowed',
                ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
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
    for table in ("apply_runs", "configuration_audit_logs", "webhook_configurations"):
        op.execute(f"DROP TABLE {table}")
    op.execute("DROP TABLE integration_configs")
    op.execute("DROP FUNCTION configuration_audit_logs_append_only()")

    op.execute("DROP POLICY tenant_isolation ON oauth_tokens")
    op.execute("ALTER TABLE oauth_tokens DISABLE ROW LEVEL SECURITY")
    op.execute(f"REVOKE ALL ON oauth_tokens FROM {APP_ROLE}")
    for index in OAUTH_INDEXES_ADDED:
        op.drop_index(index, table_name="oauth_tokens")
    for column in OAUTH_COLUMNS_ADDED:
        op.drop_column("oauth_tokens", column)

    for name in ENUMS:
        op.execute(f"DROP TYPE {name}")
