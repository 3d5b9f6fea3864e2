"""Least-privilege roles with real LOGIN roles connecting with their own credentials.

The owner (the test superuser) grants the group roles with ``reconciler db grant``; CI plans
as its own login, the deploy job applies as its own, a service login acts for its granted
tenants only, and a login that row-level security hides rows from is refused.
"""

from __future__ import annotations

import functools
import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.e2e.workspace import Workspace, libpq_url, stripe_manifest

PASSWORD = "L0gin-Passw0rd-e2e"


@dataclass
class Logins:
    """LOGIN roles of one test: name -> SQLAlchemy URL with its own password."""

    names: dict[str, str]
    urls: dict[str, str]


@pytest.fixture
def logins(ws: Workspace, pg_server_url: str) -> Iterator[Logins]:
    tag = uuid.uuid4().hex[:8]
    names = {kind: f"{kind}_{tag}" for kind in ("ci", "deploy", "svc", "reader", "nobody")}
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        for name in names.values():
            admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}'")
    urls = {
        kind: make_url(ws.database_url)
        .set(username=name, password=PASSWORD)
        .render_as_string(hide_password=False)
        for kind, name in names.items()
    }
    try:
        yield Logins(names, urls)
    finally:
        with psycopg.connect(libpq_url(ws.database_url), autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE usename = ANY(%s) AND pid <> pg_backend_pid()",
                (list(names.values()),),
            )
            for name in names.values():
                conn.execute(f"DROP OWNED BY {name}")
                conn.execute(f"DROP ROLE {name}")


