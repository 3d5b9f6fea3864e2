BEGIN;

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

