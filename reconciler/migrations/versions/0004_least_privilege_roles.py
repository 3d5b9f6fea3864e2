"""least_privilege_roles: roles for the deploy job and CI, FORCEd row-level security, tenant grants.

Revision ID: least_privilege_roles
Revises: keyed_audit_chain
Create Date: 2026-12-01

Upgrade:

* NOLOGIN roles (created unless they exist; roles are cluster-wide):

  - ``reconciler_deploy`` (``apply``): reads every tenant table, INSERTs and UPDATEs
    ``integration_configs`` and ``webhook_configurations``, UPDATEs the revocation columns of
    ``oauth_tokens``, INSERTs audit rows and ``apply_runs``. No DELETE, no DDL.
  - ``reconciler_ci`` (``plan``, ``drift``): SELECT on every table the reconciler reads;
    writes nothing.
  - ``reconciler_app`` (services, from ``add_configuration_management``) keeps its table
    privileges, except ``apply_runs``, which it can no longer read.

* ``FORCE ROW LEVEL SECURITY`` on the four tenant tables and on ``apply_runs``, so the owner
  too goes through a policy. Policies: ``reconciler_owner`` (the tables' owners, every row),
  ``reconciler_deploy`` (every row), ``reconciler_ci`` (every row, SELECT only) and
  ``tenant_isolation``, now only for ``reconciler_app``: a row is visible and writable when
  its ``tenant_id`` is ``app.tenant_id`` *and* ``reconciler_tenant_grants`` grants that
  tenant to ``session_user`` (the login, which ``SET ROLE`` does not change). A leaked
  service credential opens only the tenants granted to that login.

* ``apply_runs`` is out of ``reconciler_app``'s reach: a run spans tenants and records the
  deploy (actor, commit, counts), which no single tenant's service needs; scoping it would
  need a tenant column it cannot have. RLS with no ``reconciler_app`` policy backs the
  revoked grant up.

* ``reconciler_tenant_grants (role_name name, tenant_id text)``, owned by the table owner and
  readable by nobody else; ``reconciler_granted_tenant()`` (SECURITY DEFINER) is how the
  policies consult it without letting services read it.

* ``reconciler_row_counts(text[])`` (SECURITY DEFINER, owned by the table owner): the true
  row count of each named table, which ``plan``, ``drift`` and ``apply`` compare with what the
  connected role can count, to refuse a partial view. Executable by ``reconciler_deploy`` and
  ``reconciler_ci`` only (counts across tenants are not for services).

The owners' policy and the functions' owner and ``search_path`` are taken from the catalog,
so a superuser migrating someone else's database gets the same result as the owner: the
policy is for every role that owns one of the five tables (an adopted ``oauth_tokens`` may
belong to the application's role, which keeps seeing every token, as it did before FORCE);
the functions belong to the owner of ``integration_configs`` and resolve names in its schema.

Downgrade keeps every row of every table: the policies, grants and functions above are
removed, ``tenant_isolation`` applies to every role again as before, RLS is no longer
FORCEd, ``apply_runs`` is readable by ``reconciler_app`` again. The grants table is dropped
(it is access configuration that only these policies read: list it with ``reconciler db
roles`` first). The roles stay: other databases of the cluster may use them.
"""

from __future__ import annotations

from alembic import op

from reconciler.migrations.support import APP_ROLE, CI_ROLE, DEPLOY_ROLE

revision: str = "least_privilege_roles"
down_revision: str | None = "keyed_audit_chain"

NEW_ROLES = (DEPLOY_ROLE, CI_ROLE)

TENANT_TABLES = (
    "oauth_tokens",
    "integration_configs",
    "webhook_configurations",
    "configuration_audit_logs",
)
FORCED_TABLES = (*TENANT_TABLES, "apply_runs")
READ_TABLES = (*FORCED_TABLES, "alembic_version")
CONFIG_TABLES = ("integration_configs", "webhook_configurations")
REVOCATION_COLUMNS = (
    "is_active",
    "revoked_at",
    "revoked_by",
    "revoked_reason",
    "updated_at",
    "row_version",
)
GRANTS_TABLE = "reconciler_tenant_grants"
ROW_COUNTS = "reconciler_row_counts(text[])"
GRANTED_TENANT = "reconciler_granted_tenant()"
OWN_POLICIES = ("reconciler_owner", "reconciler_deploy", "reconciler_ci")

PREVIOUS_CHECK = "tenant_id = current_setting('app.tenant_id', true)"
GRANTED_CHECK = "tenant_id = (SELECT reconciler_granted_tenant())"


