"""database_recorded_writes: services write runtime-owned columns only; the database audits.

Revision ID: database_recorded_writes
Revises: least_privilege_roles
Create Date: 2026-12-01

Upgrade:

* **Column privileges for ``reconciler_app``** (the services' role). On
  ``integration_configs`` and ``webhook_configurations`` it keeps SELECT and may UPDATE only
  the columns the runtime owns (:data:`SERVICE_UPDATE`): health and sync scheduling, circuit
  breaker and delivery counters, and ``updated_at``. On ``oauth_tokens`` the OAuth flow may
  INSERT a connection (:data:`TOKEN_INSERT`: tenant, platform, token material, account
  identity, bookkeeping timestamps) and UPDATE the token material (refresh). Not granted:
  ``row_version`` (the reconciler's optimistic lock: a runtime write must not make a plan
  stale), ``encryption_key_version`` (describes ciphertext the reconciler wrote),
  ``is_active``/``revoked_*``/``deleted_*`` (a revoked token or deleted row cannot be brought
  back by a service), every manifest-owned column, and DELETE. On
  ``configuration_audit_logs`` and ``apply_runs`` it keeps SELECT only: a service can
  neither write an audit row nor a review decision nor an apply run.
* **Database-recorded writes.** Statement-level triggers on the three configuration tables
  call the SECURITY DEFINER function ``record_configuration_write()``, which appends one
  audit row per inserted, updated (with a change) or deleted row to the row's tenant chain.
  Performer, address and session come from the server: ``performed_by = session_user``,
  ``ip_address = inet_client_addr()``, ``user_agent = application_name`` (chosen by the
  client), ``session_id`` the backend's ``<start time hex>.<pid hex>`` (as ``%c`` in the
  server log); ``changes`` holds the changed columns with anything not known to be
  non-secret shown as ``(sensitive)``, the transaction id and ``"recorded_by":
  "database"``. Writes the reconciler audits itself are skipped: its transaction sets
  ``reconciler.audited_write``, which is honoured only for a login that may INSERT into the
  audit log itself (the owner, the deploy role), never for a service.
* **Chain form.** Such a row's ``entry_hash`` is ``t`` + 63 hex digits of ``sha256`` over a
  length-prefixed canonical text (``reconciler/store/audit.py`` recomputes it). A
  ``BEFORE INSERT`` trigger refuses a ``t`` row that does not come from the recording
  function, and the unique index ``idx_configuration_audit_logs_successor`` (one successor
  per keyed or database-recorded row) keeps a chain from forking even for a writer whose
  snapshot predates the head it extends.

Each tenant's chain is locked with ``pg_advisory_xact_lock`` on the first 8 bytes of
``sha256('reconciler/audit-chain/<tenant>')``, the same key the reconciler takes before it
appends (``reconciler.store.audit.tenant_chain_lock_key``).

Row-level security: the recording function runs as the owner and sets ``app.tenant_id`` to
each row's tenant for its own statements (and back to the caller's value before it returns),
so it works under ``FORCE ROW LEVEL SECURITY`` with the ``tenant_isolation`` policy.

Downgrade drops the triggers, functions and index and restores the previous grants. Every
audit row is kept, database-recorded ones included; the previous version's ``audit verify``
reports the first such row of a tenant as an unknown format (upgrade again to verify them).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from reconciler.migrations.support import ACCOUNT_COLUMNS, APP_ROLE

revision: str = "database_recorded_writes"
down_revision: str | None = "least_privilege_roles"

AUDIT = "configuration_audit_logs"
CONFIG_TABLES = ("integration_configs", "webhook_configurations", "oauth_tokens")
FUNCTION = "record_configuration_write"
GUARD = "configuration_audit_logs_recorded_only_by_trigger"
SUCCESSOR_INDEX = "idx_configuration_audit_logs_successor"
MARKER = "reconciler.audited_write"

TOKEN_MATERIAL = (
    "access_token",
    "refresh_token",
    "token_type",
    "scope",
    "expires_at",
    "refresh_token_expires_at",
)
CIRCUIT_COLUMNS = (
    "circuit_breaker_status",
    "consecutive_failures",
    "circuit_opened_at",
    "total_trigger_count",
    "total_failure_count",
    "last_trigger_at",
    "last_success_at",
    "last_failure_at",
)
"""The webhook circuit breaker's state and delivery counters (runtime-owned)."""
SERVICE_UPDATE: dict[str, tuple[str, ...]] = {
    "integration_configs": (
        "health_status",
        "health_message",
        "last_health_check_at",
        "next_sync_at",
        "last_sync_at",
        "updated_at",
    ),
    "webhook_configurations": (*CIRCUIT_COLUMNS, "updated_at"),
    "oauth_tokens": (*TOKEN_MATERIAL, "updated_at"),
}
"""Columns a service may UPDATE (runtime-owned); a database-recorded UPDATE touching only
these is LOW risk, anything else HIGH."""
TOKEN_INSERT = (
    "tenant_id",
    "platform",
    *TOKEN_MATERIAL,
    *ACCOUNT_COLUMNS,
    "created_by",
    "created_at",
    "updated_at",
)
"""Columns the OAuth flow may set when it INSERTs a connection (the rest take defaults)."""

