"""citus_distribution: on a Citus coordinator, distribute the tenant tables by ``tenant_id``.

Revision ID: citus_distribution
Revises: approvals
Create Date: 2026-12-01

On plain PostgreSQL (no ``citus`` extension in the database) this revision changes nothing;
it only records itself. On a Citus coordinator (the extension is installed and this node is
group 0), upgrade makes the schema a distributed one:

* ``oauth_tokens``, ``integration_configs``, ``webhook_configurations`` and
  ``configuration_audit_logs``: **distributed by** ``tenant_id``, all in **one colocation
  group** (the group of ``oauth_tokens``). Every key, unique constraint and index that
  enforces something leads with ``tenant_id``, so Citus can enforce them per shard; a
  tenant's configuration rows and its audit chain live in the same shard group on one node,
  so a tenant's writes and their audit rows stay in one node's transaction, and the
  database's recording trigger appends to a shard on the node it runs on.
* ``reconciler_tenant_grants``: a **reference table** (a copy on every node). The
  ``tenant_isolation`` policy runs on the shards, on the workers, and consults it through
  ``reconciler_granted_tenant()``; it is tiny and written only by ``reconciler db grant``.
* ``apply_runs``: a **reference table**. It has no tenant (a run spans tenants), holds one
  row per apply, and audit rows refer to it, so reports join it with distributed audit rows
  on any node without pulling either to the coordinator.
* ``alembic_version``: **stays on the coordinator** (local): only migrations read it, and
  they always run there.

Triggers: Citus refuses to distribute a table with triggers unless
``citus.enable_unsafe_triggers`` is on. It is set for this transaction only: the append-only
trigger, the TRUNCATE guard, the guard on database-recorded rows and the recording triggers
are then created on every shard, where the rows are, so they fire for every write whichever
node it arrives at (the append-only guarantee holds on the shards, not just on the
coordinator's empty shell table). They are "unsafe" in Citus's sense only when a trigger
writes to a table in another shard group; the recording trigger writes audit rows of the
same tenant, which are colocated on the same node.

Row-level security policies and grants are carried over by ``create_distributed_table`` and
``create_reference_table`` to every shard, and the roles already exist on every node (Citus
propagates ``CREATE ROLE``). Three objects take a form Citus can run, on Citus only:

* ``tenant_isolation`` calls ``reconciler_granted_tenant()`` directly: Citus refuses
  subqueries in the policies of distributed tables (same result, the function is STABLE);
* ``reconciler_row_counts(text[])`` is PL/pgSQL: Citus cannot push a SQL function's
  parameters into a distributed query;
* ``record_configuration_write()`` takes a new audit id above the tenant's highest id as
  well as from the sequence: on Citus each node hands out its own range of the sequence, and
  a tenant's ids must keep growing along its chain (``audit verify`` and the chain heads
  order by id).

Downgrade undistributes the same tables (``undistribute_table``: their rows come back to the
coordinator, triggers, policies and grants with them; the identity columns, which
``undistribute_table`` refuses, are dropped on the coordinator for the move and restored
after, past the highest id; ``reconciler_active_config()``, which returns the rows of
``integration_configs`` and so is dropped with the table Citus rebuilds, is created again
as it was, with its grants) and puts the three objects back as they were, so every earlier
downgrade runs on plain tables again. Both directions are idempotent: a table already in the
target form is left as it is.
"""

from __future__ import annotations

from alembic import op

from reconciler.migrations.support import APP_ROLE

revision: str = "citus_distribution"
down_revision: str | None = "approvals"

COLOCATION_LEADER = "oauth_tokens"
DISTRIBUTED = (
    "oauth_tokens",
    "integration_configs",
    "webhook_configurations",
    "configuration_audit_logs",
)
REFERENCE = ("reconciler_tenant_grants", "apply_runs")
# The tenant_isolation policy's condition as least_privilege_roles wrote it, and as Citus
# accepts it on a distributed table.
GRANTED_CHECK = "tenant_id = (SELECT reconciler_granted_tenant())"
GRANTED_CALL = "tenant_id = reconciler_granted_tenant()"

# Return unless on a Citus coordinator: the extension is there and this node is group 0 (a
# worker's group id is positive). Citus's catalog is only named through EXECUTE, so that the
# block also compiles on plain PostgreSQL.
ONLY_ON_COORDINATOR = """
            IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
                RETURN;
            END IF;
            EXECUTE 'SELECT groupid FROM pg_dist_local_group' INTO node_group;
            IF node_group <> 0 THEN
                RAISE EXCEPTION USING
                    MESSAGE = 'this is a Citus worker node: run the upgrade on the coordinator',
                    ERRCODE = 'feature_not_supported';
            END IF;
"""


