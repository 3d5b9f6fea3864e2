"""citus_runtime: the services' SQL functions work for a service login on Citus too.

Revision ID: citus_runtime
Revises: citus_distribution
Create Date: 2026-12-02

On Citus the ``tenant_isolation`` policy is evaluated on the shards, on the workers, and so
is the recording trigger. Two things a service session has on the coordinator did not reach
them:

* **Settings.** ``app.tenant_id`` (and the webhook functions' ``reconciler.runtime_call`` and
  ``reconciler.runtime_error``) set with ``set_config()`` stay on the coordinator: Citus only
  carries ``SET LOCAL`` statements to the workers, and only while
  ``citus.propagate_set_commands`` is ``local``. Upgrade adds
  ``reconciler_set_local(name text, value text, is_local boolean) RETURNS text``, which sets
  a setting for the rest of the transaction as ``set_config(name, value, true)`` does and, on
  Citus, as a propagated ``SET LOCAL``. The three runtime functions use it (in place of
  ``set_config``), and first set ``app.tenant_id`` to the tenant they act for, so a service
  calling them with its session's ``app.tenant_id`` gets the same answer on Citus as on
  PostgreSQL, in a transaction block or not (on Citus it also makes the transaction a
  distributed one, so that a read, which Citus otherwise sends to a worker without a
  transaction block, carries the settings too). Only transaction-local settings are
  accepted (``is_local`` true), and only names of the form ``prefix.name``.
* **The grants lookup.** ``reconciler_granted_tenant()`` reads ``reconciler_tenant_grants``
  (a reference table) from within the policy of a shard, which Citus refuses by default
  ("cannot execute a distributed query from a query on a shard"). On Citus the function
  gets ``citus.allow_nested_distributed_execution = on`` for its own calls only: it reads
  the reference table's copy on the node it runs on (no remote execution), in a statement
  that only reads.

* **The recording trigger's table.** On Citus ``record_configuration_write()`` fires on a
  shard, whose name is the table's followed by ``_<shard id>``, so ``TG_TABLE_NAME`` named no
  table it knew: every database-recorded row was filed as an OAuth token, the runtime columns
  a service may write were not found, and the webhook functions' delivery counters were
  recorded. The function now takes the table's name without the shard suffix (the
  reconciler's table names never end in ``_<digits>``, so on PostgreSQL it is the same).

The functions are amended in place (their definitions read from the catalog, each change
checked to apply exactly), on plain PostgreSQL as well, where ``reconciler_set_local`` is
``set_config`` with a check and the behaviour is unchanged.

Downgrade reverses the amendments exactly, drops ``reconciler_set_local`` and (on Citus)
resets the function's setting. No table or row changes either way.
"""

from __future__ import annotations

from alembic import op

from reconciler.migrations.support import APP_ROLE, amend_function, undo_amendment

revision: str = "citus_runtime"
down_revision: str | None = "citus_distribution"

SET_LOCAL = "reconciler_set_local(text, text, boolean)"
GRANTED_TENANT = "reconciler_granted_tenant()"
NESTED = "citus.allow_nested_distributed_execution"

