"""runtime_functions: the services' contract as SQL functions (configuration, circuit breaker).

Revision ID: runtime_functions
Revises: managed_tokens
Create Date: 2026-12-01

Upgrade creates three functions, executable by ``reconciler_app`` (and the owner), each one
statement-atomic:

* ``reconciler_active_config(platform text, environment text) RETURNS SETOF
  integration_configs``: the active, primary, non-deleted configuration rows of the session's
  tenant (``app.tenant_id``) for that platform and environment (enum values, any case), in
  ``config_type`` order. Secrets are returned as stored (encrypted).
* ``reconciler_webhook_allow(webhook_id bigint) RETURNS boolean``: may a delivery go out now?
  CLOSED: true. OPEN: false until ``circuit_breaker_reset_seconds`` (300 when unset) have
  passed since ``circuit_opened_at``; then the circuit becomes HALF_OPEN, this call gets the
  one trial (true) and ``circuit_opened_at`` becomes the trial's start. HALF_OPEN: false while
  a trial is under way; a trial that reports nothing within the reset time is given up and
  the next call gets a new one. An inactive or deleted webhook: false.
* ``reconciler_webhook_record(webhook_id bigint, succeeded boolean, error text DEFAULT NULL)
  RETURNS circuit_breaker_status``: the outcome of one delivery. Success closes the circuit
  (``consecutive_failures`` 0, ``circuit_opened_at`` NULL); a failure increments
  ``consecutive_failures`` and opens a CLOSED circuit when it reaches
  ``circuit_breaker_threshold`` (5 when unset); a failed HALF_OPEN trial re-opens it (a new
  ``circuit_opened_at``). ``total_trigger_count``, ``total_failure_count``,
  ``last_trigger_at`` and ``last_success_at``/``last_failure_at`` are kept. Returns the new
  state.

Each webhook function reads and writes its row under ``SELECT ... FOR UPDATE`` (a CLOSED
``allow`` only reads, without a lock), so concurrent calls on one webhook serialise and no
count or transition is lost or doubled. They write only runtime-owned columns (never
``row_version`` or ``updated_at``), so plans, saved plans and drift are unaffected.

**SECURITY INVOKER.** The functions run with the caller's rights: the ``tenant_isolation``
policy (``app.tenant_id`` *and* a ``reconciler_tenant_grants`` row for the login) and the
column privileges of ``database_recorded_writes`` apply exactly as to the caller's own
statements, so a function can never reach a row the login could not, and no second
tenant check has to be kept in step with the policies. On top of that each function only
considers rows of ``app.tenant_id`` (also for the owner, whom the policies let see every
tenant) and refuses to run without it.

**Token key version.** ``reconciler_app`` may also INSERT
``oauth_tokens.encryption_key_version``: the OAuth flow encrypts a new connection's tokens,
so it says which key version it used (the active one), instead of the column default 1,
which would tie every new token to the first key forever. A refresh still encrypts under
the row's version (no UPDATE grant): ``keys rotate`` is what moves rows between versions.

**Audit.** ``record_configuration_write()`` (the trigger function) is amended in place (its
definition read from the catalog, each change checked to apply exactly) with two additions,
both honoured only for ``webhook_configurations`` UPDATEs made while
``reconciler.runtime_call`` is set (the webhook functions set it around their own UPDATE):

* an UPDATE that changes nothing but the delivery counters (``consecutive_failures``,
  ``total_trigger_count``, ``total_failure_count``, ``last_trigger_at``, ``last_success_at``,
  ``last_failure_at``) is not recorded: one audit row per delivery would grow the tenant's
  chain without bound and serialise every delivery of the tenant on its chain lock. Every
  circuit transition (a change of ``circuit_breaker_status`` or ``circuit_opened_at``) is
  still recorded, LOW, as before. A login could set the setting itself, but it only ever
  hides changes of these counters, which the login may write anyway; every other change is
  recorded whatever the setting says.
* the ``error`` given to ``reconciler_webhook_record`` (at most 200 characters, control
  characters replaced by spaces) is added to the recorded row's ``changes`` as
  ``runtime_error``. It is stored as given: services must not put secrets in it.

Downgrade drops the three functions and that grant, and reverses the amendment of
``record_configuration_write()`` exactly. No table or row changes either way.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from reconciler.migrations.support import APP_ROLE, amend_function, undo_amendment

revision: str = "runtime_functions"
down_revision: str | None = "managed_tokens"

RECORDING = "record_configuration_write()"
"""The trigger function of database_recorded_writes, amended here."""
ACTIVE_CONFIG = "reconciler_active_config(text, text)"
ALLOW = "reconciler_webhook_allow(bigint)"
RECORD = "reconciler_webhook_record(bigint, boolean, text)"
FUNCTIONS = (ACTIVE_CONFIG, ALLOW, RECORD)
RUNTIME_CALL = "reconciler.runtime_call"
RUNTIME_ERROR = "reconciler.runtime_error"
DEFAULT_THRESHOLD = 5
"""Failures that open a circuit whose row has no threshold (the manifest default)."""
DEFAULT_RESET_SECONDS = 300
"""Reset time of a circuit whose row has none (the manifest default)."""
ERROR_CHARS = 200

DELIVERY_COUNTERS = (
    "consecutive_failures",
    "total_trigger_count",
    "total_failure_count",
    "last_trigger_at",
    "last_success_at",
    "last_failure_at",
)
"""Columns a delivery changes without a circuit transition: not recorded in the audit log
when written by the webhook functions."""

_COUNTERS = "ARRAY[" + ", ".join(f"'{c}'" for c in DELIVERY_COUNTERS) + "]::text[]"

_TENANT = """
    tenant constant text := nullif(current_setting('app.tenant_id', true), '');
