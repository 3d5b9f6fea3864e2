"""The reconciler's roles: which logins are granted which group role, and services' tenants.

Three NOLOGIN group roles, created by the ``least_privilege_roles`` migration, carry every
privilege; a LOGIN role (one per deploy job, CI system or service) gets one of them:

=========== ===================== ==============================================================
``--role``  group role            what its members can do
=========== ===================== ==============================================================
deploy      ``reconciler_deploy`` ``apply``: read every tenant; write configuration, token
                                  revocations, audit rows and apply runs; no DELETE, no DDL
ci          ``reconciler_ci``     ``plan``, ``drift``: read every tenant; write nothing
service     ``reconciler_app``    the tenants granted to that login in
                                  ``reconciler_tenant_grants``, one per transaction
                                  (``app.tenant_id``)
=========== ===================== ==============================================================

:func:`grant` and :func:`revoke` are idempotent and run in the caller's transaction; run them
as the table owner (the only role that may write the grants table), which must also be able
to grant the group roles (CREATEROLE having created them, or ADMIN OPTION on them).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import sqlalchemy as sa

from reconciler.errors import ConfigError, PermissionDenied
from reconciler.store import session
from reconciler.store.database import DatabaseTarget
from reconciler.store.tables import APP_ROLE, CI_ROLE, DEPLOY_ROLE


class RoleKind(enum.StrEnum):
    """The ``--role`` of ``reconciler db grant``: which group role a login gets."""

    DEPLOY = "deploy"
    CI = "ci"
    SERVICE = "service"

    @property
    def group(self) -> str:
        """The NOLOGIN group role granted."""
        return {"deploy": DEPLOY_ROLE, "ci": CI_ROLE, "service": APP_ROLE}[self.value]

    @property
    def purpose(self) -> str:
        """One line for ``reconciler db roles``."""
        return {
            "deploy": "apply: reads every tenant; writes configuration, revocations, audit rows",
            "ci": "plan, drift: reads every tenant; writes nothing",
            "service": "services: only the tenants granted to each login",
        }[self.value]


@dataclass(frozen=True, slots=True)
class GroupRole:
    """A group role as the database has it: whether it exists and its direct members."""

    kind: RoleKind
    exists: bool
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RolesReport:
    """What ``reconciler db roles`` shows.

    ``tenant_grants`` maps each login with grants in ``reconciler_tenant_grants`` to its
    tenants; ``bypass`` lists logins that row-level security never applies to (superusers and
    BYPASSRLS roles), which see every row whatever they are granted.
    """

    owner: str
    groups: tuple[GroupRole, ...]
    tenant_grants: dict[str, tuple[str, ...]]
    bypass: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GrantResult:
    """What a :func:`grant` or :func:`revoke` changed (empty tuples and False: nothing)."""

    login: str
    group: str
    membership_changed: bool
    tenants_changed: tuple[str, ...]
    tenants_unchanged: tuple[str, ...]


def transaction(target: DatabaseTarget) -> AbstractContextManager[sa.Connection]:
    """One transaction on ``target`` for :func:`grant`, :func:`revoke` and :func:`list_roles`
    (:func:`reconciler.store.session.transaction`)."""
    return session.transaction(target, application_name="reconciler-roles")


def _ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def list_roles(conn: sa.Connection) -> RolesReport:
    """The group roles, their members and the services' tenant grants."""
    owner = conn.execute(
        sa.text(
            "SELECT r.rolname FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_roles r ON r.oid = c.relowner "
            "WHERE c.oid = CAST('integration_configs' AS regclass)"
        )
    ).scalar_one()
    groups = conn.execute(
        sa.text(
            """
            SELECT g.name, r.oid IS NOT NULL,
                   ARRAY(SELECT m.rolname FROM pg_catalog.pg_auth_members a
                           JOIN pg_catalog.pg_roles m ON m.oid = a.member
                          WHERE a.roleid = r.oid ORDER BY 1)
              FROM unnest(CAST(:groups AS text[])) WITH ORDINALITY AS g(name, i)
              LEFT JOIN pg_catalog.pg_roles r ON r.rolname = g.name
             ORDER BY g.i
            """
        ),
        {"groups": [kind.group for kind in RoleKind]},
    ).all()
    grants: dict[str, list[str]] = {}
    for login, tenant in conn.execute(
        sa.text("SELECT role_name::text, tenant_id FROM reconciler_tenant_grants ORDER BY 1, 2")
    ):
        grants.setdefault(login, []).append(tenant)
    bypass = conn.execute(
        sa.text(
            "SELECT rolname FROM pg_catalog.pg_roles "
            "WHERE rolcanlogin AND (rolsuper OR rolbypassrls) ORDER BY 1"
        )
    ).scalars()
    return RolesReport(
        owner=owner,
        groups=tuple(
            GroupRole(kind, bool(exists), tuple(sorted(set(members))))
            for kind, (_, exists, members) in zip(RoleKind, groups, strict=True)
        ),
        tenant_grants={login: tuple(tenants) for login, tenants in grants.items()},
        bypass=tuple(bypass),
    )


