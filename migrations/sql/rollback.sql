BEGIN;

-- Running downgrade runtime_functions -> managed_tokens

REVOKE INSERT (encryption_key_version) ON oauth_tokens FROM reconciler_app;

DROP FUNCTION reconciler_active_config(text, text);

DROP FUNCTION reconciler_webhook_allow(bigint);

DROP FUNCTION reconciler_webhook_record(bigint, boolean, text);

CREATE OR REPLACE FUNCTION record_configuration_write() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $fn$
DECLARE
    runtime constant text[] := CASE TG_TABLE_NAME WHEN 'integration_configs' THEN ARRAY['health_status', 'health_message', 'last_health_check_at', 'next_sync_at', 'last_sync_at', 'updated_at']::text[] WHEN 'webhook_configurations' THEN ARRAY['circuit_breaker_status', 'consecutive_failures', 'circuit_opened_at', 'total_trigger_count', 'total_failure_count', 'last_trigger_at', 'last_success_at', 'last_failure_at', 'updated_at']::text[] WHEN 'oauth_tokens' THEN ARRAY['access_token', 'refresh_token', 'token_type', 'scope', 'expires_at', 'refresh_token_expires_at', 'updated_at']::text[] END;
    clear constant text[] := ARRAY['platform', 'environment', 'is_active', 'encryption_key_version', 'created_at', 'updated_at', 'deleted_at', 'created_by', 'updated_by', 'deleted_by', 'row_version', 'config_type', 'is_primary', 'sync_interval', 'sync_direction', 'next_sync_at', 'last_sync_at', 'health_status', 'health_message', 'last_health_check_at', 'features', 'mapping_rules', 'filter_rules', 'transform_rules', 'name', 'webhook_type', 'endpoint_url', 'auth_type', 'subscribed_events', 'retry_max_attempts', 'retry_initial_delay_seconds', 'retry_backoff_multiplier', 'retry_max_delay_seconds', 'circuit_breaker_threshold', 'circuit_breaker_reset_seconds', 'circuit_breaker_status', 'consecutive_failures', 'circuit_opened_at', 'total_trigger_count', 'total_failure_count', 'last_trigger_at', 'last_success_at', 'last_failure_at', 'token_type', 'scope', 'expires_at', 'refresh_token_expires_at', 'hubspot_portal_id', 'hubspot_user_id', 'hubspot_app_id', 'stripe_account_id', 'stripe_user_id', 'stripe_livemode', 'quickbooks_realm_id', 'revoked_at', 'revoked_by', 'revoked_reason']::text[];
    entity constant text := CASE TG_TABLE_NAME
        WHEN 'integration_configs' THEN 'INTEGRATION_CONFIG'
        WHEN 'webhook_configurations' THEN 'WEBHOOK_CONFIGURATION'
        ELSE 'OAUTH_TOKEN' END;
    kind constant text := CASE TG_TABLE_NAME
        WHEN 'integration_configs' THEN 'integration'
        WHEN 'webhook_configurations' THEN 'webhook'
        ELSE 'oauth_account' END;
    marker text := current_setting('reconciler.audited_write', true);
    caller_tenant text := current_setting('app.tenant_id', true);
    login constant text := session_user::text;
    client constant text := host(inet_client_addr());
    application constant text := nullif(current_setting('application_name'), '');
    stamp constant timestamptz := now();
    stamp_text constant text := to_char(stamp AT TIME ZONE 'UTC',
                                        'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
    xact constant text := pg_current_xact_id()::text;
    session text;
    changed_rows jsonb;
    rec record;
    tenant text;
    head text;
    new_id bigint;
    changes jsonb;
    ids bigint[] := ARRAY[]::bigint[];
    entity_ids bigint[] := ARRAY[]::bigint[];
    addresses text[] := ARRAY[]::text[];
    actions text[] := ARRAY[]::text[];
    changes_list jsonb[] := ARRAY[]::jsonb[];
    risks text[] := ARRAY[]::text[];
    reasons_list jsonb[] := ARRAY[]::jsonb[];
    prevs text[] := ARRAY[]::text[];
    digests text[] := ARRAY[]::text[];
BEGIN
    -- The reconciler's own writes are audited by the reconciler (keyed rows). The marker is
    -- only believed from a login that could append audit rows itself anyway.
    IF coalesce(marker, '') <> ''
       AND has_table_privilege(session_user, 'configuration_audit_logs', 'INSERT') THEN
        RETURN NULL;
    END IF;

    IF TG_OP = 'INSERT' THEN
        SELECT jsonb_agg(jsonb_build_object('t', n.tenant_id, 'i', n.id, 'a', to_jsonb(n)))
          INTO changed_rows FROM new_rows n;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT jsonb_agg(jsonb_build_object('t', o.tenant_id, 'i', o.id, 'b', to_jsonb(o)))
          INTO changed_rows FROM old_rows o;
    ELSE
        -- Matched by key; an UPDATE that changes the key shows as a delete and a create.
        SELECT jsonb_agg(jsonb_build_object('t', coalesce(n.tenant_id, o.tenant_id),
                                            'i', coalesce(n.id, o.id))
                   || CASE WHEN o.id IS NOT NULL THEN jsonb_build_object('b', to_jsonb(o))
                           ELSE '{}'::jsonb END
                   || CASE WHEN n.id IS NOT NULL THEN jsonb_build_object('a', to_jsonb(n))
                           ELSE '{}'::jsonb END)
          INTO changed_rows
          FROM old_rows o FULL JOIN new_rows n ON n.tenant_id = o.tenant_id AND n.id = o.id
         WHERE o.id IS NULL OR n.id IS NULL OR to_jsonb(o) IS DISTINCT FROM to_jsonb(n);
    END IF;
    IF changed_rows IS NULL THEN
        RETURN NULL;
    END IF;

    -- One chain lock per tenant, in key order (the order the reconciler takes them in).
    PERFORM pg_advisory_xact_lock(k)
       FROM (SELECT DISTINCT ('x' || left(encode(sha256(convert_to(
                    'reconciler/audit-chain/' || (r ->> 't'), 'UTF8')), 'hex'), 16))
                    ::bit(64)::bigint AS k
               FROM jsonb_array_elements(changed_rows) r) keys
      ORDER BY k;

    SELECT to_hex(trunc(extract(epoch FROM backend_start))::bigint) || '.'
           || to_hex(pg_backend_pid())
      INTO session FROM pg_stat_activity WHERE pid = pg_backend_pid();
    session := coalesce(session, '?.' || to_hex(pg_backend_pid()));

    -- Everything but the hash chain, set-based; the loop below only links and hashes.
    FOR rec IN
        WITH c AS (
            SELECT r ->> 't' AS tenant_id, (r ->> 'i')::bigint AS entity_id,
                   r -> 'b' AS b, r -> 'a' AS a,
                   CASE WHEN r -> 'b' IS NULL THEN 'CREATE'
                        WHEN r -> 'a' IS NULL THEN 'DELETE' ELSE 'UPDATE' END AS action
              FROM jsonb_array_elements(changed_rows) r
        ), f AS (
            SELECT c.*, d.fields, d.columns,
                   coalesce(c.a, c.b) AS doc
              FROM c CROSS JOIN LATERAL (
                  SELECT coalesce(jsonb_agg(jsonb_build_object(
                             'field', k,
                             'before', CASE WHEN k = ANY (clear) THEN vb
                                            WHEN vb = 'null'::jsonb THEN vb
                                            ELSE to_jsonb('(sensitive)'::text) END,
                             'after', CASE WHEN k = ANY (clear) THEN va
                                           WHEN va = 'null'::jsonb THEN va
                                           ELSE to_jsonb('(sensitive)'::text) END,
                             'sensitive', NOT (k = ANY (clear))) ORDER BY k), '[]'::jsonb)
                             AS fields,
                         coalesce(array_agg(k ORDER BY k), ARRAY[]::text[]) AS columns
                    FROM (SELECT key AS k,
                                 coalesce(c.b -> key, 'null'::jsonb) AS vb,
                                 coalesce(c.a -> key, 'null'::jsonb) AS va
                            FROM jsonb_object_keys(coalesce(c.b, '{}'::jsonb)
                                                   || coalesce(c.a, '{}'::jsonb)) AS key
                           WHERE key NOT IN ('id', 'tenant_id')) kv
                   WHERE vb IS DISTINCT FROM va) d
        )
        SELECT f.tenant_id, f.entity_id, f.action, f.fields,
               CASE WHEN f.action = 'UPDATE' AND f.columns <@ runtime THEN 'LOW'
                    WHEN f.action = 'CREATE' AND TG_TABLE_NAME = 'oauth_tokens' THEN 'MEDIUM'
                    ELSE 'HIGH' END AS risk,
               jsonb_build_array(
                   CASE WHEN f.action = 'UPDATE' AND f.columns <@ runtime THEN
                            jsonb_build_object('code', 'DATABASE_RUNTIME_WRITE', 'level', 'LOW',
                                'message', 'runtime-owned columns written outside the reconciler')
                        WHEN f.action = 'CREATE' AND TG_TABLE_NAME = 'oauth_tokens' THEN
                            jsonb_build_object('code', 'DATABASE_TOKEN_CONNECTED',
                                'level', 'MEDIUM',
                                'message', 'OAuth token stored outside the reconciler')
                        ELSE jsonb_build_object('code', 'DATABASE_OUT_OF_BAND_WRITE',
                                'level', 'HIGH',
                                'message', 'configuration ' || lower(f.action)
                                    || ' made outside the reconciler''s apply') END) AS reasons,
               f.tenant_id || '/' || lower(f.doc ->> 'platform') || '/'
                   || coalesce(lower(f.doc ->> 'environment'), '-') || '/' || kind || '/'
                   || CASE TG_TABLE_NAME
                          WHEN 'integration_configs' THEN f.doc ->> 'config_type'
                          WHEN 'webhook_configurations' THEN f.doc ->> 'name'
                          ELSE coalesce(CASE f.doc ->> 'platform'
                                            WHEN 'STRIPE' THEN f.doc ->> 'stripe_account_id'
                                            WHEN 'HUBSPOT' THEN f.doc ->> 'hubspot_portal_id'
                                            WHEN 'QUICKBOOKS' THEN f.doc ->> 'quickbooks_realm_id'
                                        END, 'token-' || f.entity_id::text) END AS address
               , lead(f.tenant_id) OVER w IS DISTINCT FROM f.tenant_id AS last_of_tenant
          FROM f
        WINDOW w AS (ORDER BY f.tenant_id, f.entity_id, f.action DESC)
         ORDER BY f.tenant_id, f.entity_id, f.action DESC
    LOOP
        IF tenant IS DISTINCT FROM rec.tenant_id THEN
            tenant := rec.tenant_id;
            -- For this function's own statements (put back below): the policies then
            -- admit the owner even under FORCE ROW LEVEL SECURITY.
            PERFORM set_config('app.tenant_id', tenant, true);
            SELECT a.entry_hash::text INTO head FROM configuration_audit_logs a
             WHERE a.tenant_id = tenant ORDER BY a.id DESC LIMIT 1;
        END IF;
        changes := jsonb_build_object('recorded_by', 'database', 'operation', TG_OP,
                                      'transaction', xact, 'fields', rec.fields);
        new_id := nextval(pg_get_serial_sequence('configuration_audit_logs', 'id'));
        ids := ids || new_id;
        entity_ids := entity_ids || rec.entity_id;
        addresses := addresses || rec.address;
        actions := actions || rec.action;
        changes_list := changes_list || changes;
        risks := risks || rec.risk;
        reasons_list := reasons_list || rec.reasons;
        prevs := prevs || head;
        -- The canonical text reconciler.store.audit.database_entry_hash recomputes.
        head := 't' || left(encode(sha256(convert_to(
            'reconciler-audit/db1' || chr(10) || CASE WHEN (tenant) IS NULL THEN '-' ELSE octet_length(convert_to(tenant, 'UTF8'))::text || ':' || (tenant) END || CASE WHEN (new_id::text) IS NULL THEN '-' ELSE octet_length(convert_to(new_id::text, 'UTF8'))::text || ':' || (new_id::text) END || CASE WHEN (entity) IS NULL THEN '-' ELSE octet_length(convert_to(entity, 'UTF8'))::text || ':' || (entity) END || CASE WHEN (rec.entity_id::text) IS NULL THEN '-' ELSE octet_length(convert_to(rec.entity_id::text, 'UTF8'))::text || ':' || (rec.entity_id::text) END || CASE WHEN (rec.address) IS NULL THEN '-' ELSE octet_length(convert_to(rec.address, 'UTF8'))::text || ':' || (rec.address) END || CASE WHEN (rec.action) IS NULL THEN '-' ELSE octet_length(convert_to(rec.action, 'UTF8'))::text || ':' || (rec.action) END || CASE WHEN (changes::text) IS NULL THEN '-' ELSE octet_length(convert_to(changes::text, 'UTF8'))::text || ':' || (changes::text) END || CASE WHEN (rec.risk) IS NULL THEN '-' ELSE octet_length(convert_to(rec.risk, 'UTF8'))::text || ':' || (rec.risk) END || CASE WHEN (rec.reasons::text) IS NULL THEN '-' ELSE octet_length(convert_to(rec.reasons::text, 'UTF8'))::text || ':' || (rec.reasons::text) END || CASE WHEN ((rec.risk = 'HIGH')::text) IS NULL THEN '-' ELSE octet_length(convert_to((rec.risk = 'HIGH')::text, 'UTF8'))::text || ':' || ((rec.risk = 'HIGH')::text) END || CASE WHEN (login) IS NULL THEN '-' ELSE octet_length(convert_to(login, 'UTF8'))::text || ':' || (login) END || CASE WHEN (client) IS NULL THEN '-' ELSE octet_length(convert_to(client, 'UTF8'))::text || ':' || (client) END || CASE WHEN (application) IS NULL THEN '-' ELSE octet_length(convert_to(application, 'UTF8'))::text || ':' || (application) END || CASE WHEN (session) IS NULL THEN '-' ELSE octet_length(convert_to(session, 'UTF8'))::text || ':' || (session) END || CASE WHEN (NULL::text) IS NULL THEN '-' ELSE octet_length(convert_to(NULL::text, 'UTF8'))::text || ':' || (NULL::text) END || CASE WHEN (NULL::text) IS NULL THEN '-' ELSE octet_length(convert_to(NULL::text, 'UTF8'))::text || ':' || (NULL::text) END || CASE WHEN (NULL::text) IS NULL THEN '-' ELSE octet_length(convert_to(NULL::text, 'UTF8'))::text || ':' || (NULL::text) END || CASE WHEN (stamp_text) IS NULL THEN '-' ELSE octet_length(convert_to(stamp_text, 'UTF8'))::text || ':' || (stamp_text) END || CASE WHEN (head) IS NULL THEN '-' ELSE octet_length(convert_to(head, 'UTF8'))::text || ':' || (head) END, 'UTF8')), 'hex'), 63);
        digests := digests || head;
        IF rec.last_of_tenant THEN
            -- One INSERT per tenant (app.tenant_id is that tenant's for the policies).
            INSERT INTO configuration_audit_logs (id, tenant_id, entity_type, entity_id, entity_address,
                                 action, changes, risk_level, risk_reasons, requires_review,
                                 performed_by, ip_address, user_agent, session_id,
                                 created_at, prev_hash, entry_hash)
            SELECT u.id, tenant, entity::entity_type, u.entity_id, u.address,
                   u.action::audit_action, u.changes, u.risk::risk_level, u.reasons,
                   u.risk = 'HIGH', login, client::inet, application, session, stamp,
                   u.prev, u.digest
              FROM unnest(ids, entity_ids, addresses, actions, changes_list, risks,
                          reasons_list, prevs, digests)
                   AS u(id, entity_id, address, action, changes, risk, reasons, prev, digest)
             ORDER BY u.id;
            ids := ARRAY[]::bigint[];
            entity_ids := ARRAY[]::bigint[];
            addresses := ARRAY[]::text[];
            actions := ARRAY[]::text[];
            changes_list := ARRAY[]::jsonb[];
            risks := ARRAY[]::text[];
            reasons_list := ARRAY[]::jsonb[];
            prevs := ARRAY[]::text[];
            digests := ARRAY[]::text[];
        END IF;
    END LOOP;
    PERFORM set_config('app.tenant_id', coalesce(caller_tenant, ''), true);
    RETURN NULL;
END
$fn$;

DO $$
        BEGIN
            EXECUTE 'ALTER FUNCTION record_configuration_write() SET search_path = pg_catalog, ' || quote_ident(current_schema()) || ', pg_temp';
        END
        $$;

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

