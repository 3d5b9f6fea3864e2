"""Text of ``reconciler db roles`` and of the grant/revoke outcomes."""

from __future__ import annotations

from reconciler.store.roles import GrantResult, RoleKind, RolesReport


def render_roles_text(report: RolesReport) -> str:
    """The group roles, their members and the services' tenant grants."""
    lines = [f"owner: {report.owner} (owns the tables: every row, DDL, grants)"]
    for group in report.groups:
        status = "" if group.exists else " (missing: run `reconciler db upgrade`)"
        lines.append(f"{group.kind.group} [--role {group.kind.value}]{status}")
        lines.append(f"  {group.kind.purpose}")
        if group.kind is RoleKind.SERVICE:
            for login in group.members:
                tenants = report.tenant_grants.get(login, ())
                lines.append(f"  {login}: {', '.join(tenants) if tenants else '(no tenants)'}")
            for login in sorted(set(report.tenant_grants) - set(group.members)):
                listed = ", ".join(report.tenant_grants[login])
                lines.append(f"  {login}: {listed} (not a member: these grants do nothing)")
        else:
            members = ", ".join(group.members) if group.members else "(none)"
            lines.append(f"  members: {members}")
    if report.bypass:
        lines.append(
            f"bypass row-level security (superuser or BYPASSRLS): {', '.join(report.bypass)}"
        )
    return "\n".join(lines) + "\n"


def grant_lines(result: GrantResult) -> list[str]:
    """What a grant changed, one line each."""
    login = result.login
    what = "granted" if result.membership_changed else "already a member of"
    lines = [f"{login}: {what} {result.group}"]
    if result.tenants_changed:
        lines.append(f"{login}: tenants granted: {', '.join(result.tenants_changed)}")
    if result.tenants_unchanged:
        lines.append(f"{login}: tenants already granted: {', '.join(result.tenants_unchanged)}")
    return lines


def revoke_lines(result: GrantResult, *, tenants_named: bool) -> list[str]:
    """What a revoke changed, one line each (the membership only when no tenant was named)."""
    login = result.login
    lines = []
    if not tenants_named:
        what = "revoked" if result.membership_changed else "not a member of"
        lines.append(f"{login}: {what} {result.group}")
    if result.tenants_changed:
        lines.append(f"{login}: tenants revoked: {', '.join(result.tenants_changed)}")
    if result.tenants_unchanged:
        lines.append(f"{login}: tenants not granted: {', '.join(result.tenants_unchanged)}")
    return lines