SECRET_COLUMNS = (
    "api_key",
    "api_secret",
    "signing_secret",
    "auth_token",
    "auth_password",
    "access_token",
    "refresh_token",
)
CLEAR_COLUMNS = (
    # shared
    "platform",
    "environment",
    "is_active",
    "encryption_key_version",
    "created_at",
    "updated_at",
    "deleted_at",
    "created_by",
    "updated_by",
    "deleted_by",
    "row_version",
    # integration_configs
    "config_type",
    "is_primary",
    "sync_interval",
    "sync_direction",
    "next_sync_at",
    "last_sync_at",
    "health_status",
    "health_message",
    "last_health_check_at",
    "features",
    "mapping_rules",
    "filter_rules",
    "transform_rules",
    # webhook_configurations
    "name",
    "webhook_type",
    "endpoint_url",
    "auth_type",
    "subscribed_events",
    "retry_max_attempts",
    "retry_initial_delay_seconds",
    "retry_backoff_multiplier",
    "retry_max_delay_seconds",
    "circuit_breaker_threshold",
    "circuit_breaker_reset_seconds",
    *CIRCUIT_COLUMNS,
    # oauth_tokens
    "token_type",
    "scope",
    "expires_at",
    "refresh_token_expires_at",
    *ACCOUNT_COLUMNS,
    "revoked_at",
    "revoked_by",
    "revoked_reason",
)
"""Columns whose values a database-recorded row shows. Every other column (ciphertexts,
fingerprints, ``metadata``, and any column a later migration adds) is shown only as
``(sensitive)``: fail closed."""


def _array(names: Sequence[str]) -> str:
    return "ARRAY[" + ", ".join(f"'{n}'" for n in names) + "]::text[]"


def _runtime_case() -> str:
    whens = " ".join(
        f"WHEN '{table}' THEN {_array(columns)}" for table, columns in SERVICE_UPDATE.items()
    )
    return f"CASE TG_TABLE_NAME {whens} END"


def _field(expression: str) -> str:
    """One field of the canonical text: ``<UTF-8 byte length>:<text>``, or ``-`` for NULL."""
    return (
        f"CASE WHEN ({expression}) IS NULL THEN '-' ELSE "
        f"octet_length(convert_to({expression}, 'UTF8'))::text || ':' || ({expression}) END"
    )


# The order of reconciler.store.audit.HASHED_FIELDS.
_CANONICAL = " || ".join(
    _field(e)
    for e in (
        "tenant",
        "new_id::text",
        "entity",
        "rec.entity_id::text",
        "rec.address",
        "rec.action",
        "changes::text",
        "rec.risk",
        "rec.reasons::text",
        "(rec.risk = 'HIGH')::text",
        "login",
        "client",
        "application",
        "session",
        "NULL::text",
        "NULL::text",
        "NULL::text",
        "stamp_text",
        "head",
    )
)

# No "%" anywhere below: offline SQL rendering would double it.
RECORD_FUNCTION = f"""
CREATE FUNCTION {FUNCTION}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $fn$
DECLARE
    runtime constant text[] := {_runtime_case()};
    clear constant text[] := {_array(CLEAR_COLUMNS)};
    entity constant text := CASE TG_TABLE_NAME
        WHEN 'integration_configs' THEN 'INTEGRATION_CONFIG'
        WHEN 'webhook_configurations' THEN 'WEBHOOK_CONFIGURATION'
        ELSE 'OAUTH_TOKEN' END;
    kind constant text := CASE TG_TABLE_NAME
        WHEN 'integration_configs' THEN 'integration'
        WHEN 'webhook_configurations' THEN 'webhook'
        ELSE 'oauth_account' END;
    marker text := current_setting('{MARKER}', true);
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
       AND has_table_privilege(session_user, '{AUDIT}', 'INSERT') THEN
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
                           ELSE '{{}}'::jsonb END
                   || CASE WHEN n.id IS NOT NULL THEN jsonb_build_object('a', to_jsonb(n))
                           ELSE '{{}}'::jsonb END)
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
                            FROM jsonb_object_keys(coalesce(c.b, '{{}}'::jsonb)
                                                   || coalesce(c.a, '{{}}'::jsonb)) AS key
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
            SELECT a.entry_hash::text INTO head FROM {AUDIT} a
             WHERE a.tenant_id = tenant ORDER BY a.id DESC LIMIT 1;
        END IF;
        changes := jsonb_build_object('recorded_by', 'database', 'operation', TG_OP,
                                      'transaction', xact, 'fields', rec.fields);
        new_id := nextval(pg_get_serial_sequence('{AUDIT}', 'id'));
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
            'reconciler-audit/db1' || chr(10) || {_CANONICAL}, 'UTF8')), 'hex'), 63);
        digests := digests || head;
        IF rec.last_of_tenant THEN
            -- One INSERT per tenant (app.tenant_id is that tenant's for the policies).
            INSERT INTO {AUDIT} (id, tenant_id, entity_type, entity_id, entity_address,
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
$fn$
"""

