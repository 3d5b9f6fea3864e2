BEGIN;

-- Running downgrade fleet_chain_lock -> citus_runtime

DO $do$
DECLARE
    def text := pg_get_functiondef(CAST('record_configuration_write()' AS regprocedure));
BEGIN
    IF position($old0$
    -- The fleet chain lock first (fleet_chain_lock): exclusive for a write to more than
    -- 256 tenants, which then takes no tenant locks; shared otherwise.
    IF (SELECT count(DISTINCT r ->> 't') FROM jsonb_array_elements(changed_rows) r)
       > 256 THEN
        PERFORM pg_advisory_xact_lock(('x' || left(encode(sha256(convert_to('reconciler/audit-chains', 'UTF8')), 'hex'), 16))::bit(64)::bigint);
    ELSE
        PERFORM pg_advisory_xact_lock_shared(('x' || left(encode(sha256(convert_to('reconciler/audit-chains', 'UTF8')), 'hex'), 16))::bit(64)::bigint);
        -- One chain lock per tenant, in key order (the order the reconciler takes them in).
        PERFORM pg_advisory_xact_lock(k)
           FROM (SELECT DISTINCT ('x' || left(encode(sha256(convert_to(
                        'reconciler/audit-chain/' || (r ->> 't'), 'UTF8')), 'hex'), 16))
                        ::bit(64)::bigint AS k
                   FROM jsonb_array_elements(changed_rows) r) keys
          ORDER BY k;
    END IF;
$old0$ IN def) = 0 THEN
        RAISE EXCEPTION 'fleet_chain_lock: record_configuration_write() is not the expected version';
    END IF;
    def := replace(def, $old0$
    -- The fleet chain lock first (fleet_chain_lock): exclusive for a write to more than
    -- 256 tenants, which then takes no tenant locks; shared otherwise.
    IF (SELECT count(DISTINCT r ->> 't') FROM jsonb_array_elements(changed_rows) r)
       > 256 THEN
        PERFORM pg_advisory_xact_lock(('x' || left(encode(sha256(convert_to('reconciler/audit-chains', 'UTF8')), 'hex'), 16))::bit(64)::bigint);
    ELSE
        PERFORM pg_advisory_xact_lock_shared(('x' || left(encode(sha256(convert_to('reconciler/audit-chains', 'UTF8')), 'hex'), 16))::bit(64)::bigint);
        -- One chain lock per tenant, in key order (the order the reconciler takes them in).
        PERFORM pg_advisory_xact_lock(k)
           FROM (SELECT DISTINCT ('x' || left(encode(sha256(convert_to(
                        'reconciler/audit-chain/' || (r ->> 't'), 'UTF8')), 'hex'), 16))
                        ::bit(64)::bigint AS k
                   FROM jsonb_array_elements(changed_rows) r) keys
          ORDER BY k;
    END IF;
$old0$, $new0$
    -- One chain lock per tenant, in key order (the order the reconciler takes them in).
    PERFORM pg_advisory_xact_lock(k)
       FROM (SELECT DISTINCT ('x' || left(encode(sha256(convert_to(
                    'reconciler/audit-chain/' || (r ->> 't'), 'UTF8')), 'hex'), 16))
                    ::bit(64)::bigint AS k
               FROM jsonb_array_elements(changed_rows) r) keys
      ORDER BY k;
$new0$);
    EXECUTE def;
END
$do$;

UPDATE alembic_version SET version_num='citus_runtime' WHERE alembic_version.version_num = 'fleet_chain_lock';

-- Running downgrade citus_runtime -> citus_distribution

DO $do$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
        EXECUTE 'ALTER FUNCTION reconciler_granted_tenant() RESET citus.allow_nested_distributed_execution';
    END IF;
END
$do$;

DO $do$
DECLARE
    def text := pg_get_functiondef(CAST('reconciler_active_config(text, text)' AS regprocedure));
