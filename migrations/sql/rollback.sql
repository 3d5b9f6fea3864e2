BEGIN;

-- Running downgrade least_privilege_roles -> keyed_audit_chain

ALTER POLICY tenant_isolation ON oauth_tokens TO PUBLIC USING (tenant_id = current_setting('app.tenant_id', true)) WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER POLICY tenant_isolation ON integration_configs TO PUBLIC USING (tenant_id = current_setting('app.tenant_id', true)) WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER POLICY tenant_isolation ON webhook_configurations TO PUBLIC USING (tenant_id = current_setting('app.tenant_id', true)) WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER POLICY tenant_isolation ON configuration_audit_logs TO PUBLIC USING (tenant_id = current_setting('app.tenant_id', true)) WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

DROP POLICY reconciler_owner ON oauth_tokens;

DROP POLICY reconciler_deploy ON oauth_tokens;

DROP POLICY reconciler_ci ON oauth_tokens;

ALTER TABLE oauth_tokens NO FORCE ROW LEVEL SECURITY;

DROP POLICY reconciler_owner ON integration_configs;

DROP POLICY reconciler_deploy ON integration_configs;

DROP POLICY reconciler_ci ON integration_configs;

ALTER TABLE integration_configs NO FORCE ROW LEVEL SECURITY;

DROP POLICY reconciler_owner ON webhook_configurations;

DROP POLICY reconciler_deploy ON webhook_configurations;

DROP POLICY reconciler_ci ON webhook_configurations;

ALTER TABLE webhook_configurations NO FORCE ROW LEVEL SECURITY;

DROP POLICY reconciler_owner ON configuration_audit_logs;

DROP POLICY reconciler_deploy ON configuration_audit_logs;

DROP POLICY reconciler_ci ON configuration_audit_logs;

ALTER TABLE configuration_audit_logs NO FORCE ROW LEVEL SECURITY;

DROP POLICY reconciler_owner ON apply_runs;

DROP POLICY reconciler_deploy ON apply_runs;

DROP POLICY reconciler_ci ON apply_runs;

ALTER TABLE apply_runs NO FORCE ROW LEVEL SECURITY;

ALTER TABLE apply_runs DISABLE ROW LEVEL SECURITY;

GRANT SELECT ON apply_runs TO reconciler_app;

REVOKE ALL ON oauth_tokens, integration_configs, webhook_configurations, configuration_audit_logs, apply_runs, alembic_version FROM reconciler_deploy, reconciler_ci;

DO $$
        BEGIN
            EXECUTE 'REVOKE ALL ON SEQUENCE '
                || pg_get_serial_sequence('configuration_audit_logs', 'id')
                || ' FROM reconciler_deploy';
        END
        $$;

DROP FUNCTION reconciler_row_counts(text[]);

DROP FUNCTION reconciler_granted_tenant();

DROP TABLE reconciler_tenant_grants;

UPDATE alembic_version SET version_num='keyed_audit_chain' WHERE alembic_version.version_num = 'least_privilege_roles';

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