"""


def _no_tenant(name: str) -> str:
    return f"""
    IF tenant IS NULL THEN
        RAISE EXCEPTION USING
            MESSAGE = '{name}: app.tenant_id is not set for this session',
            HINT = 'SELECT set_config(''app.tenant_id'', <tenant>, false) first',
            ERRCODE = 'insufficient_privilege';
    END IF;"""


def _not_found(name: str) -> str:
    # The same answer whether the row belongs to another tenant or does not exist.
    return f"""
        RAISE EXCEPTION USING
            MESSAGE = '{name}: no webhook ' || webhook_id || ' for tenant ' || tenant,
            ERRCODE = 'no_data_found';"""


# No "%" anywhere below: offline SQL rendering would double it.
ACTIVE_CONFIG_FUNCTION = f"""
CREATE FUNCTION reconciler_active_config(platform text, environment text)
RETURNS SETOF integration_configs
LANGUAGE plpgsql STABLE SECURITY INVOKER AS $fn$
DECLARE{_TENANT}BEGIN{_no_tenant("reconciler_active_config")}
    RETURN QUERY
        SELECT c.* FROM integration_configs c
         WHERE c.tenant_id = tenant
           AND c.platform = CAST(upper($1) AS platform)
           AND c.environment = CAST(upper($2) AS environment)
           AND c.is_active AND c.is_primary AND c.deleted_at IS NULL
         ORDER BY c.config_type;