def _check_login(conn: sa.Connection, login: str, kind: RoleKind) -> None:
    row = conn.execute(
        sa.text(
            "SELECT rolcanlogin, rolsuper OR rolbypassrls AS bypass "
            "FROM pg_catalog.pg_roles WHERE rolname = :login"
        ),
        {"login": login},
    ).one_or_none()
    if row is None:
        raise ConfigError(
            f"role {login} does not exist: create it first, e.g. "
            f"CREATE ROLE {_ident(login)} LOGIN PASSWORD '...'"
        )
    if not row.rolcanlogin:
        raise ConfigError(
            f"role {login} cannot log in: grant {kind.group} to the LOGIN role that connects"
        )
    if row.bypass and kind is RoleKind.SERVICE:
        raise ConfigError(
            f"role {login} is a superuser or has BYPASSRLS: row-level security does not apply "
            "to it, so tenant grants cannot limit it; use a login without them"
        )


def _check_tenants(kind: RoleKind, tenants: Sequence[str], *, granting: bool) -> None:
    if kind is not RoleKind.SERVICE and tenants:
        raise ConfigError(f"--tenant is for --role service only: {kind.group} sees every tenant")
    if kind is RoleKind.SERVICE and granting and not tenants:
        raise ConfigError("--role service needs at least one --tenant T")
    for tenant in tenants:
        if not tenant.strip() or len(tenant) > 255:
            raise ConfigError(f"--tenant {tenant!r}: a tenant id is 1 to 255 characters")


def _is_member(conn: sa.Connection, login: str, group: str) -> bool:
    return bool(
        conn.execute(
            sa.text(
                "SELECT EXISTS (SELECT FROM pg_catalog.pg_auth_members a "
                "JOIN pg_catalog.pg_roles g ON g.oid = a.roleid "
                "JOIN pg_catalog.pg_roles m ON m.oid = a.member "
                "WHERE g.rolname = :group AND m.rolname = :login)"
            ),
            {"group": group, "login": login},
        ).scalar_one()
    )


def _denied(statement: str, exc: sa.exc.DBAPIError) -> PermissionDenied:
    if getattr(exc.orig, "sqlstate", None) != "42501":
        raise exc
    return PermissionDenied(
        f"permission denied: `{statement}` must be run by a superuser, or by a role with "
        "ADMIN OPTION on the group role; nothing was changed"
    )


def _result(
    login: str, group: str, membership_changed: bool, asked: Sequence[str], done: Sequence[str]
) -> GrantResult:
    """The result for the tenants ``asked`` of which ``done`` were changed."""
    return GrantResult(
        login,
        group,
        membership_changed,
        tuple(sorted(done)),
        tuple(sorted(set(asked) - set(done))),
    )