# No "%" anywhere below: offline SQL rendering would double it.
SET_LOCAL_FUNCTION = """
CREATE FUNCTION reconciler_set_local(name text, value text, is_local boolean)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $fn$
DECLARE
    propagation text := current_setting('citus.propagate_set_commands', true);
BEGIN
    IF is_local IS DISTINCT FROM true THEN
        RAISE EXCEPTION USING
            MESSAGE = 'reconciler_set_local: only transaction-local settings',
            ERRCODE = 'invalid_parameter_value';
    END IF;
    IF name IS NULL OR name !~ '^[a-z_][a-z0-9_]*[.][a-z_][a-z0-9_]*$' THEN
        RAISE EXCEPTION USING
            MESSAGE = 'reconciler_set_local: not a setting name: ' || coalesce(name, 'NULL'),
            ERRCODE = 'invalid_parameter_value';
    END IF;
    IF propagation IS NULL THEN
        -- Plain PostgreSQL: nothing to carry anywhere.
        RETURN set_config(name, value, true);
    END IF;
    -- Citus carries SET LOCAL (not set_config) to the workers this transaction uses, now
    -- and later, while propagation is on; it is put back as it was right after.
    PERFORM set_config('citus.propagate_set_commands', 'local', true);
    EXECUTE 'SET LOCAL ' || name || ' = ' || quote_literal(coalesce(value, ''));
    PERFORM set_config('citus.propagate_set_commands', propagation, true);
    -- A read outside BEGIN ... COMMIT (a service calling a function in autocommit) reaches a
    -- worker without a transaction block, and so without the settings above: an empty
    -- intermediate result makes this a distributed transaction, whose blocks carry them.
    EXECUTE 'SELECT create_intermediate_result(''reconciler_set_local'', '
        || '''SELECT 1 WHERE false'')';
    RETURN current_setting(name);
END
$fn$
"""

_TENANT_CHECKED = """            ERRCODE = 'insufficient_privilege';
    END IF;"""

_TENANT_CARRIED = (
    _TENANT_CHECKED
    + """
    -- On Citus the policy and the recording trigger run on the workers: carry the tenant.
    PERFORM reconciler_set_local('app.tenant_id', tenant, true);"""
)

_CARRY_SETTINGS = ("PERFORM set_config(", "PERFORM reconciler_set_local(")
_CARRY_TENANT = (_TENANT_CHECKED, _TENANT_CARRIED)

RECORDING = "record_configuration_write()"
_TABLE_NAME = "TG_TABLE_NAME"
_LOGICAL_NAME = "recorded_table"
_DECLARE = """DECLARE
    runtime constant"""
_DECLARE_LOGICAL = f"""DECLARE
    -- On Citus the trigger fires on a shard, named <table>_<shard id>: the table it records.
    {_LOGICAL_NAME} constant text := regexp_replace(TG_TABLE_NAME, '_[0-9]+$', '');
    runtime constant"""

AMENDMENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "reconciler_active_config(text, text)": (_CARRY_TENANT,),
    "reconciler_webhook_allow(bigint)": (_CARRY_SETTINGS, _CARRY_TENANT),
    "reconciler_webhook_record(bigint, boolean, text)": (_CARRY_SETTINGS, _CARRY_TENANT),
    # Every use of the trigger's table name first, then the declaration that defines it.
    RECORDING: ((_TABLE_NAME, _LOGICAL_NAME), (_DECLARE, _DECLARE_LOGICAL)),
}
"""Per function, the (old, new) texts of its body, replaced in this order on upgrade."""


def _on_citus(statement: str) -> str:
    # Only where the citus extension is installed; named through EXECUTE so that the block
    # also runs on plain PostgreSQL (and in the offline SQL).
    quoted = statement.replace("'", "''")
    return f"""DO $do$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
        EXECUTE '{quoted}';
    END IF;
END
$do$"""


def upgrade() -> None:
    op.execute(SET_LOCAL_FUNCTION)
    op.execute(
        f"DO $$\nBEGIN\n    EXECUTE 'ALTER FUNCTION {SET_LOCAL} SET search_path = pg_catalog, '"
        " || quote_ident(current_schema()) || ', pg_temp';\nEND\n$$"
    )
    op.execute(f"REVOKE ALL ON FUNCTION {SET_LOCAL} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SET_LOCAL} TO {APP_ROLE}")
    for function, pairs in AMENDMENTS.items():
        op.execute(amend_function(revision, function, pairs))
    op.execute(_on_citus(f"ALTER FUNCTION {GRANTED_TENANT} SET {NESTED} = on"))


def downgrade() -> None:
    op.execute(_on_citus(f"ALTER FUNCTION {GRANTED_TENANT} RESET {NESTED}"))
    for function, pairs in AMENDMENTS.items():
        op.execute(undo_amendment(revision, function, pairs))
    op.execute(f"DROP FUNCTION {SET_LOCAL}")