END
$fn$
"""

_LOCKED_ROW = """
    SELECT w.circuit_breaker_status, w.circuit_opened_at, w.consecutive_failures,
           w.circuit_breaker_threshold, w.circuit_breaker_reset_seconds,
           w.is_active AND w.deleted_at IS NULL AS live
      INTO cur FROM webhook_configurations w
     WHERE w.tenant_id = tenant AND w.id = webhook_id"""

ALLOW_FUNCTION = f"""
CREATE FUNCTION reconciler_webhook_allow(webhook_id bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $fn$
DECLARE{_TENANT}    cur record;
    stamp timestamptz;
BEGIN{_no_tenant("reconciler_webhook_allow")}
    -- The common case (CLOSED, or OPEN and not yet due) decides without a row lock.
    {_LOCKED_ROW};
    IF NOT FOUND THEN{_not_found("reconciler_webhook_allow")}
    END IF;
    IF NOT cur.live THEN
        RETURN false;
    END IF;
    IF cur.circuit_breaker_status = 'CLOSED' THEN
        RETURN true;
    END IF;
    stamp := clock_timestamp();
    IF cur.circuit_opened_at IS NOT NULL
       AND cur.circuit_opened_at + make_interval(secs => greatest(1, coalesce(
               cur.circuit_breaker_reset_seconds, {DEFAULT_RESET_SECONDS}))) > stamp THEN
        RETURN false;
    END IF;

    -- Due for a trial: decide again under the row lock, so exactly one caller gets it.
    {_LOCKED_ROW}
       FOR UPDATE;
    stamp := clock_timestamp();
    IF NOT FOUND OR NOT cur.live THEN
        RETURN false;
    END IF;
    IF cur.circuit_breaker_status = 'CLOSED' THEN
        RETURN true;
    END IF;
    IF cur.circuit_opened_at IS NOT NULL
       AND cur.circuit_opened_at + make_interval(secs => greatest(1, coalesce(
               cur.circuit_breaker_reset_seconds, {DEFAULT_RESET_SECONDS}))) > stamp THEN
        RETURN false;
    END IF;
    PERFORM set_config('{RUNTIME_CALL}', 'on', true);
    UPDATE webhook_configurations
       SET circuit_breaker_status = 'HALF_OPEN', circuit_opened_at = stamp
     WHERE tenant_id = tenant AND id = webhook_id;
    PERFORM set_config('{RUNTIME_CALL}', '', true);
    RETURN true;
END
$fn$
"""

RECORD_FUNCTION = f"""
CREATE FUNCTION reconciler_webhook_record(webhook_id bigint, succeeded boolean,
                                          error text DEFAULT NULL)
RETURNS circuit_breaker_status
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $fn$
DECLARE{_TENANT}    cur record;
    stamp timestamptz;
    failures integer;
    new_state circuit_breaker_status;
    opened timestamptz;
BEGIN{_no_tenant("reconciler_webhook_record")}
    IF succeeded IS NULL THEN
        RAISE EXCEPTION USING
            MESSAGE = 'reconciler_webhook_record: succeeded must be true or false',
            ERRCODE = 'null_value_not_allowed';
    END IF;
    {_LOCKED_ROW}
       FOR UPDATE;
    IF NOT FOUND THEN{_not_found("reconciler_webhook_record")}
    END IF;
    stamp := clock_timestamp();
    IF succeeded THEN
        failures := 0;
        new_state := 'CLOSED';
        opened := NULL;
    ELSE
        failures := cur.consecutive_failures + 1;
        IF cur.circuit_breaker_status = 'HALF_OPEN' THEN
            -- The trial failed: open again for another reset period.
            new_state := 'OPEN';
            opened := stamp;
        ELSIF cur.circuit_breaker_status = 'OPEN' THEN
            new_state := 'OPEN';
            opened := coalesce(cur.circuit_opened_at, stamp);
        ELSIF failures >= greatest(1, coalesce(cur.circuit_breaker_threshold,
                                               {DEFAULT_THRESHOLD})) THEN
            new_state := 'OPEN';
            opened := stamp;
        ELSE
            new_state := 'CLOSED';
            opened := NULL;
        END IF;
    END IF;
    PERFORM set_config('{RUNTIME_CALL}', 'on', true);
    PERFORM set_config('{RUNTIME_ERROR}', CASE WHEN succeeded THEN '' ELSE coalesce(
        left(regexp_replace(error, '[[:cntrl:]]', ' ', 'g'), {ERROR_CHARS}), '') END, true);
    UPDATE webhook_configurations
       SET circuit_breaker_status = new_state,
           consecutive_failures = failures,
           circuit_opened_at = opened,
           total_trigger_count = total_trigger_count + 1,
           total_failure_count = total_failure_count + CASE WHEN succeeded THEN 0 ELSE 1 END,
           last_trigger_at = stamp,
           last_success_at = CASE WHEN succeeded THEN stamp ELSE last_success_at END,
           last_failure_at = CASE WHEN succeeded THEN last_failure_at ELSE stamp END
     WHERE tenant_id = tenant AND id = webhook_id;
    PERFORM set_config('{RUNTIME_CALL}', '', true);
    PERFORM set_config('{RUNTIME_ERROR}', '', true);
    RETURN new_state;
END
$fn$
"""

_MARKER_CHECK = """        RETURN NULL;
    END IF;

    IF TG_OP = 'INSERT' THEN"""

_SKIP_DELIVERY_COUNTERS = f"""        RETURN NULL;
    END IF;

    -- A delivery recorded by the webhook functions that changes only the counters is not
    -- an event worth a chained row; circuit transitions are (runtime_functions).
    -- (Nested: the transition tables exist only for an UPDATE.)
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'webhook_configurations'
       AND coalesce(current_setting('{RUNTIME_CALL}', true), '') = 'on' THEN
        IF NOT EXISTS (
            SELECT FROM old_rows o FULL JOIN new_rows n
                        ON n.tenant_id = o.tenant_id AND n.id = o.id
             WHERE o.id IS NULL OR n.id IS NULL
                OR (to_jsonb(o) - {_COUNTERS})
                   IS DISTINCT FROM (to_jsonb(n) - {_COUNTERS})) THEN
            RETURN NULL;
        END IF;
    END IF;

    IF TG_OP = 'INSERT' THEN"""

_CHANGES = """        changes := jsonb_build_object('recorded_by', 'database', 'operation', TG_OP,
                                      'transaction', xact, 'fields', rec.fields);"""

_CHANGES_WITH_ERROR = (
    _CHANGES
    + f"""
        -- The error a service gave reconciler_webhook_record for this failure.
        IF TG_TABLE_NAME = 'webhook_configurations'
           AND coalesce(current_setting('{RUNTIME_CALL}', true), '') = 'on'
           AND coalesce(current_setting('{RUNTIME_ERROR}', true), '') <> '' THEN
            changes := changes || jsonb_build_object('runtime_error',
                                                     current_setting('{RUNTIME_ERROR}', true));
        END IF;"""
)


AMENDMENTS = ((_MARKER_CHECK, _SKIP_DELIVERY_COUNTERS), (_CHANGES, _CHANGES_WITH_ERROR))


def _pin_search_path(functions: Sequence[str]) -> None:
    # As database_recorded_writes: names resolve in the tables' schema, pg_temp last.
    statements = "\n".join(
        f"            EXECUTE 'ALTER FUNCTION {f} SET search_path = pg_catalog, '"
        " || quote_ident(current_schema()) || ', pg_temp';"
        for f in functions
    )
    op.execute(f"DO $$\n        BEGIN\n{statements}\n        END\n        $$")


def upgrade() -> None:
    op.execute(amend_function(revision, RECORDING, AMENDMENTS))
    for definition in (ACTIVE_CONFIG_FUNCTION, ALLOW_FUNCTION, RECORD_FUNCTION):
        op.execute(definition)
    _pin_search_path(FUNCTIONS)
    for function in FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {APP_ROLE}")
    op.execute(f"GRANT INSERT (encryption_key_version) ON oauth_tokens TO {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"REVOKE INSERT (encryption_key_version) ON oauth_tokens FROM {APP_ROLE}")
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION {function}")
    op.execute(undo_amendment(revision, RECORDING, AMENDMENTS))