BEGIN
    IF position($old0$            ERRCODE = 'insufficient_privilege';
    END IF;
    -- On Citus the policy and the recording trigger run on the workers: carry the tenant.
    PERFORM reconciler_set_local('app.tenant_id', tenant, true);$old0$ IN def) = 0 THEN
        RAISE EXCEPTION 'citus_runtime: reconciler_active_config(text, text) is not the expected version';
    END IF;
    def := replace(def, $old0$            ERRCODE = 'insufficient_privilege';
    END IF;
    -- On Citus the policy and the recording trigger run on the workers: carry the tenant.
    PERFORM reconciler_set_local('app.tenant_id', tenant, true);$old0$, $new0$            ERRCODE = 'insufficient_privilege';
    END IF;$new0$);
    EXECUTE def;
END
$do$;

DO $do$
DECLARE
    def text := pg_get_functiondef(CAST('reconciler_webhook_allow(bigint)' AS regprocedure));
BEGIN
    IF position($old0$            ERRCODE = 'insufficient_privilege';
    END IF;
    -- On Citus the policy and the recording trigger run on the workers: carry the tenant.
    PERFORM reconciler_set_local('app.tenant_id', tenant, true);$old0$ IN def) = 0 THEN
        RAISE EXCEPTION 'citus_runtime: reconciler_webhook_allow(bigint) is not the expected version';
    END IF;
    def := replace(def, $old0$            ERRCODE = 'insufficient_privilege';
    END IF;
    -- On Citus the policy and the recording trigger run on the workers: carry the tenant.
    PERFORM reconciler_set_local('app.tenant_id', tenant, true);$old0$, $new0$            ERRCODE = 'insufficient_privilege';
    END IF;$new0$);
    IF position($old1$PERFORM reconciler_set_local($old1$ IN def) = 0 THEN
        RAISE EXCEPTION 'citus_runtime: reconciler_webhook_allow(bigint) is not the expected version';
    END IF;
    def := replace(def, $old1$PERFORM reconciler_set_local($old1$, $new1$PERFORM set_config($new1$);
    EXECUTE def;
END
$do$;

DO $do$
DECLARE
    def text := pg_get_functiondef(CAST('reconciler_webhook_record(bigint, boolean, text)' AS regprocedure));
BEGIN
    IF position($old0$            ERRCODE = 'insufficient_privilege';
    END IF;
    -- On Citus the policy and the recording trigger run on the workers: carry the tenant.
    PERFORM reconciler_set_local('app.tenant_id', tenant, true);$old0$ IN def) = 0 THEN
        RAISE EXCEPTION 'citus_runtime: reconciler_webhook_record(bigint, boolean, text) is not the expected version';
    END IF;
    def := replace(def, $old0$            ERRCODE = 'insufficient_privilege';
    END IF;
    -- On Citus the policy and the recording trigger run on the workers: carry the tenant.
    PERFORM reconciler_set_local('app.tenant_id', tenant, true);$old0$, $new0$            ERRCODE = 'insufficient_privilege';
    END IF;$new0$);
    IF position($old1$PERFORM reconciler_set_local($old1$ IN def) = 0 THEN
        RAISE EXCEPTION 'citus_runtime: reconciler_webhook_record(bigint, boolean, text) is not the expected version';
    END IF;
    def := replace(def, $old1$PERFORM reconciler_set_local($old1$, $new1$PERFORM set_config($new1$);
    EXECUTE def;
END
$do$;

DO $do$
DECLARE
    def text := pg_get_functiondef(CAST('record_configuration_write()' AS regprocedure));
BEGIN
    IF position($old0$DECLARE
    -- On Citus the trigger fires on a shard, named <table>_<shard id>: the table it records.
    recorded_table constant text := regexp_replace(TG_TABLE_NAME, '_[0-9]+$', '');
    runtime constant$old0$ IN def) = 0 THEN
        RAISE EXCEPTION 'citus_runtime: record_configuration_write() is not the expected version';
    END IF;
    def := replace(def, $old0$DECLARE
    -- On Citus the trigger fires on a shard, named <table>_<shard id>: the table it records.
    recorded_table constant text := regexp_replace(TG_TABLE_NAME, '_[0-9]+$', '');
    runtime constant$old0$, $new0$DECLARE
    runtime constant$new0$);
    IF position($old1$recorded_table$old1$ IN def) = 0 THEN
        RAISE EXCEPTION 'citus_runtime: record_configuration_write() is not the expected version';
    END IF;
    def := replace(def, $old1$recorded_table$old1$, $new1$TG_TABLE_NAME$new1$);
    EXECUTE def;
END
$do$;

DROP FUNCTION reconciler_set_local(text, text, boolean);

UPDATE alembic_version SET version_num='citus_distribution' WHERE alembic_version.version_num = 'citus_runtime';

-- Running downgrade citus_distribution -> approvals

DO $$
        DECLARE
            node_group integer;
            fn text;
            active_config text;
        BEGIN

            IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
                RETURN;
            END IF;
            EXECUTE 'SELECT groupid FROM pg_dist_local_group' INTO node_group;
            IF node_group <> 0 THEN
                RAISE EXCEPTION USING
                    MESSAGE = 'this is a Citus worker node: run the upgrade on the coordinator',
                    ERRCODE = 'feature_not_supported';
            END IF;
            PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
            PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
            IF to_regprocedure('reconciler_active_config(text, text)') IS NOT NULL THEN
                active_config := pg_get_functiondef('reconciler_active_config(text, text)'::regprocedure);
            END IF;
            IF EXISTS (SELECT FROM pg_dist_partition
                        WHERE logicalrelid = 'configuration_audit_logs'::regclass) THEN
                PERFORM set_config('citus.enable_ddl_propagation', 'off', true);
                ALTER TABLE configuration_audit_logs ALTER COLUMN id DROP IDENTITY;
                PERFORM set_config('citus.enable_ddl_propagation', 'on', true);
                PERFORM undistribute_table('configuration_audit_logs');
                ALTER TABLE configuration_audit_logs ALTER COLUMN id
                    ADD GENERATED BY DEFAULT AS IDENTITY;
                PERFORM setval(pg_get_serial_sequence('configuration_audit_logs', 'id'), max(id))
                   FROM configuration_audit_logs HAVING count(*) > 0;
            END IF;
            IF EXISTS (SELECT FROM pg_dist_partition
                        WHERE logicalrelid = 'webhook_configurations'::regclass) THEN
                PERFORM set_config('citus.enable_ddl_propagation', 'off', true);
                ALTER TABLE webhook_configurations ALTER COLUMN id DROP IDENTITY;
                PERFORM set_config('citus.enable_ddl_propagation', 'on', true);
                PERFORM undistribute_table('webhook_configurations');
                ALTER TABLE webhook_configurations ALTER COLUMN id
                    ADD GENERATED BY DEFAULT AS IDENTITY;
                PERFORM setval(pg_get_serial_sequence('webhook_configurations', 'id'), max(id))
                   FROM webhook_configurations HAVING count(*) > 0;
            END IF;
            IF EXISTS (SELECT FROM pg_dist_partition
                        WHERE logicalrelid = 'integration_configs'::regclass) THEN
                PERFORM set_config('citus.enable_ddl_propagation', 'off', true);
                ALTER TABLE integration_configs ALTER COLUMN id DROP IDENTITY;
                PERFORM set_config('citus.enable_ddl_propagation', 'on', true);
                PERFORM undistribute_table('integration_configs');
                ALTER TABLE integration_configs ALTER COLUMN id
                    ADD GENERATED BY DEFAULT AS IDENTITY;
                PERFORM setval(pg_get_serial_sequence('integration_configs', 'id'), max(id))
                   FROM integration_configs HAVING count(*) > 0;
            END IF;
            IF EXISTS (SELECT FROM pg_dist_partition
                        WHERE logicalrelid = 'oauth_tokens'::regclass) THEN
                PERFORM set_config('citus.enable_ddl_propagation', 'off', true);
                ALTER TABLE oauth_tokens ALTER COLUMN id DROP IDENTITY;
                PERFORM set_config('citus.enable_ddl_propagation', 'on', true);
                PERFORM undistribute_table('oauth_tokens');
                ALTER TABLE oauth_tokens ALTER COLUMN id
                    ADD GENERATED BY DEFAULT AS IDENTITY;
                PERFORM setval(pg_get_serial_sequence('oauth_tokens', 'id'), max(id))
                   FROM oauth_tokens HAVING count(*) > 0;
            END IF;
            IF EXISTS (SELECT FROM pg_dist_partition
                        WHERE logicalrelid = 'reconciler_tenant_grants'::regclass) THEN
                PERFORM undistribute_table('reconciler_tenant_grants');
            END IF;
            IF EXISTS (SELECT FROM pg_dist_partition
                        WHERE logicalrelid = 'apply_runs'::regclass) THEN
                PERFORM undistribute_table('apply_runs');
            END IF;
            IF active_config IS NOT NULL
               AND to_regprocedure('reconciler_active_config(text, text)') IS NULL THEN
                EXECUTE active_config;
                REVOKE ALL ON FUNCTION reconciler_active_config(text, text) FROM PUBLIC;
                GRANT EXECUTE ON FUNCTION reconciler_active_config(text, text) TO reconciler_app;
            END IF;
            EXECUTE 'CREATE OR REPLACE FUNCTION reconciler_row_counts(wanted text[]) RETURNS TABLE (table_name text, row_count bigint) LANGUAGE sql STABLE SECURITY DEFINER AS $fn$
SELECT ''oauth_tokens''::text, (SELECT count(*) FROM oauth_tokens) WHERE ''oauth_tokens'' = ANY(wanted)
            UNION ALL
            SELECT ''integration_configs''::text, (SELECT count(*) FROM integration_configs) WHERE ''integration_configs'' = ANY(wanted)
            UNION ALL
            SELECT ''webhook_configurations''::text, (SELECT count(*) FROM webhook_configurations) WHERE ''webhook_configurations'' = ANY(wanted)
            UNION ALL
            SELECT ''configuration_audit_logs''::text, (SELECT count(*) FROM configuration_audit_logs) WHERE ''configuration_audit_logs'' = ANY(wanted)
            UNION ALL
            SELECT ''apply_runs''::text, (SELECT count(*) FROM apply_runs) WHERE ''apply_runs'' = ANY(wanted)
$fn$';
            EXECUTE 'ALTER FUNCTION reconciler_row_counts(text[]) SET search_path = '
                || 'pg_catalog, '
                || (SELECT relnamespace::regnamespace::text FROM pg_class
                     WHERE oid = 'integration_configs'::regclass)
                || ', pg_temp';
            fn := pg_get_functiondef('record_configuration_write()'::regprocedure);
            IF (position('last_id' IN fn) > 0) <> false THEN
                fn := replace(fn, '    new_id bigint;' || chr(10) || '    last_id bigint;', '    new_id bigint;');
                fn := replace(fn, 'SELECT a.entry_hash::text, a.id INTO head, last_id FROM configuration_audit_logs a', 'SELECT a.entry_hash::text INTO head FROM configuration_audit_logs a');
                fn := replace(fn, 'new_id := greatest(nextval(pg_get_serial_sequence(''configuration_audit_logs'', ''id'')), coalesce(last_id, 0) + 1);' || chr(10) || '        last_id := new_id;', 'new_id := nextval(pg_get_serial_sequence(''configuration_audit_logs'', ''id''));');
                IF (length(fn) - length(replace(fn, 'last_id', ''))) / 7 <> 0 THEN
                    RAISE EXCEPTION USING MESSAGE = 'record_configuration_write() is '
                        || 'not the function this revision knows', ERRCODE = 'object_not_in_prerequisite_state';
                END IF;
                EXECUTE fn;
            END IF;
            EXECUTE 'GRANT USAGE ON SEQUENCE '
                || pg_get_serial_sequence('configuration_audit_logs', 'id')
                || ' TO reconciler_deploy';
            ALTER POLICY tenant_isolation ON oauth_tokens
                USING (tenant_id = (SELECT reconciler_granted_tenant())) WITH CHECK (tenant_id = (SELECT reconciler_granted_tenant()));
            ALTER POLICY tenant_isolation ON integration_configs
                USING (tenant_id = (SELECT reconciler_granted_tenant())) WITH CHECK (tenant_id = (SELECT reconciler_granted_tenant()));
            ALTER POLICY tenant_isolation ON webhook_configurations
                USING (tenant_id = (SELECT reconciler_granted_tenant())) WITH CHECK (tenant_id = (SELECT reconciler_granted_tenant()));
            ALTER POLICY tenant_isolation ON configuration_audit_logs
                USING (tenant_id = (SELECT reconciler_granted_tenant())) WITH CHECK (tenant_id = (SELECT reconciler_granted_tenant()));
        END
        $$;

UPDATE alembic_version SET version_num='approvals' WHERE alembic_version.version_num = 'citus_distribution';

-- Running downgrade approvals -> run_provenance

DROP TRIGGER plan_approvals_append_only ON plan_approvals;

DROP TRIGGER plan_approvals_no_truncate ON plan_approvals;

DROP FUNCTION plan_approvals_append_only();

REVOKE ALL ON plan_approvals FROM reconciler_deploy, reconciler_ci;

DO $$
        BEGIN
            EXECUTE 'REVOKE ALL ON SEQUENCE ' || pg_get_serial_sequence('plan_approvals', 'id')
                || ' FROM reconciler_deploy';
            IF EXISTS (SELECT FROM plan_approvals) THEN
                -- Approvals are a record: kept read-only until an upgrade brings them back.
                CREATE SCHEMA IF NOT EXISTS reconciler_archive;
                EXECUTE 'ALTER TABLE plan_approvals SET SCHEMA reconciler_archive';
                EXECUTE 'CREATE OR REPLACE FUNCTION reconciler_archive.approvals_read_only() '
                    || 'RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN RAISE EXCEPTION '
                    || '''reconciler_archive.plan_approvals is archived (reconciler db upgrade restores it)'' '
                    || 'USING ERRCODE = ''insufficient_privilege''; END $f$';
                EXECUTE 'CREATE TRIGGER plan_approvals_read_only BEFORE INSERT OR UPDATE OR DELETE '
                    || 'ON reconciler_archive.plan_approvals FOR EACH ROW '
                    || 'EXECUTE FUNCTION reconciler_archive.approvals_read_only()';
                EXECUTE 'CREATE TRIGGER plan_approvals_no_truncate BEFORE TRUNCATE '
                    || 'ON reconciler_archive.plan_approvals FOR EACH STATEMENT '
                    || 'EXECUTE FUNCTION reconciler_archive.approvals_read_only()';
            ELSE
                DROP TABLE plan_approvals;
            END IF;
        END
        $$;

UPDATE alembic_version SET version_num='run_provenance' WHERE alembic_version.version_num = 'approvals';

-- Running downgrade run_provenance -> runtime_functions

UPDATE apply_runs
               SET user_agent = coalesce(user_agent, '') || ' [git-dirty]'
             WHERE git_dirty = true;

UPDATE apply_runs
               SET user_agent = coalesce(user_agent, '') || ' [git-clean]'
             WHERE git_dirty = false;

ALTER TABLE apply_runs DROP COLUMN git_dirty;

UPDATE alembic_version SET version_num='runtime_functions' WHERE alembic_version.version_num = 'run_provenance';

-- Running downgrade runtime_functions -> managed_tokens

REVOKE INSERT (encryption_key_version) ON oauth_tokens FROM reconciler_app;

DROP FUNCTION reconciler_active_config(text, text);

DROP FUNCTION reconciler_webhook_allow(bigint);

DROP FUNCTION reconciler_webhook_record(bigint, boolean, text);

DO $do$
DECLARE
    def text := pg_get_functiondef(CAST('record_configuration_write()' AS regprocedure));
BEGIN
    IF position($old0$        changes := jsonb_build_object('recorded_by', 'database', 'operation', TG_OP,
                                      'transaction', xact, 'fields', rec.fields);
        -- The error a service gave reconciler_webhook_record for this failure.
        IF TG_TABLE_NAME = 'webhook_configurations'
           AND coalesce(current_setting('reconciler.runtime_call', true), '') = 'on'
           AND coalesce(current_setting('reconciler.runtime_error', true), '') <> '' THEN
            changes := changes || jsonb_build_object('runtime_error',
                                                     current_setting('reconciler.runtime_error', true));
        END IF;$old0$ IN def) = 0 THEN
        RAISE EXCEPTION 'runtime_functions: record_configuration_write() is not the expected version';
    END IF;
    def := replace(def, $old0$        changes := jsonb_build_object('recorded_by', 'database', 'operation', TG_OP,
                                      'transaction', xact, 'fields', rec.fields);
        -- The error a service gave reconciler_webhook_record for this failure.
        IF TG_TABLE_NAME = 'webhook_configurations'
           AND coalesce(current_setting('reconciler.runtime_call', true), '') = 'on'
           AND coalesce(current_setting('reconciler.runtime_error', true), '') <> '' THEN
            changes := changes || jsonb_build_object('runtime_error',
                                                     current_setting('reconciler.runtime_error', true));
        END IF;$old0$, $new0$        changes := jsonb_build_object('recorded_by', 'database', 'operation', TG_OP,
                                      'transaction', xact, 'fields', rec.fields);$new0$);
    IF position($old1$        RETURN NULL;
    END IF;

    -- A delivery recorded by the webhook functions that changes only the counters is not
    -- an event worth a chained row; circuit transitions are (runtime_functions).
    -- (Nested: the transition tables exist only for an UPDATE.)
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'webhook_configurations'
       AND coalesce(current_setting('reconciler.runtime_call', true), '') = 'on' THEN
        IF NOT EXISTS (
            SELECT FROM old_rows o FULL JOIN new_rows n
                        ON n.tenant_id = o.tenant_id AND n.id = o.id
             WHERE o.id IS NULL OR n.id IS NULL
                OR (to_jsonb(o) - ARRAY['consecutive_failures', 'total_trigger_count', 'total_failure_count', 'last_trigger_at', 'last_success_at', 'last_failure_at']::text[])
                   IS DISTINCT FROM (to_jsonb(n) - ARRAY['consecutive_failures', 'total_trigger_count', 'total_failure_count', 'last_trigger_at', 'last_success_at', 'last_failure_at']::text[])) THEN
            RETURN NULL;
        END IF;
    END IF;

    IF TG_OP = 'INSERT' THEN$old1$ IN def) = 0 THEN
        RAISE EXCEPTION 'runtime_functions: record_configuration_write() is not the expected version';
    END IF;
    def := replace(def, $old1$        RETURN NULL;
    END IF;

    -- A delivery recorded by the webhook functions that changes only the counters is not
    -- an event worth a chained row; circuit transitions are (runtime_functions).
    -- (Nested: the transition tables exist only for an UPDATE.)
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'webhook_configurations'
       AND coalesce(current_setting('reconciler.runtime_call', true), '') = 'on' THEN
        IF NOT EXISTS (
            SELECT FROM old_rows o FULL JOIN new_rows n
                        ON n.tenant_id = o.tenant_id AND n.id = o.id
             WHERE o.id IS NULL OR n.id IS NULL
                OR (to_jsonb(o) - ARRAY['consecutive_failures', 'total_trigger_count', 'total_failure_count', 'last_trigger_at', 'last_success_at', 'last_failure_at']::text[])
                   IS DISTINCT FROM (to_jsonb(n) - ARRAY['consecutive_failures', 'total_trigger_count', 'total_failure_count', 'last_trigger_at', 'last_success_at', 'last_failure_at']::text[])) THEN
            RETURN NULL;
        END IF;
    END IF;

    IF TG_OP = 'INSERT' THEN$old1$, $new1$        RETURN NULL;
    END IF;

    IF TG_OP = 'INSERT' THEN$new1$);
    EXECUTE def;
END
$do$;

UPDATE alembic_version SET version_num='managed_tokens' WHERE alembic_version.version_num = 'runtime_functions';

-- Running downgrade managed_tokens -> database_recorded_writes

UPDATE oauth_tokens
           SET metadata = metadata || jsonb_build_object('reconciler_managed_since', managed_since)
         WHERE managed_since IS NOT NULL;

ALTER TABLE oauth_tokens DROP COLUMN managed_since;

UPDATE alembic_version SET version_num='database_recorded_writes' WHERE alembic_version.version_num = 'managed_tokens';

-- Running downgrade database_recorded_writes -> least_privilege_roles

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

UPDATE alembic_version SET version_num='least_privilege_roles' WHERE alembic_version.version_num = 'database_recorded_writes';

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

CREATE SCHEMA IF NOT EXISTS reconciler_archive;

CREATE OR REPLACE FUNCTION reconciler_archive.refuse_changes() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION USING
                MESSAGE = TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME || ' is archived: '
                    || TG_OP || ' is not allowed (reconciler db upgrade restores it)',
                ERRCODE = 'insufficient_privilege';
        END
        $$;

DO $$
        DECLARE
            unknown text;
        BEGIN
            SELECT string_agg(a.attrelid::regclass || '.' || a.attname, ', '
                              ORDER BY a.attrelid::regclass::text, a.attname)
              INTO unknown
              FROM pg_attribute a
             WHERE a.attrelid IN ('configuration_audit_logs'::regclass, 'apply_runs'::regclass) AND a.attnum > 0 AND NOT a.attisdropped
               AND NOT ((a.attrelid = 'configuration_audit_logs'::regclass AND a.attname IN ('id', 'tenant_id', 'entity_type', 'entity_id', 'entity_address', 'action', 'changes', 'risk_level', 'risk_reasons', 'requires_review', 'reviewed_at', 'reviewed_by', 'review_decision', 'review_note', 'performed_by', 'ip_address', 'user_agent', 'session_id', 'apply_run_id', 'git_commit', 'source_path', 'created_at', 'prev_hash', 'entry_hash')) OR (a.attrelid = 'apply_runs'::regclass AND a.attname IN ('id', 'started_at', 'finished_at', 'actor', 'git_commit', 'manifests_digest', 'plan_digest', 'outcome', 'created_count', 'updated_count', 'deleted_count', 'revoked_count', 'reconciler_version', 'user_agent')));
            IF unknown IS NOT NULL THEN
                RAISE EXCEPTION USING
                    MESSAGE = 'cannot archive the audit log and apply history: column(s) '
                        || unknown || ' are not this revision''s and would be lost; the '
                        || 'revision that added them must archive them in its downgrade',
                    ERRCODE = 'invalid_table_definition';
            END IF;
        END
        $$;

DROP TRIGGER configuration_audit_logs_append_only ON configuration_audit_logs;

DROP TRIGGER configuration_audit_logs_no_truncate ON configuration_audit_logs;

DROP POLICY tenant_isolation ON configuration_audit_logs;

ALTER TABLE configuration_audit_logs DISABLE ROW LEVEL SECURITY;

ALTER TABLE configuration_audit_logs NO FORCE ROW LEVEL SECURITY;

ALTER TABLE apply_runs DISABLE ROW LEVEL SECURITY;

ALTER TABLE apply_runs NO FORCE ROW LEVEL SECURITY;

DO $$
        DECLARE
            g record;
        BEGIN
            FOR g IN
                SELECT DISTINCT x.tbl, CASE WHEN x.grantee = 0 THEN 'PUBLIC'
                                            ELSE x.grantee::regrole::text END AS grantee
                  FROM (SELECT c.oid::regclass AS tbl, c.relowner AS owner,
                               (aclexplode(c.relacl)).grantee
                          FROM pg_class c WHERE c.oid IN ('configuration_audit_logs'::regclass, 'apply_runs'::regclass)
                        UNION ALL
                        SELECT c.oid::regclass, c.relowner, (aclexplode(a.attacl)).grantee
                          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                         WHERE c.oid IN ('configuration_audit_logs'::regclass, 'apply_runs'::regclass)) x
                 WHERE x.grantee <> x.owner
            LOOP
                EXECUTE 'REVOKE ALL ON ' || g.tbl || ' FROM ' || g.grantee;
            END LOOP;
        END
        $$;

DO $$
        DECLARE
            c record;
        BEGIN
            FOR c IN
                SELECT a.attrelid::regclass AS tbl, quote_ident(a.attname) AS col
                  FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                 WHERE a.attrelid IN ('configuration_audit_logs'::regclass, 'apply_runs'::regclass) AND a.attnum > 0 AND NOT a.attisdropped
                   AND t.typtype = 'e'
            LOOP
                EXECUTE 'ALTER TABLE ' || c.tbl || ' ALTER COLUMN ' || c.col
                    || ' TYPE text USING ' || c.col || '::text';
            END LOOP;
        END
        $$;

ALTER TABLE configuration_audit_logs SET SCHEMA reconciler_archive;

CREATE TRIGGER configuration_audit_logs_read_only BEFORE INSERT OR UPDATE OR DELETE ON reconciler_archive.configuration_audit_logs FOR EACH ROW EXECUTE FUNCTION reconciler_archive.refuse_changes();

CREATE TRIGGER configuration_audit_logs_no_truncate BEFORE TRUNCATE ON reconciler_archive.configuration_audit_logs FOR EACH STATEMENT EXECUTE FUNCTION reconciler_archive.refuse_changes();

ALTER TABLE apply_runs SET SCHEMA reconciler_archive;

CREATE TRIGGER apply_runs_read_only BEFORE INSERT OR UPDATE OR DELETE ON reconciler_archive.apply_runs FOR EACH ROW EXECUTE FUNCTION reconciler_archive.refuse_changes();

CREATE TRIGGER apply_runs_no_truncate BEFORE TRUNCATE ON reconciler_archive.apply_runs FOR EACH STATEMENT EXECUTE FUNCTION reconciler_archive.refuse_changes();

DROP TABLE webhook_configurations;

DROP TABLE integration_configs;

DROP FUNCTION configuration_audit_logs_append_only();

DROP POLICY tenant_isolation ON oauth_tokens;

ALTER TABLE oauth_tokens DISABLE ROW LEVEL SECURITY;

ALTER TABLE oauth_tokens NO FORCE ROW LEVEL SECURITY;

CREATE TABLE reconciler_archive.oauth_tokens_columns AS SELECT tenant_id, id, hubspot_portal_id, hubspot_user_id, hubspot_app_id, stripe_account_id, stripe_user_id, stripe_livemode, quickbooks_realm_id, metadata, created_by, row_version, refresh_token_expires_at, is_active, revoked_at, revoked_by, revoked_reason, encryption_key_version, encode(sha256(convert_to(jsonb_build_array(oauth_tokens.access_token, oauth_tokens.refresh_token)::text, 'UTF8')), 'hex') AS token_digest FROM oauth_tokens;

ALTER TABLE reconciler_archive.oauth_tokens_columns ADD CONSTRAINT oauth_tokens_columns_pkey PRIMARY KEY (tenant_id, id);

CREATE TRIGGER oauth_tokens_columns_read_only BEFORE INSERT OR UPDATE OR DELETE ON reconciler_archive.oauth_tokens_columns FOR EACH ROW EXECUTE FUNCTION reconciler_archive.refuse_changes();

CREATE TRIGGER oauth_tokens_columns_no_truncate BEFORE TRUNCATE ON reconciler_archive.oauth_tokens_columns FOR EACH STATEMENT EXECUTE FUNCTION reconciler_archive.refuse_changes();

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

COMMIT;

