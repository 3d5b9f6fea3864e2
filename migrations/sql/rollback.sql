BEGIN;

-- Running downgrade database_recorded_writes -> keyed_audit_chain

DROP TRIGGER integration_configs_record_insert ON integration_configs;

DROP TRIGGER integration_configs_record_update ON integration_configs;

DROP TRIGGER integration_configs_record_delete ON integration_configs;

DROP TRIGGER webhook_configurations_record_insert ON webhook_configurations;

DROP TRIGGER webhook_configurations_record_update ON webhook_configurations;

DROP TRIGGER webhook_configurations_record_delete ON webhook_configurations;

DROP TRIGGER oauth_tokens_record_insert ON oauth_tokens;

DROP TRIGGER oauth_tokens_record_update ON oauth_tokens;

DROP TRIGGER oauth_tokens_record_delete ON oauth_tokens;

DROP FUNCTION record_configuration_write();

DROP TRIGGER configuration_audit_logs_recorded_only_by_trigger ON configuration_audit_logs;

DROP FUNCTION configuration_audit_logs_recorded_only_by_trigger();

DROP INDEX idx_configuration_audit_logs_successor;

REVOKE UPDATE (health_status, health_message, last_health_check_at, next_sync_at, last_sync_at, updated_at) ON integration_configs FROM reconciler_app;

REVOKE UPDATE (circuit_breaker_status, consecutive_failures, circuit_opened_at, total_trigger_count, total_failure_count, last_trigger_at, last_success_at, last_failure_at, updated_at) ON webhook_configurations FROM reconciler_app;

REVOKE UPDATE (access_token, refresh_token, token_type, scope, expires_at, refresh_token_expires_at, updated_at) ON oauth_tokens FROM reconciler_app;

REVOKE INSERT (tenant_id, platform, access_token, refresh_token, token_type, scope, expires_at, refresh_token_expires_at, hubspot_portal_id, hubspot_user_id, hubspot_app_id, stripe_account_id, stripe_user_id, stripe_livemode, quickbooks_realm_id, created_by, created_at, updated_at) ON oauth_tokens FROM reconciler_app;

GRANT INSERT, UPDATE, DELETE ON integration_configs, webhook_configurations, oauth_tokens TO reconciler_app;

GRANT INSERT ON configuration_audit_logs TO reconciler_app;

UPDATE alembic_version SET version_num='keyed_audit_chain' WHERE alembic_version.version_num = 'database_recorded_writes';

-- Running downgrade keyed_audit_chain -> add_configuration_management

CREATE OR REPLACE FUNCTION configuration_audit_logs_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' THEN
                IF (to_jsonb(NEW) - ARRAY['reviewed_at', 'reviewed_by', 'review_decision', 'review_note']) IS DISTINCT FROM
                   (to_jsonb(OLD) - ARRAY['reviewed_at', 'reviewed_by', 'review_decision', 'review_note']) THEN
                    RAISE EXCEPTION USING
                        MESSAGE = 'configuration_audit_logs is append-only: an UPDATE may '
                            || 'change only the review columns (reviewed_at, reviewed_by, review_decision, review_note)',
                        ERRCODE = 'insufficient_privilege';
                END IF;
                RETURN NEW;
            END IF;
            -- No "%%" placeholder: offline SQL rendering would double it.
            RAISE EXCEPTION USING
                MESSAGE = 'configuration_audit_logs is append-only: ' || TG_OP || ' is not allowed',
                ERRCODE = 'insufficient_privilege';
        END
        $$;

UPDATE configuration_audit_logs a
           SET reviewed_at = r.created_at,
               reviewed_by = r.performed_by,
               review_decision = (r.changes ->> 'decision')::review_decision,
               review_note = r.changes ->> 'note'
          FROM configuration_audit_logs r
         WHERE r.action = 'REVIEW' AND r.tenant_id = a.tenant_id
           AND r.changes ->> 'reviews' = a.id::text
           AND a.reviewed_at IS NULL;

DROP INDEX idx_configuration_audit_logs_review_of;

GRANT UPDATE (reviewed_at, reviewed_by, review_decision, review_note) ON configuration_audit_logs TO reconciler_app;

DO $$
        BEGIN
            -- Review rows are kept, so their label stays while any exists.
            IF NOT EXISTS (SELECT FROM configuration_audit_logs WHERE action::text = 'REVIEW') THEN
            CREATE TYPE audit_action_new AS ENUM ('CREATE', 'UPDATE', 'DELETE', 'REVOKE', 'ROTATE');
            ALTER TABLE configuration_audit_logs ALTER COLUMN action TYPE audit_action_new USING action::text::audit_action_new;
            DROP TYPE audit_action;
            ALTER TYPE audit_action_new RENAME TO audit_action;
            END IF;
        END
        $$;

UPDATE alembic_version SET version_num='add_configuration_management' WHERE alembic_version.version_num = 'keyed_audit_chain';

-- Running downgrade add_configuration_management -> baseline

DROP TABLE apply_runs;

DROP TABLE configuration_audit_logs;

DROP TABLE webhook_configurations;

DROP TABLE integration_configs;

DROP FUNCTION configuration_audit_logs_append_only();

DROP POLICY tenant_isolation ON oauth_tokens;

ALTER TABLE oauth_tokens DISABLE ROW LEVEL SECURITY;

REVOKE ALL ON oauth_tokens FROM reconciler_app;

DROP INDEX idx_oauth_tokens_tenant_active;

DROP INDEX idx_oauth_tokens_stripe_account;

DROP INDEX idx_oauth_tokens_hubspot_portal;

DROP INDEX idx_oauth_tokens_quickbooks_realm;

ALTER TABLE oauth_tokens DROP COLUMN hubspot_portal_id;

ALTER TABLE oauth_tokens DROP COLUMN hubspot_user_id;

ALTER TABLE oauth_tokens DROP COLUMN hubspot_app_id;

ALTER TABLE oauth_tokens DROP COLUMN stripe_account_id;

ALTER TABLE oauth_tokens DROP COLUMN stripe_user_id;

ALTER TABLE oauth_tokens DROP COLUMN stripe_livemode;

ALTER TABLE oauth_tokens DROP COLUMN quickbooks_realm_id;

ALTER TABLE oauth_tokens DROP COLUMN refresh_token_expires_at;

ALTER TABLE oauth_tokens DROP COLUMN is_active;

ALTER TABLE oauth_tokens DROP COLUMN revoked_at;

ALTER TABLE oauth_tokens DROP COLUMN revoked_by;

ALTER TABLE oauth_tokens DROP COLUMN revoked_reason;

ALTER TABLE oauth_tokens DROP COLUMN encryption_key_version;

ALTER TABLE oauth_tokens DROP COLUMN metadata;

ALTER TABLE oauth_tokens DROP COLUMN created_by;

ALTER TABLE oauth_tokens DROP COLUMN row_version;

DROP TYPE config_type;

DROP TYPE environment;

DROP TYPE sync_direction;

DROP TYPE health_status;

DROP TYPE webhook_type;

DROP TYPE auth_type;

DROP TYPE circuit_breaker_status;

DROP TYPE risk_level;

DROP TYPE audit_action;

DROP TYPE entity_type;

DROP TYPE review_decision;

DROP TYPE apply_outcome;

UPDATE alembic_version SET version_num='baseline' WHERE alembic_version.version_num = 'add_configuration_management';

-- Running downgrade baseline -> 

DROP TABLE oauth_tokens;

DROP TYPE platform;

DELETE FROM alembic_version WHERE alembic_version.version_num = 'baseline';

COMMIT;