def grant(
    conn: sa.Connection, kind: RoleKind, login: str, tenants: Sequence[str] = ()
) -> GrantResult:
    """Make ``login`` a member of ``kind``'s group role; for services, grant ``tenants`` too.

    Raises:
        ConfigError: ``login`` does not exist or cannot log in, a service login bypasses
            row-level security, or ``tenants`` do not fit ``kind``.
        PermissionDenied: the connected role may not grant the group role.
    """
    _check_tenants(kind, tenants, granting=True)
    _check_login(conn, login, kind)
    group = kind.group
    changed = not _is_member(conn, login, group)
    if changed:
        statement = f"GRANT {group} TO {_ident(login)}"
        try:
            with conn.begin_nested():
                conn.execute(sa.text(statement))
        except sa.exc.DBAPIError as exc:
            raise _denied(statement, exc) from exc
    added: list[str] = []
    if tenants:
        added = list(
            conn.execute(
                sa.text(
                    "INSERT INTO reconciler_tenant_grants (role_name, tenant_id) "
                    "SELECT :login, t FROM unnest(CAST(:tenants AS text[])) AS t "
                    "ON CONFLICT DO NOTHING RETURNING tenant_id"
                ),
                {"login": login, "tenants": sorted(set(tenants))},
            ).scalars()
        )
    return _result(login, group, changed, tenants, added)


def revoke(
    conn: sa.Connection, kind: RoleKind, login: str, tenants: Sequence[str] = ()
) -> GrantResult:
    """Undo :func:`grant`: with ``tenants`` (services), remove only those tenant grants;
    otherwise remove the membership and, for services, every tenant grant of ``login``.

    Raises:
        ConfigError: ``tenants`` given for deploy or ci.
        PermissionDenied: the connected role may not revoke the membership.
    """
    _check_tenants(kind, tenants, granting=False)
    group = kind.group
    removed: list[str] = []
    if kind is RoleKind.SERVICE:
        removed = list(
            conn.execute(
                sa.text(
                    "DELETE FROM reconciler_tenant_grants WHERE role_name = :login "
                    "AND (cardinality(CAST(:tenants AS text[])) = 0 "
                    "     OR tenant_id = ANY(CAST(:tenants AS text[]))) RETURNING tenant_id"
                ),
                {"login": login, "tenants": list(tenants)},
            ).scalars()
        )
    changed = False
    if not tenants and _is_member(conn, login, group):
        # PostgreSQL 16 keeps one grant per grantor and REVOKE removes only the current
        # role's: then revoke each grantor's by name (which older servers may not allow).
        grantors = conn.execute(
            sa.text(
                "SELECT DISTINCT gr.rolname FROM pg_catalog.pg_auth_members a "
                "JOIN pg_catalog.pg_roles g ON g.oid = a.roleid "
                "JOIN pg_catalog.pg_roles m ON m.oid = a.member "
                "JOIN pg_catalog.pg_roles gr ON gr.oid = a.grantor "
                "WHERE g.rolname = :group AND m.rolname = :login ORDER BY 1"
            ),
            {"group": group, "login": login},
        ).scalars()
        plain = f"REVOKE {group} FROM {_ident(login)}"
        for statement in [plain, *(f"{plain} GRANTED BY {_ident(g)}" for g in grantors)]:
            if not _is_member(conn, login, group):
                break
            try:
                with conn.begin_nested():
                    conn.execute(sa.text(statement))
            except sa.exc.DBAPIError as exc:
                if statement == plain:
                    raise _denied(statement, exc) from exc
        if _is_member(conn, login, group):
            raise PermissionDenied(
                f"{login} is still a member of {group}: run `REVOKE {group} FROM "
                f"{_ident(login)}` as a superuser; nothing was changed"
            )
        changed = True
    return _result(login, group, changed, tenants, removed)