def upgrade() -> None:
    create_roles()
    op.execute(
        f"CREATE TABLE {GRANTS_TABLE} (role_name name NOT NULL, tenant_id text NOT NULL, "
        f"CONSTRAINT {GRANTS_TABLE}_pkey PRIMARY KEY (role_name, tenant_id))"
    )
    op.execute(f"REVOKE ALL ON {GRANTS_TABLE} FROM PUBLIC")
    create_functions()

    for table in FORCED_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY reconciler_deploy ON {table} TO {DEPLOY_ROLE} "
            "USING (true) WITH CHECK (true)"
        )
        op.execute(f"CREATE POLICY reconciler_ci ON {table} FOR SELECT TO {CI_ROLE} USING (true)")
    for table in TENANT_TABLES:
        op.execute(
            f"ALTER POLICY tenant_isolation ON {table} TO {APP_ROLE} "
            f"USING ({GRANTED_CHECK}) WITH CHECK ({GRANTED_CHECK})"
        )
    op.execute(f"REVOKE ALL ON apply_runs FROM {APP_ROLE}")

    both = f"{DEPLOY_ROLE}, {CI_ROLE}"
    op.execute(f"GRANT SELECT ON {', '.join(READ_TABLES)} TO {both}")
    op.execute(f"GRANT INSERT, UPDATE ON {', '.join(CONFIG_TABLES)} TO {DEPLOY_ROLE}")
    op.execute(f"GRANT UPDATE ({', '.join(REVOCATION_COLUMNS)}) ON oauth_tokens TO {DEPLOY_ROLE}")
    op.execute(f"GRANT INSERT ON configuration_audit_logs, apply_runs TO {DEPLOY_ROLE}")
    op.execute(f"GRANT EXECUTE ON FUNCTION {ROW_COUNTS} TO {both}")
    op.execute(f"GRANT EXECUTE ON FUNCTION {GRANTED_TENANT} TO {APP_ROLE}")

    # What depends on who owns the tables and where they live, read from the catalog.
    forced = ", ".join(f"'{t}'" for t in FORCED_TABLES)
    op.execute(
        f"""
        DO $$
        DECLARE
            owner_name name;
            schema_name name;
            owners text;
            tbl text;
        BEGIN
            SELECT r.rolname, n.nspname INTO owner_name, schema_name
              FROM pg_catalog.pg_class c
              JOIN pg_catalog.pg_roles r ON r.oid = c.relowner
              JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE c.oid = 'integration_configs'::regclass;
            -- An adopted oauth_tokens may belong to the application's own role: every owner
            -- keeps seeing every row, as before FORCE.
            SELECT string_agg(DISTINCT quote_ident(r.rolname), ', ') INTO owners
              FROM pg_catalog.pg_class c
              JOIN pg_catalog.pg_roles r ON r.oid = c.relowner
             WHERE c.oid = ANY(CAST(ARRAY[{forced}] AS regclass[]));
            FOREACH tbl IN ARRAY ARRAY[{forced}] LOOP
                EXECUTE 'CREATE POLICY reconciler_owner ON ' || quote_ident(tbl)
                    || ' TO ' || owners || ' USING (true) WITH CHECK (true)';
            END LOOP;
            EXECUTE 'ALTER TABLE {GRANTS_TABLE} OWNER TO ' || quote_ident(owner_name);
            FOREACH tbl IN ARRAY ARRAY['{ROW_COUNTS}', '{GRANTED_TENANT}'] LOOP
                EXECUTE 'ALTER FUNCTION ' || tbl || ' OWNER TO ' || quote_ident(owner_name);
                EXECUTE 'ALTER FUNCTION ' || tbl || ' SET search_path = pg_catalog, '
                    || quote_ident(schema_name) || ', pg_temp';
            END LOOP;
            -- apply allocates audit ids itself (nextval on the identity sequence).
            EXECUTE 'GRANT USAGE ON SEQUENCE '
                || pg_get_serial_sequence('configuration_audit_logs', 'id')
                || ' TO {DEPLOY_ROLE}';
        END
        $$
        """
    )


def create_roles() -> None:
    # As in add_configuration_management: create only if no other database did already; a
    # concurrent CREATE ROLE can fail with unique_violation instead of duplicate_object.
    for role in NEW_ROLES:
        op.execute(
            f"""
            DO $$
            BEGIN
                IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{role}') THEN
                    CREATE ROLE {role} NOLOGIN;
                END IF;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END
            $$
            """
        )


def create_functions() -> None:
    # search_path and owner are set from the catalog in upgrade(); both functions are
    # SECURITY DEFINER, so nobody else may execute them until granted.
    op.execute(
        f"""
        CREATE FUNCTION {GRANTED_TENANT} RETURNS text
        LANGUAGE sql STABLE SECURITY DEFINER AS $$
            SELECT g.tenant_id FROM {GRANTS_TABLE} g
             WHERE g.role_name = session_user
               AND g.tenant_id = current_setting('app.tenant_id', true)
        $$
        """
    )
    counts = "\n            UNION ALL\n            ".join(
        f"SELECT '{t}'::text, (SELECT count(*) FROM {t}) WHERE '{t}' = ANY(wanted)"
        for t in FORCED_TABLES
    )
    op.execute(
        f"""
        CREATE FUNCTION reconciler_row_counts(wanted text[])
        RETURNS TABLE (table_name text, row_count bigint)
        LANGUAGE sql STABLE SECURITY DEFINER AS $$
            {counts}
        $$
        """
    )
    for function in (ROW_COUNTS, GRANTED_TENANT):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")


def downgrade() -> None:
    for table in TENANT_TABLES:
        op.execute(
            f"ALTER POLICY tenant_isolation ON {table} TO PUBLIC "
            f"USING ({PREVIOUS_CHECK}) WITH CHECK ({PREVIOUS_CHECK})"
        )
    for table in FORCED_TABLES:
        for policy in OWN_POLICIES:
            op.execute(f"DROP POLICY {policy} ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE apply_runs DISABLE ROW LEVEL SECURITY")
    op.execute(f"GRANT SELECT ON apply_runs TO {APP_ROLE}")

    op.execute(f"REVOKE ALL ON {', '.join(READ_TABLES)} FROM {DEPLOY_ROLE}, {CI_ROLE}")
    op.execute(
        """
        DO $$
        BEGIN
            EXECUTE 'REVOKE ALL ON SEQUENCE '
                || pg_get_serial_sequence('configuration_audit_logs', 'id')
                || ' FROM reconciler_deploy';
        END
        $$
        """
    )
    op.execute(f"DROP FUNCTION {ROW_COUNTS}")
    op.execute(f"DROP FUNCTION {GRANTED_TENANT}")
    op.execute(f"DROP TABLE {GRANTS_TABLE}")