FORCED_TABLES = (*DISTRIBUTED, "apply_runs")


def _row_counts(language: str) -> str:
    """``reconciler_row_counts`` in SQL (as least_privilege_roles wrote it) or PL/pgSQL.

    Citus cannot plan a SQL function's parameters into a distributed query; the PL/pgSQL
    form is planned by Citus statement by statement. Owner and grants are kept by CREATE OR
    REPLACE; ``search_path`` and SECURITY DEFINER are restated.
    """
    if language == "sql":
        body = "\n            UNION ALL\n            ".join(
            f"SELECT '{t}'::text, (SELECT count(*) FROM {t}) WHERE '{t}' = ANY(wanted)"
            for t in FORCED_TABLES
        )
    else:
        body = (
            "BEGIN\n"
            + "".join(
                f"    IF '{t}' = ANY(wanted) THEN\n"
                f"        table_name := '{t}'; SELECT count(*) INTO row_count FROM {t};\n"
                "        RETURN NEXT;\n"
                "    END IF;\n"
                for t in FORCED_TABLES
            )
            + "END"
        )
    definition = (
        "CREATE OR REPLACE FUNCTION reconciler_row_counts(wanted text[]) "
        "RETURNS TABLE (table_name text, row_count bigint) "
        f"LANGUAGE {language} STABLE SECURITY DEFINER AS $fn$\n{body}\n$fn$"
    )
    quoted = definition.replace("'", "''")
    return (
        f"            EXECUTE '{quoted}';\n"
        "            EXECUTE 'ALTER FUNCTION reconciler_row_counts(text[]) SET search_path = '\n"
        "                || 'pg_catalog, '\n"
        "                || (SELECT relnamespace::regnamespace::text FROM pg_class\n"
        "                     WHERE oid = 'integration_configs'::regclass)\n"
        "                || ', pg_temp';\n"
    )


# record_configuration_write() (database_recorded_writes), edited in place on Citus: read back
# with pg_get_functiondef (owner, grants and search_path stay) and the three lines replaced.
_OLD_NEW = (
    ("    new_id bigint;", "    new_id bigint;' || chr(10) || '    last_id bigint;"),
    (
        "SELECT a.entry_hash::text INTO head FROM configuration_audit_logs a",
        "SELECT a.entry_hash::text, a.id INTO head, last_id FROM configuration_audit_logs a",
    ),
    (
        "new_id := nextval(pg_get_serial_sequence(''configuration_audit_logs'', ''id''));",
        "new_id := greatest(nextval(pg_get_serial_sequence(''configuration_audit_logs'', "
        "''id'')), coalesce(last_id, 0) + 1);' || chr(10) || '        last_id := new_id;",
    ),
)


def _recording_function(distributed: bool) -> str:
    """Edit ``record_configuration_write()`` for Citus (``distributed``) or back.

    On Citus the identity sequence hands out a different range on each node, and the
    function runs on the worker holding the tenant's shard: a new id is taken above the
    tenant's highest id as well, so each tenant's ids keep growing along its chain (the
    order ``audit verify`` and the chain heads rely on).
    """
    pairs = _OLD_NEW if distributed else tuple((new, old) for old, new in _OLD_NEW)
    edits = "".join(f"                fn := replace(fn, '{old}', '{new}');\n" for old, new in pairs)
    wanted = 4 if distributed else 0
    return (
        "            fn := pg_get_functiondef('record_configuration_write()'::regprocedure);\n"
        f"            IF (position('last_id' IN fn) > 0) <> {str(distributed).lower()} THEN\n"
        f"{edits}"
        f"                IF (length(fn) - length(replace(fn, 'last_id', ''))) / 7 <> {wanted}"
        " THEN\n"
        "                    RAISE EXCEPTION USING MESSAGE = 'record_configuration_write() is '\n"
        "                        || 'not the function this revision knows', "
        "ERRCODE = 'object_not_in_prerequisite_state';\n"
        "                END IF;\n"
        "                EXECUTE fn;\n"
        "            END IF;\n"
    )


def _distribute() -> str:
    # Statements of PL/pgSQL are planned when first run, so the Citus functions named here
    # need not exist on plain PostgreSQL (the block returns before reaching them).
    out = [_row_counts("plpgsql"), _recording_function(distributed=True)]
    for table in DISTRIBUTED:
        # Citus refuses subqueries in the policies of distributed tables: call the STABLE
        # function directly (planned per statement instead of once as an InitPlan).
        out.append(
            f"            ALTER POLICY tenant_isolation ON {table}\n"
            f"                USING ({GRANTED_CALL}) WITH CHECK ({GRANTED_CALL});\n"
        )
    for table in (*REFERENCE, *DISTRIBUTED):
        if table in REFERENCE:
            call = f"create_reference_table('{table}')"
        else:
            colocate = "none" if table == COLOCATION_LEADER else COLOCATION_LEADER
            call = (
                f"create_distributed_table('{table}', 'tenant_id', colocate_with => '{colocate}')"
            )
        out.append(
            f"            IF NOT EXISTS (SELECT FROM pg_dist_partition\n"
            f"                            WHERE logicalrelid = '{table}'::regclass) THEN\n"
            f"                PERFORM {call};\n"
            f"            END IF;\n"
        )
    return "".join(out)


