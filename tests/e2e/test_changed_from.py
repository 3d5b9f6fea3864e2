"""``--changed-from REF`` plans only the tenants a git change touches."""

from __future__ import annotations

import subprocess

from tests.e2e.workspace import Workspace, stripe_manifest


def _git(ws: Workspace, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=ws.root,
        check=True,
        capture_output=True,
    )


def test_changed_from_narrows_to_changed_tenants(ws: Workspace) -> None:
    for tenant in ("acme", "beta", "gamma"):
        ws.write(tenant, "stripe", stripe_manifest(tenant))
    _git(ws, "init", "-q", "-b", "main")
    _git(ws, "add", "-A")
    _git(ws, "commit", "-q", "-m", "base")
    assert ws.run("apply", "--auto-approve", "--quiet").returncode == 0

    unchanged = ws.run("plan", "--changed-from", "main", "--detailed-exitcode")
    assert unchanged.returncode == 0 and "nothing to plan" in unchanged.stderr

    ws.write("beta", "stripe", stripe_manifest("beta", interval=30))
    ws.remove("gamma", "stripe")
    plan = ws.plan_json(
        "--changed-from", "main", "--prune", "--tenant", "beta", "--tenant", "gamma"
    )
    assert {c["resource"]["tenant"] for c in plan["changes"]} == {"beta", "gamma"}
    assert plan["selectors"]["tenants"] == ["beta", "gamma"]
    full = ws.plan_json("--changed-from", "main")
    assert [c["address"] for c in full["changes"]] == ["beta/stripe/production/integration/API_KEY"]

    (ws.root / "manifests" / "templates").mkdir()
    (ws.root / "manifests" / "templates" / "shared.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: PlatformTemplate\nenvironments: {}\n"
    )
    everything = ws.run("plan", "--changed-from", "main")
    assert "every tenant is planned" in everything.stderr

    bad = ws.run("plan", "--changed-from", "no-such-ref")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