def run_as(ws: Workspace, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**ws.env, "RECONCILER_DATABASE_URL": url}
    return subprocess.run(
        ws.command(*args),
        cwd=ws.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def plan_changes(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode in (0, 2), result.stderr
    plan = json.loads(result.stdout)
    plan.pop("created_at")
    return plan


def sql_as(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        cur = conn.execute(query, params or None)
        return cur.fetchall() if cur.description else []


def new_transaction(
    conn: psycopg.Connection[tuple[Any, ...]], set_role: bool, tenant: str | None
) -> None:
    """Roll back, then start a transaction acting for ``tenant`` (optionally after SET ROLE)."""
    conn.rollback()
    if set_role:  # SET ROLE does not change the login the grants are for
        conn.execute("SET LOCAL ROLE reconciler_app")
    if tenant is not None:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant,))


def grant(ws: Workspace, *args: str) -> None:
    done = ws.run("db", "grant", *args)
    assert done.returncode == 0, done.stderr


def seed(ws: Workspace) -> None:
    """Two tenants applied as the owner, then a manifest change so plans have work to do."""
    ws.write("acme", "stripe", stripe_manifest("acme"))
    ws.write("beta", "stripe", stripe_manifest("beta", interval=60))
    assert ws.run("apply", "--auto-approve").returncode == 0
    ws.sql(
        "INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id) "
        "VALUES ('acme', 'STRIPE', 'enc:x', 'acct_1')"
    )
    ws.write("acme", "stripe", stripe_manifest("acme", interval=30))


def test_ci_login_plans_like_the_owner_and_writes_nothing(ws: Workspace, logins: Logins) -> None:
    seed(ws)
    grant(ws, "--role", "ci", logins.names["ci"])
    ci = logins.urls["ci"]

    owner_plan = plan_changes(ws.run("plan", "--format", "json", "--quiet"))
    ci_plan = plan_changes(run_as(ws, ci, "plan", "--format", "json", "--quiet"))
    assert ci_plan == owner_plan
    assert [c["action"] for c in ci_plan["changes"]] == ["update"]
    owner_drift = plan_changes(ws.run("drift", "--format", "json", "--quiet"))
    assert plan_changes(run_as(ws, ci, "drift", "--format", "json", "--quiet")) == owner_drift

    before = ws.snapshot()
    refused = run_as(ws, ci, "apply", "--auto-approve")
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[-1] == (
        f"Error: role {logins.names['ci']} lacks INSERT, UPDATE on integration_configs, "
        "webhook_configurations; UPDATE (is_active, revoked_at, revoked_by, revoked_reason, "
        "updated_at, row_version, managed_since) on oauth_tokens; "
        "INSERT on configuration_audit_logs, "
        f"apply_runs: grant it reconciler_deploy (`reconciler db grant --role deploy "
        f"{logins.names['ci']}`) or use the owner"
    )
    for statement in (
        "UPDATE integration_configs SET sync_interval = 1",
        "INSERT INTO apply_runs (actor, manifests_digest, outcome, reconciler_version) "
        "VALUES ('x', 'x', 'APPLIED', 'x')",
        "DELETE FROM oauth_tokens",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            sql_as(ci, statement)
    assert ws.snapshot() == before


def test_a_login_that_cannot_see_every_row_is_refused(ws: Workspace, logins: Logins) -> None:
    seed(ws)
    reader, nobody = logins.names["reader"], logins.names["nobody"]
    # The "read-only login" a DBA would make: SELECT on the tables, no policy for it.
    ws.sql(
        f"GRANT SELECT ON integration_configs, webhook_configurations, oauth_tokens, "
        f"alembic_version TO {reader}; "
        f"GRANT EXECUTE ON FUNCTION reconciler_row_counts(text[]) TO {reader}"
    )
    for command in ("plan", "drift"):
        refused = run_as(ws, logins.urls["reader"], command)
        assert refused.returncode == 1, refused.stdout
        assert refused.stderr.splitlines()[-1] == (
            f"Error: role {reader} sees 0 of 2 rows of integration_configs, 0 of 2 rows of "
            "webhook_configurations, 0 of 1 rows of oauth_tokens (row-level security hides "
            f"rows): grant it reconciler_ci (`reconciler db grant --role ci {reader}`) "
            "or use the owner"
        )
        assert "create" not in refused.stdout

    # Privileges on only some tables: named, before anything is counted.
    ws.sql(f"GRANT SELECT ON alembic_version, integration_configs TO {nobody}")
    refused = run_as(ws, logins.urls["nobody"], "plan")
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[-1] == (
        f"Error: role {nobody} lacks SELECT on webhook_configurations, oauth_tokens; "
        f"EXECUTE on reconciler_row_counts(text[]): grant it reconciler_ci "
        f"(`reconciler db grant --role ci {nobody}`) or use the owner"
    )

    # Granting the CI role is the fix the message names.
    grant(ws, "--role", "ci", reader)
    assert run_as(ws, logins.urls["reader"], "plan").returncode == 0


def test_deploy_login_applies_and_can_do_nothing_else(ws: Workspace, logins: Logins) -> None:
    seed(ws)
    grant(ws, "--role", "deploy", logins.names["deploy"])
    grant(ws, "--role", "ci", logins.names["ci"])
    deploy = logins.urls["deploy"]
    # gamma's account is already connected (the OAuth flow wrote its token): the deploy login
    # also marks that token as managed.
    account = "acct_1DeployLoginGamma"
    ws.sql(
        "INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id,"
        " stripe_livemode) VALUES ('gamma', 'STRIPE', 'app-token', %s, true)",
        account,
    )
    accounts = [{"stripe_account_id": account, "livemode": True}]
    ws.write("gamma", "stripe", stripe_manifest("gamma", accounts=accounts))

    applied = run_as(ws, deploy, "apply", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    assert "Applied 4 change(s): 2 created, 2 updated" in applied.stdout
    assert ws.sql(
        "SELECT managed_since IS NOT NULL FROM oauth_tokens WHERE tenant_id = 'gamma'"
    ) == [(True,)]
    assert ws.sql("SELECT count(*) FROM apply_runs") == [(2,)]
    verified = ws.run("audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # CI now sees no changes; the deploy login planned from every row.
    ci = logins.urls["ci"]
    assert run_as(ws, ci, "plan", "--detailed-exitcode").returncode == 0
    # CI also reads the history and verifies the audit chain (with the audit key).
    history = run_as(ws, ci, "history", "--format", "json")
    assert history.returncode == 0 and len(json.loads(history.stdout)) == 2
    verified = run_as(ws, ci, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr

    for statement in (
        "DELETE FROM integration_configs",
        "UPDATE oauth_tokens SET access_token = 'x'",
        "ALTER TABLE integration_configs NO FORCE ROW LEVEL SECURITY",
        "CREATE TABLE public.intruder (id int)",
        "SELECT * FROM reconciler_tenant_grants",
        "UPDATE configuration_audit_logs SET performed_by = 'x'",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            sql_as(deploy, statement)


def test_service_login_acts_only_for_its_granted_tenants(ws: Workspace, logins: Logins) -> None:
    seed(ws)
    svc = logins.names["svc"]
    grant(ws, "--role", "service", svc, "--tenant", "acme")
    url = libpq_url(logins.urls["svc"])

    for set_role in (False, True):
        with psycopg.connect(url) as conn:
            begin = functools.partial(new_transaction, conn, set_role)
            begin(None)
            assert conn.execute("SELECT count(*) FROM integration_configs").fetchone() == (0,)
            begin("acme")
            seen = conn.execute("SELECT DISTINCT tenant_id FROM webhook_configurations")
            assert seen.fetchall() == [("acme",)]
            # A runtime-owned column: services write nothing else.
            updated = conn.execute("UPDATE integration_configs SET health_status = 'DEGRADED'")
            assert updated.rowcount == 1

            begin("beta")
            for table in ("integration_configs", "webhook_configurations", "oauth_tokens"):
                rows = conn.execute(f"SELECT tenant_id FROM {table}")
                assert rows.fetchall() == []
            updated = conn.execute(
                "UPDATE integration_configs SET health_status = 'DEGRADED' WHERE tenant_id = 'beta'"
            )
            assert updated.rowcount == 0
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
                conn.execute(
                    "INSERT INTO oauth_tokens (tenant_id, platform, access_token) "
                    "VALUES ('beta', 'HUBSPOT', 'token')"
                )
            for statement in (
                "SELECT count(*) FROM apply_runs",
                "SELECT * FROM reconciler_tenant_grants",
                "INSERT INTO reconciler_tenant_grants VALUES (session_user, 'beta')",
                "SELECT * FROM reconciler_row_counts(ARRAY['integration_configs'])",
            ):
                begin("beta")
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
            conn.rollback()
    assert ws.sql("SELECT tenant_id, sync_interval FROM integration_configs ORDER BY 1") == [
        ("acme", 15),
        ("beta", 60),
    ]

    # Granting beta opens beta; revoking it closes it again.
    grant(ws, "--role", "service", svc, "--tenant", "beta")

    def beta_rows() -> list[tuple[Any, ...]]:
        with psycopg.connect(url) as conn:
            conn.execute("SELECT set_config('app.tenant_id', 'beta', true)")
            return conn.execute("SELECT tenant_id FROM integration_configs").fetchall()

    assert beta_rows() == [("beta",)]
    assert ws.run("db", "revoke", "--role", "service", svc, "--tenant", "beta").returncode == 0
    assert beta_rows() == []
    # A service login is refused by plan (it cannot read the schema revision, let alone every
    # tenant); one line, no plan.
    refused = run_as(ws, logins.urls["svc"], "plan")
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) <= 2
    assert svc in refused.stderr.splitlines()[-1]