# runtime_functions's reconciler_active_config() returns SETOF integration_configs:
# undistribute_table rebuilds the table and drops the function with its old row type. Its
# definition (body, search_path) is kept before and created again after, with its grants.
ACTIVE_CONFIG = "reconciler_active_config(text, text)"


def _undistribute() -> str:
    out = [
        f"            IF to_regprocedure('{ACTIVE_CONFIG}') IS NOT NULL THEN\n"
        f"                active_config := pg_get_functiondef('{ACTIVE_CONFIG}'::regprocedure);\n"
        "            END IF;\n"
    ]
    for table in (*reversed(DISTRIBUTED), *REFERENCE):
        identity = table in DISTRIBUTED
        # undistribute_table refuses a table with an identity column: the column loses its
        # identity for the move and gets it back after, its sequence past the highest id.
        # Citus does not propagate DROP IDENTITY: dropped on the coordinator's table alone,
        # which is what undistribute_table rebuilds the local table from.
        drop = (
            "                PERFORM set_config('citus.enable_ddl_propagation', 'off', true);\n"
            f"                ALTER TABLE {table} ALTER COLUMN id DROP IDENTITY;\n"
            "                PERFORM set_config('citus.enable_ddl_propagation', 'on', true);\n"
        )
        add = (
            f"                ALTER TABLE {table} ALTER COLUMN id\n"
            f"                    ADD GENERATED BY DEFAULT AS IDENTITY;\n"
            f"                PERFORM setval(pg_get_serial_sequence('{table}', 'id'), max(id))\n"
            f"                   FROM {table} HAVING count(*) > 0;\n"
        )
        out.append(
            f"            IF EXISTS (SELECT FROM pg_dist_partition\n"
            f"                        WHERE logicalrelid = '{table}'::regclass) THEN\n"
            f"{drop if identity else ''}"
            f"                PERFORM undistribute_table('{table}');\n"
            f"{add if identity else ''}"
            f"            END IF;\n"
        )
    out.append(
        "            IF active_config IS NOT NULL\n"
        f"               AND to_regprocedure('{ACTIVE_CONFIG}') IS NULL THEN\n"
        "                EXECUTE active_config;\n"
        f"                REVOKE ALL ON FUNCTION {ACTIVE_CONFIG} FROM PUBLIC;\n"
        f"                GRANT EXECUTE ON FUNCTION {ACTIVE_CONFIG} TO {APP_ROLE};\n"
        "            END IF;\n"
    )
    out.append(_row_counts("sql"))
    out.append(_recording_function(distributed=False))
    # least_privilege_roles's grant on the audit log's sequence (recreated above).
    out.append(
        "            EXECUTE 'GRANT USAGE ON SEQUENCE '\n"
        "                || pg_get_serial_sequence('configuration_audit_logs', 'id')\n"
        "                || ' TO reconciler_deploy';\n"
    )
    for table in DISTRIBUTED:
        out.append(
            f"            ALTER POLICY tenant_isolation ON {table}\n"
            f"                USING ({GRANTED_CHECK}) WITH CHECK ({GRANTED_CHECK});\n"
        )
    return "".join(out)


def _on_coordinator(variables: str, statements: str) -> None:
    """Run ``statements`` (PL/pgSQL lines) in a block that returns unless on a coordinator.

    Dynamic SQL only: on plain PostgreSQL the Citus functions do not exist, and the offline
    SQL must run there unchanged.
    """
    op.execute(
        f"""
        DO $$
        DECLARE
            node_group integer;
            fn text;
{variables}        BEGIN
{ONLY_ON_COORDINATOR}{statements}        END
        $$
        """
    )


def upgrade() -> None:
    settings = """\
            -- Triggers go onto the shards (see the revision's description).
            PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
            -- DDL on the new shards in one connection per node, as in a transaction block
            -- that already wrote to these tables Citus requires.
            PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
"""
    _on_coordinator("", settings + _distribute())


def downgrade() -> None:
    _on_coordinator(
        "            active_config text;\n",
        "            PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);\n"
        "            PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);\n"
        + _undistribute(),
    )
