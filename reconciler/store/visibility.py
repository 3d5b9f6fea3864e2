"""Refuse a partial view: the connected role must see every row of every table a command reads.

Under row-level security a role without a policy sees no rows rather than an error, so a
``plan`` run by a login that RLS hides rows from would report every object as a create. Before
``plan``, ``drift`` and ``apply`` read the database, :func:`check_visibility` checks, in the
read's own transaction (so on the same snapshot):

1. the privileges the command needs (``has_table_privilege`` / ``has_column_privilege``) and
   EXECUTE on ``reconciler_row_counts(text[])``; one statement;
2. whether any row can be hidden from the role at all, from the catalog alone: it cannot
   when row-level security is not active for the role on a table (a superuser, a BYPASSRLS
   role, an owner without FORCE), or when a permissive policy ``USING (true)`` for SELECT
   applies to the role (directly, through a role it inherits from, or PUBLIC) and no
   restrictive one does, which is how the owner, ``reconciler_ci`` and
   ``reconciler_deploy`` read; one statement for all tables, whatever their size;
3. otherwise, that the row count the role itself gets from each table equals the true count,
   which ``reconciler_row_counts`` (SECURITY DEFINER, owned by the table owner) returns; one
   statement for all tables.

Whole tables are counted, not the selection a plan reads: a role that sees only some tenants
is refused even for a plan of those tenants (use a service login's own queries for that).
Counting reads every row of the fleet, so it runs only when the policies leave a doubt: a
plan of two tenants costs the same at any fleet size.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import sqlalchemy as sa

from reconciler.errors import PermissionDenied
from reconciler.store.row_state import MANAGED, REVOKED, TOKEN_ON, VERSION
from reconciler.store.tables import CI_ROLE, DEPLOY_ROLE

ROW_COUNTS_FUNCTION = "reconciler_row_counts(text[])"
"""The SECURITY DEFINER function that returns the true row count of each table it is given."""

READ_TABLES = ("integration_configs", "webhook_configurations", "oauth_tokens")
"""What ``plan`` and ``drift`` read (see :mod:`reconciler.store.read`)."""


@dataclass(frozen=True, slots=True)
class Need:
    """One privilege a command needs: on a table, or on one column of it."""

    table: str
    privilege: str
    column: str | None = None


class Access(enum.Enum):
    """What a command does with the database, and so what it must be able to see and do."""

    READ = "read"
    """``plan`` and ``drift``: read the configuration tables."""
    APPLY = "apply"
    """``apply``: read them and the audit chain heads, write changes, audit rows, a run."""

    @property
    def tables(self) -> tuple[str, ...]:
        """Tables whose every row the command must see."""
        if self is Access.READ:
            return READ_TABLES
        return (*READ_TABLES, "configuration_audit_logs")

    @property
    def needs(self) -> tuple[Need, ...]:
        """The privileges the command uses."""
        reads = tuple(Need(table, "SELECT") for table in self.tables)
        if self is Access.READ:
            return reads
        return (
            *reads,
            *(
                Need(table, privilege)
                for table in ("integration_configs", "webhook_configurations")
                for privilege in ("INSERT", "UPDATE")
            ),
            *(
                Need("oauth_tokens", "UPDATE", column)
                for column in (
                    TOKEN_ON,
                    REVOKED,
                    "revoked_by",
                    "revoked_reason",
                    "updated_at",
                    VERSION,
                    MANAGED,
                )
            ),
            Need("configuration_audit_logs", "INSERT"),
            Need("apply_runs", "INSERT"),
        )

    @property
    def role(self) -> str:
        """The group role that carries what the command needs."""
        return CI_ROLE if self is Access.READ else DEPLOY_ROLE

    @property
    def role_kind(self) -> str:
        """``--role`` of ``reconciler db grant`` for :attr:`role`."""
        return "ci" if self is Access.READ else "deploy"


_PRIVILEGES = sa.text(
    """
    SELECT current_user AS role,
           has_function_privilege(CAST(:function AS text), 'EXECUTE') AS may_count,
           ARRAY(SELECT i FROM unnest(CAST(:tables AS text[]), CAST(:privileges AS text[]),
                                      CAST(:columns AS text[])) WITH ORDINALITY AS n(t, p, c, i)
                  WHERE NOT CASE WHEN c IS NULL THEN has_table_privilege(t, p)
                                 ELSE has_column_privilege(t, c, p) END
                  ORDER BY i) AS missing
    """
)


def describe(needs: list[Need]) -> list[str]:
    """``needs`` in few words: ``INSERT, UPDATE on t1, t2``, ``UPDATE (a, b) on t3``."""
    per_table: dict[str, list[str]] = {}
    columns: dict[tuple[str, str], list[str]] = {}
    for need in needs:
        privileges = per_table.setdefault(need.table, [])
        if need.column is None:
            privileges.append(need.privilege)
            continue
        key = (need.table, need.privilege)
        if key not in columns:
            columns[key] = []
            privileges.append(need.privilege)  # replaced by the column list below
        columns[key].append(need.column)
    tables_by_privileges: dict[str, list[str]] = {}
    for table, privileges in per_table.items():
        text = ", ".join(
            f"{p} ({', '.join(columns[(table, p)])})" if (table, p) in columns else p
            for p in privileges
        )
        tables_by_privileges.setdefault(text, []).append(table)
    return [f"{text} on {', '.join(tables)}" for text, tables in tables_by_privileges.items()]


_APPLIES = """EXISTS (SELECT FROM unnest(p.polroles) AS r(oid)
                      WHERE r.oid = 0 OR pg_catalog.pg_has_role(current_user, r.oid, 'USAGE'))"""
"""A policy applies to the current role: it names PUBLIC (0) or a role whose privileges the
current role has (what row-level security itself checks)."""

_NOTHING_HIDDEN = sa.text(
    f"""
    SELECT coalesce(bool_and(
             NOT pg_catalog.row_security_active(t.oid)
             OR (EXISTS (SELECT FROM pg_catalog.pg_policy p
                          WHERE p.polrelid = t.oid AND p.polpermissive
                            AND p.polcmd IN ('r', '*')
                            AND pg_catalog.pg_get_expr(p.polqual, p.polrelid) = 'true'
                            AND {_APPLIES})
                 AND NOT EXISTS (SELECT FROM pg_catalog.pg_policy p
                                  WHERE p.polrelid = t.oid AND NOT p.polpermissive
                                    AND p.polcmd IN ('r', '*') AND {_APPLIES}))), false)
    FROM (SELECT CAST(name AS regclass) AS oid FROM unnest(CAST(:tables AS text[])) AS n(name)) t
    """
)
"""True when no row of any of ``:tables`` can be hidden from the current role (see the module
docstring): rows of a table are visible unless row-level security is active, and then those
that a permissive policy admits and every restrictive policy admits."""


def nothing_hidden(conn: sa.Connection, tables: tuple[str, ...]) -> bool:
    """True when the catalog shows that row-level security hides no row of ``tables`` from
    the connected role; False when it might (the rows must then be counted)."""
    return bool(conn.execute(_NOTHING_HIDDEN, {"tables": list(tables)}).scalar_one())


def _count_statement(tables: tuple[str, ...]) -> sa.TextClause:
    # Table names come from Access, never from input.
    own = " UNION ALL ".join(f"SELECT '{t}' AS name, count(*) AS seen FROM {t}" for t in tables)
    return sa.text(
        f"SELECT c.table_name, c.row_count, o.seen FROM ({own}) AS o "
        "JOIN reconciler_row_counts(CAST(:tables AS text[])) AS c ON c.table_name = o.name "
        "ORDER BY array_position(CAST(:tables AS text[]), c.table_name)"
    )


def check_visibility(conn: sa.Connection, access: Access) -> None:
    """Raise unless the connected role may do what ``access`` needs and sees every row.

    Run it inside the transaction that then reads, so the counts and the read share a
    snapshot (``REPEATABLE READ``) and a row committed in between cannot make them differ.

    Raises:
        PermissionDenied: a privilege is missing, or row-level security hides rows; one line
            naming the role, what is missing, and the group role to grant.
    """
    needs = access.needs
    row = conn.execute(
        _PRIVILEGES,
        {
            "function": ROW_COUNTS_FUNCTION,
            "tables": [n.table for n in needs],
            "privileges": [n.privilege for n in needs],
            "columns": [n.column for n in needs],
        },
    ).one()
    role = str(row.role)
    fix = (
        f"grant it {access.role} (`reconciler db grant --role {access.role_kind} {role}`) "
        "or use the owner"
    )
    missing = describe([needs[i - 1] for i in row.missing])
    if not row.may_count:
        missing.append(f"EXECUTE on {ROW_COUNTS_FUNCTION}")
    if missing:
        raise PermissionDenied(f"role {role} lacks {'; '.join(missing)}: {fix}")

    tables = access.tables
    if nothing_hidden(conn, tables):
        return  # counting would read every row of the fleet to confirm it
    counts = conn.execute(_count_statement(tables), {"tables": list(tables)}).all()
    if len(counts) != len(tables):
        raise PermissionDenied(
            f"{ROW_COUNTS_FUNCTION} did not count every table ({', '.join(tables)}): "
            "run `reconciler db upgrade` as the owner"
        )
    hidden = [f"{seen} of {total} rows of {name}" for name, total, seen in counts if seen < total]
    if hidden:
        raise PermissionDenied(
            f"role {role} sees {', '.join(hidden)} (row-level security hides rows): {fix}"
        )
    extra = [name for name, total, seen in counts if seen > total]
    if extra:
        # The counting function sees less than the caller: it is not the owner's any more.
        raise PermissionDenied(
            f"{ROW_COUNTS_FUNCTION} sees fewer rows of {', '.join(extra)} than role {role}: "
            "it must be owned by the tables' owner (ALTER FUNCTION ... OWNER TO that role)"
        )