GUARD_FUNCTION = f"""
CREATE FUNCTION {GUARD}() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    -- A database-recorded row comes from {FUNCTION}() (a trigger, so depth 2), never
    -- straight from a client that may insert audit rows.
    IF pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION USING
            MESSAGE = 'configuration_audit_logs: rows recorded by the database (entry_hash t...)'
                || ' are written only by {FUNCTION}()',
            ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$fn$
"""


def upgrade() -> None:
    op.execute(RECORD_FUNCTION)
    # Pin the function to the schema the tables are in, with pg_temp last (a session's
    # temporary table must never stand in for the audit log).
    op.execute(
        f"""
        DO $$
        BEGIN
            EXECUTE 'ALTER FUNCTION {FUNCTION}() SET search_path = pg_catalog, '
                || quote_ident(current_schema()) || ', pg_temp';
        END
        $$
        """
    )
    op.execute(f"REVOKE ALL ON FUNCTION {FUNCTION}() FROM PUBLIC")
    for table in CONFIG_TABLES:
        for event, refs in (
            ("INSERT", "NEW TABLE AS new_rows"),
            ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
            ("DELETE", "OLD TABLE AS old_rows"),
        ):
            op.execute(
                f"CREATE TRIGGER {table}_record_{event.lower()} AFTER {event} ON {table} "
                f"REFERENCING {refs} FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
            )

    op.execute(GUARD_FUNCTION)
    op.execute(
        f"CREATE TRIGGER {GUARD} BEFORE INSERT ON {AUDIT} FOR EACH ROW "
        f"WHEN (substr(NEW.entry_hash, 1, 1) = 't') EXECUTE FUNCTION {GUARD}()"
    )
    op.execute(
        f"CREATE UNIQUE INDEX {SUCCESSOR_INDEX} ON {AUDIT} "
        "(tenant_id, (COALESCE(prev_hash, ''))) "
        "WHERE substr(entry_hash, 1, 1) = ANY (ARRAY['k', 't'])"
    )

    op.execute(f"REVOKE INSERT, UPDATE, DELETE ON {', '.join(CONFIG_TABLES)} FROM {APP_ROLE}")
    for table, columns in SERVICE_UPDATE.items():
        op.execute(f"GRANT UPDATE ({', '.join(columns)}) ON {table} TO {APP_ROLE}")
    op.execute(f"GRANT INSERT ({', '.join(TOKEN_INSERT)}) ON oauth_tokens TO {APP_ROLE}")
    op.execute(f"REVOKE INSERT, UPDATE, DELETE ON {AUDIT}, apply_runs FROM {APP_ROLE}")


def downgrade() -> None:
    for table in CONFIG_TABLES:
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER {table}_record_{event} ON {table}")
    op.execute(f"DROP FUNCTION {FUNCTION}()")
    op.execute(f"DROP TRIGGER {GUARD} ON {AUDIT}")
    op.execute(f"DROP FUNCTION {GUARD}()")
    op.execute(f"DROP INDEX {SUCCESSOR_INDEX}")
    # The grants of keyed_audit_chain; every audit row, database-recorded ones included, stays.
    for table, columns in SERVICE_UPDATE.items():
        op.execute(f"REVOKE UPDATE ({', '.join(columns)}) ON {table} FROM {APP_ROLE}")
    op.execute(f"REVOKE INSERT ({', '.join(TOKEN_INSERT)}) ON oauth_tokens FROM {APP_ROLE}")
    op.execute(f"GRANT INSERT, UPDATE, DELETE ON {', '.join(CONFIG_TABLES)} TO {APP_ROLE}")
    op.execute(f"GRANT INSERT ON {AUDIT} TO {APP_ROLE}")
