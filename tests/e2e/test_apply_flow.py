"""End-to-end: the CLI against real PostgreSQL with manifests encrypted by the real sops."""

from __future__ import annotations

import json

from tests.e2e.workspace import Workspace, stripe_manifest


def test_plan_apply_replan_is_idempotent(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    ws.write("beta", "stripe", stripe_manifest("beta", interval=60))
    plan = ws.run("plan", "--detailed-exitcode")
    assert plan.returncode == 2, plan.stderr
    assert "4 to create" in plan.stdout
    assert "rk_live_" not in plan.stdout + plan.stderr

    # The plan filled the manifest cache (fingerprints only); apply decrypts what it writes.
    assert list((ws.root / ".reconciler" / "cache").glob("manifests-*.cache"))
    applied = ws.run("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    assert "Applied 4 change(s): 4 created" in applied.stdout
    audit = ws.sql(
        "SELECT action::text, performed_by, requires_review, entry_hash IS NOT NULL "
        "FROM configuration_audit_logs ORDER BY id"
    )
    assert audit == [("CREATE", "e2e-test", False, True)] * 4
    assert ws.sql("SELECT created_count, actor FROM apply_runs") == [(4, "e2e-test")]

    again = ws.run("plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    before = ws.snapshot()
    noop = ws.run("apply", "--auto-approve")
    assert noop.returncode == 0 and "No changes" in noop.stdout
    assert ws.snapshot() == before  # no audit row, no apply_runs row, nothing touched

    history = ws.run("history", "--format", "json")
    assert [r["created"] for r in json.loads(history.stdout)] == [4]


def test_update_is_field_level_and_audited(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    assert ws.run("apply", "--auto-approve").returncode == 0
    ws.write(
        "acme",
        "stripe",
        stripe_manifest("acme", interval=30, endpoint="https://hooks.example.com/v2"),
    )
    plan = ws.plan_json()
    fields = {
        c["address"]: [(f["field"], f["before"], f["after"]) for f in c["fields"]]
        for c in plan["changes"]
    }
    assert fields == {
        "acme/stripe/production/integration/API_KEY": [("sync_interval", 15, 30)],
        "acme/stripe/production/webhook/billing-events": [
            ("endpoint_url", "https://hooks.example.com/stripe", "https://hooks.example.com/v2")
        ],
    }
    assert ws.run("apply", "--auto-approve").returncode == 0
    rows = ws.sql(
        "SELECT action::text, risk_level::text, changes FROM configuration_audit_logs "
        "WHERE action = 'UPDATE' ORDER BY id"
    )
    assert [(a, r) for a, r, _ in rows] == [("UPDATE", "LOW"), ("UPDATE", "MEDIUM")]
    assert rows[0][2]["fields"] == [
        {"field": "sync_interval", "before": 15, "after": 30, "sensitive": False}
    ]


def test_secret_change_is_masked_everywhere(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    assert ws.run("apply", "--auto-approve").returncode == 0
    canary = "rk_live_" + "CanaryCanary0123456789"
    ws.write("acme", "stripe", stripe_manifest("acme", api_key=canary))
    plan = ws.run("plan")
    assert "(sensitive" in plan.stdout and canary not in plan.stdout + plan.stderr
    applied = ws.run("apply", "--auto-approve", "--format", "json")
    assert applied.returncode == 0, applied.stderr
    result = json.loads(applied.stdout)
    assert result["plan"]["changes"][0]["risk"]["level"] == "HIGH"
    assert canary not in applied.stdout + applied.stderr
    dump = json.dumps(ws.snapshot(), default=str) + json.dumps(
        ws.sql("SELECT changes FROM configuration_audit_logs"), default=str
    )
    assert canary not in dump
    assert ws.sql("SELECT count(*) FROM configuration_audit_logs WHERE requires_review") == [(1,)]


def test_policy_gate_and_mass_deletion_breaker(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    ws.write("beta", "stripe", stripe_manifest("beta"))
    assert ws.run("apply", "--auto-approve").returncode == 0
    ws.remove("beta", "stripe")
    kept = ws.plan_json()
    assert kept["changes"] == [] and {n["kind"] for n in kept["notices"]} == {"kept"}

    before = ws.snapshot()
    blocked = ws.run("apply", "--auto-approve", "--prune")
    assert blocked.returncode == 4, blocked.stdout + blocked.stderr
    assert "--allow-risk critical" in blocked.stderr and "whole tenant removed" in blocked.stderr
    assert ws.snapshot() == before

    still = ws.run("apply", "--auto-approve", "--prune", "--allow-risk", "critical")
    assert still.returncode == 4 and "--allow-mass-deletion" in still.stderr
    done = ws.run(
        "apply", "--auto-approve", "--prune", "--allow-risk", "critical", "--allow-mass-deletion"
    )
    assert done.returncode == 0, done.stderr
    assert ws.sql("SELECT count(*) FROM integration_configs WHERE deleted_at IS NOT NULL") == [(1,)]
    assert ws.sql(
        "SELECT count(*) FROM configuration_audit_logs WHERE action = 'DELETE' "
        "AND risk_level = 'CRITICAL' AND requires_review"
    ) == [(2,)]


def test_saved_plan_applies_and_goes_stale(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    assert ws.run("plan", "--out", "plan.json", "--quiet").returncode == 0
    saved = (ws.root / "plan.json").read_text()
    assert "rk_live_" not in saved and "whsec_" not in saved
    assert ws.run("apply", "plan.json", "--auto-approve").returncode == 0

    ws.write("acme", "stripe", stripe_manifest("acme", interval=45))
    assert ws.run("plan", "--out", "plan.json", "--quiet").returncode == 0
    ws.sql("UPDATE integration_configs SET sync_interval = 99, row_version = row_version + 1")
    before = ws.snapshot()
    stale = ws.run("apply", "plan.json", "--auto-approve")
    assert stale.returncode == 3, stale.stderr
    assert "changed since the plan was made" in stale.stderr
    assert ws.snapshot() == before

    ws.write("acme", "stripe", stripe_manifest("acme", interval=50))
    moved = ws.run("apply", "plan.json", "--auto-approve")
    assert moved.returncode == 3 and "manifests changed" in moved.stderr


def test_apply_without_terminal_needs_auto_approve(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    refused = ws.run("apply")
    assert refused.returncode == 1
    assert "--auto-approve" in refused.stderr and "Traceback" not in refused.stderr
    assert ws.sql("SELECT count(*) FROM integration_configs") == [(0,)]


def test_invalid_manifest_writes_nothing(ws: Workspace) -> None:
    body = stripe_manifest("acme")
    body["environments"]["production"]["webhooks"]["billing-events"]["endpoint_url"] = (
        "http://localhost/x"
    )
    ws.write("acme", "stripe", body)
    result = ws.run("apply", "--auto-approve")
    assert result.returncode == 1
    assert (
        "manifests/tenants/acme/stripe.yaml:" in result.stderr and "Traceback" not in result.stderr
    )
    assert ws.sql("SELECT count(*) FROM webhook_configurations") == [(0,)]


def test_bad_database_url_is_one_line(ws: Workspace) -> None:
    ws.env["RECONCILER_DATABASE_URL"] = "postgresql://nobody:secretpw@127.0.0.1:1/none"
    result = ws.run("plan")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "secretpw" not in result.stderr


def test_dry_run_writes_and_rolls_back(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    before = ws.snapshot()
    dry = ws.run("apply", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Dry run: 2 change(s) (2 created" in dry.stdout and "rolled back" in dry.stdout
    assert ws.snapshot() == before
    # The same code path as a real apply: a constraint the writes violate fails the dry run.
    ws.sql("ALTER TABLE webhook_configurations ADD CONSTRAINT no_acme CHECK (tenant_id <> 'acme')")
    failed = ws.run("apply", "--dry-run")
    assert failed.returncode == 1 and "no_acme" in failed.stderr


def test_missing_manifests_directory_is_refused(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    assert ws.run("apply", "--auto-approve").returncode == 0
    wrong = ws.run("apply", "--auto-approve", "--prune", "--manifests", "manifestz")
    assert wrong.returncode == 1 and "manifestz does not exist" in wrong.stderr
    assert ws.sql("SELECT count(*) FROM integration_configs WHERE deleted_at IS NULL") == [(1,)]


def test_drift_reports_out_of_band_edits(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    assert ws.run("apply", "--auto-approve").returncode == 0
    clean = ws.run("drift", "--detailed-exitcode")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    # Runtime-owned fields move all the time: not drift.
    ws.sql(
        "UPDATE webhook_configurations "
        "SET consecutive_failures = 7, circuit_breaker_status = 'OPEN'"
    )
    assert ws.run("drift", "--detailed-exitcode").returncode == 0
    # A managed field edited by hand is.
    ws.sql("UPDATE webhook_configurations SET endpoint_url = 'https://evil.example.com/x'")
    before = ws.snapshot()
    drift = ws.run("drift", "--detailed-exitcode", "--format", "json")
    assert drift.returncode == 2
    (change,) = json.loads(drift.stdout)["changes"]
    assert change["action"] == "update"
    assert change["fields"] == [
        {
            "field": "endpoint_url",
            "before": "https://evil.example.com/x",
            "after": "https://hooks.example.com/stripe",
            "sensitive": False,
        }
    ]
    assert ws.snapshot() == before  # drift is read-only
