"""End-to-end change management: approvals that gate, readable history, rollback to a git
revision, self-healing drift and notifications, against real PostgreSQL and sops."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.e2e.workspace import Workspace, stripe_manifest

CANARY = "whsec_" + "Canary" * 6


def hook(endpoint: str = "https://hooks.example.com/stripe") -> dict[str, Any]:
    return {
        "type": "INBOUND",
        "endpoint_url": endpoint,
        "auth_type": "SIGNATURE",
        "signing_secret": CANARY,
        "events": ["invoice.paid", "customer.created"],
    }


TWO_HOOKS = {"billing-events": hook(), "refunds": hook("https://hooks.example.com/refunds")}
ONE_HOOK = {"billing-events": hook()}
HOOK = "acme/stripe/production/webhook/refunds"


class Receiver:
    """A local HTTP server that records the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[str]:
        return [r.get("event", "slack") for r in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def dead_url() -> str:
    """A local port nobody listens on."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    return f"http://127.0.0.1:{port}/gone"


def settings(ws: Workspace, *urls: str, extra: str = "") -> None:
    targets = "".join(f"  - url: {u}\n    timeout_seconds: 2\n" for u in urls)
    (ws.root / "reconciler.yaml").write_text(
        ("notify:\n" + targets if urls else "") + extra, encoding="utf-8"
    )


def git(ws: Workspace, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=ws.root,
        env=ws.env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_critical_change_needs_another_persons_approval(ws: Workspace, receiver: Receiver) -> None:
    settings(ws, receiver.url, dead_url())
    ws.write("acme", "stripe", stripe_manifest("acme", webhooks=TWO_HOOKS))
    assert ws.run("apply", "--auto-approve").returncode == 0
    ws.write("acme", "stripe", stripe_manifest("acme", webhooks=ONE_HOOK))
    made = ws.run("plan", "--prune", "--out", "plan.json", "--actor", "alice", "--quiet")
    assert made.returncode == 0, made.stderr
    assert json.loads((ws.root / "plan.json").read_text())["author"] == "alice"

    refused = ws.run("apply", "plan.json", "--auto-approve", "--actor", "deploy-bot")
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "need 1 approval(s)" in refused.stderr
    assert receiver.events()[-1] == "approval-needed"

    own = ws.run("approve", "plan.json", "--by", "alice")
    assert own.returncode == 1 and "approved by someone else" in own.stderr
    # An approval recorded by the author's name in another spelling is refused too.
    assert ws.run("approve", "plan.json", "--by", " Alice ").returncode == 1

    approved = ws.run("approve", "plan.json", "--by", "bob", "--note", "checked with the team")
    assert approved.returncode == 0, approved.stderr
    assert ws.run("approve", "plan.json", "--by", "bob").returncode == 1  # only once
    # Bob cannot apply what only he approved: his approval does not count for himself.
    self_applied = ws.run("apply", "plan.json", "--auto-approve", "--actor", "bob")
    assert self_applied.returncode == 4, self_applied.stdout + self_applied.stderr

    applied = ws.run("apply", "plan.json", "--auto-approve", "--actor", "deploy-bot")
    assert applied.returncode == 0, applied.stderr
    assert "Approved by: bob" in applied.stdout
    # The dead target is reported, and does not fail the apply.
    assert "notification applied" in applied.stderr and "failed" in applied.stderr
    assert receiver.events()[-1] == "applied"
    assert receiver.received[-1]["details"]["approved_by"] == ["bob"]

    rows = ws.sql(
        "SELECT action::text, performed_by, changes FROM configuration_audit_logs "
        "WHERE entity_address = %s ORDER BY id",
        HOOK,
    )
    review = next(r for r in rows if r[0] == "REVIEW")
    assert review[1] == "bob" and review[2]["decision"] == "APPROVED"
    update = rows[-1]
    assert update[0] == "DELETE" and update[1] == "deploy-bot"
    assert update[2]["authorization"]["approved_by"] == ["bob"]
    assert update[2]["authorization"]["break_glass"] is False
    assert ws.sql("SELECT approved_by, plan_author FROM plan_approvals") == [("bob", "alice")]

    # The run, its approval and the object, in the history people read.
    ((run_id,),) = ws.sql("SELECT id::text FROM apply_runs ORDER BY started_at DESC LIMIT 1")
    shown = ws.run("history", "show", run_id[:8], "--format", "json")
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert detail["run"]["actor"] == "deploy-bot"
    assert [a["approved_by"] for a in detail["approvals"]] == ["bob"]
    assert detail["authorization"]["approved_by"] == ["bob"]
    assert [(c["action"], c["entity_address"]) for c in detail["changes"]] == [("DELETE", HOOK)]
    assert detail["changes"][0]["risk_reasons"][0]["code"] == "DELETE"
    text = ws.run("history", "show", run_id)
    assert "approved by bob" in text.stdout and "DELETE " + HOOK in text.stdout
    assert CANARY not in text.stdout + shown.stdout
    markdown = ws.run("history", "show", run_id, "--format", "markdown")
    assert markdown.stdout.startswith("## Apply run " + run_id)
    timeline = ws.run("history", HOOK)
    assert timeline.returncode == 0, timeline.stderr
    lines = [line for line in timeline.stdout.splitlines() if "#" in line]
    assert [
        next(k for k in ("CREATE by", "APPROVED by bob", "DELETE by deploy-bot") if k in line)
        for line in lines
    ] == ["CREATE by", "APPROVED by bob", "DELETE by deploy-bot"]
    assert CANARY not in timeline.stdout
    listed = ws.run("audit", "list", "--run", run_id, "--format", "json")
    assert [r["action"] for r in json.loads(listed.stdout)] == ["DELETE"]
    verify = ws.run("audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_blocked_failed_and_break_glass_are_notified(ws: Workspace, receiver: Receiver) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme", webhooks=TWO_HOOKS))
    assert ws.run("apply", "--auto-approve").returncode == 0
    settings(ws, receiver.url, extra="apply:\n  allow_risk: low\n")
    moved = {**TWO_HOOKS, "billing-events": hook("https://hooks.example.com/v2")}  # MEDIUM
    ws.write("acme", "stripe", stripe_manifest("acme", interval=30, webhooks=moved))
    assert ws.run("plan", "--out", "plan.json", "--quiet").returncode == 0
    blocked = ws.run("apply", "plan.json", "--auto-approve")
    assert blocked.returncode == 4 and receiver.events() == ["blocked"]
    ws.sql("UPDATE integration_configs SET sync_interval = 99, row_version = row_version + 1")
    stale = ws.run("apply", "plan.json", "--auto-approve", "--allow-risk", "medium")
    assert stale.returncode == 3 and receiver.events() == ["blocked", "failed"]
    assert "changed since the plan was made" in receiver.received[-1]["summary"]

    settings(ws, receiver.url)
    ws.write("acme", "stripe", stripe_manifest("acme", webhooks=ONE_HOOK))
    assert ws.run("apply", "--auto-approve", "--prune").returncode == 4
    assert receiver.events()[-1] == "approval-needed"
    glass = ws.run("apply", "--auto-approve", "--prune", "--allow-risk", "critical")
    assert glass.returncode == 0, glass.stderr
    assert "BREAK-GLASS" in glass.stderr
    assert receiver.events()[-1] == "applied" and "BREAK-GLASS" in receiver.received[-1]["summary"]
    assert receiver.received[-1]["details"]["break_glass"] is True
    assert CANARY not in json.dumps(receiver.received)
    (changes,) = ws.sql(
        "SELECT changes FROM configuration_audit_logs WHERE action = 'DELETE' "
        "AND entity_address = %s",
        HOOK,
    )[0]
    assert changes["authorization"]["break_glass"] is True
    assert changes["authorization"]["allow_risk"] == "CRITICAL"


def test_approval_level_is_configurable(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    assert ws.run("apply", "--auto-approve").returncode == 0
    settings(ws, extra="approval:\n  level: medium\n  required: 2\n")
    ws.write("acme", "stripe", stripe_manifest("acme", endpoint="https://hooks.example.com/v2"))
    assert ws.run("plan", "--out", "plan.json", "--actor", "alice").returncode == 0
    assert ws.run("approve", "plan.json", "--by", "bob").returncode == 0
    one = ws.run("apply", "plan.json", "--auto-approve")
    assert one.returncode == 4 and "need 2 approval(s)" in one.stderr and "1 found" in one.stderr
    assert ws.run("approve", "plan.json", "--by", "carol").returncode == 0
    assert ws.run("apply", "plan.json", "--auto-approve").returncode == 0


def test_apply_revision_restores_an_earlier_state(ws: Workspace, receiver: Receiver) -> None:
    (ws.root / ".gitignore").write_text(".reconciler/\nplan*.json\nreconciler.yaml\nage-key.txt\n")
    git(ws, "init", "-q", "-b", "main")
    ws.write("acme", "stripe", stripe_manifest("acme", interval=15))
    git(ws, "add", "-A")
    git(ws, "commit", "-q", "-m", "good")
    good = git(ws, "rev-parse", "HEAD")
    assert ws.run("apply", "--auto-approve").returncode == 0
    ws.write("acme", "stripe", stripe_manifest("acme", interval=30))
    git(ws, "commit", "-q", "-am", "bad")
    assert ws.run("apply", "--auto-approve").returncode == 0
    assert ws.sql("SELECT sync_interval FROM integration_configs") == [(30,)]
    settings(ws, receiver.url)
    head_file = (ws.root / "manifests/tenants/acme/stripe.yaml").read_bytes()

    planned = ws.plan_json("--revision", good[:10])
    assert planned["revision"] == good[:10]
    assert [(c["address"], c["fields"][0]["after"]) for c in planned["changes"]] == [
        ("acme/stripe/production/integration/API_KEY", 15)
    ]
    rolled = ws.run("apply", "--revision", good[:10], "--auto-approve")
    assert rolled.returncode == 0, rolled.stderr
    assert ws.sql("SELECT sync_interval FROM integration_configs") == [(15,)]
    (changes, commit) = ws.sql(
        "SELECT changes, git_commit FROM configuration_audit_logs ORDER BY id DESC LIMIT 1"
    )[0]
    assert changes["revision"] == {"revision": good[:10], "commit": good}
    assert commit == good
    # Git's objects were read; the working tree and index are as they were.
    assert (ws.root / "manifests/tenants/acme/stripe.yaml").read_bytes() == head_file
    assert git(ws, "status", "--porcelain") == ""
    assert receiver.events() == ["applied"]
    assert receiver.received[0]["details"]["revision"] == good[:10]
    assert receiver.received[0]["plan"]["revision"] == good[:10]

    # A saved plan remembers its revision; apply reads that revision again.
    saved = ws.run("plan", "--revision", "HEAD", "--out", "plan-head.json", "--quiet")
    assert saved.returncode == 0, saved.stderr
    assert json.loads((ws.root / "plan-head.json").read_text())["revision"] == "HEAD"
    forward = ws.run("apply", "plan-head.json", "--auto-approve")
    assert forward.returncode == 0, forward.stderr
    assert ws.sql("SELECT sync_interval FROM integration_configs") == [(30,)]

    unknown = ws.run("plan", "--revision", "no-such-branch")
    assert unknown.returncode == 1 and "--revision" in unknown.stderr


def test_drift_remediate_heals_a_hand_edit(ws: Workspace, receiver: Receiver) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme", webhooks=TWO_HOOKS))
    assert ws.run("apply", "--auto-approve").returncode == 0
    settings(ws, receiver.url, dead_url())
    ws.sql("UPDATE integration_configs SET sync_interval = 99, row_version = row_version + 1")
    ws.sql("UPDATE webhook_configurations SET is_active = false WHERE name = 'refunds'")
    found = ws.run("drift", "--detailed-exitcode")
    assert found.returncode == 2

    healed = ws.run(
        "drift", "--remediate", "--max-risk", "medium", "--auto-approve", "--actor", "drift-bot"
    )
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert ws.sql("SELECT sync_interval FROM integration_configs") == [(15,)]
    rows = ws.sql(
        "SELECT performed_by, changes FROM configuration_audit_logs "
        "WHERE apply_run_id IS NOT NULL ORDER BY id DESC LIMIT 1"
    )
    assert rows[0][0] == "drift-bot" and rows[0][1]["remediation"] is True
    assert ws.run("drift", "--detailed-exitcode").returncode == 0
    assert "drift" in receiver.events() and receiver.events()[-1] == "applied"
    assert "notification" in healed.stderr  # the dead target, reported
    assert CANARY not in json.dumps(receiver.received)


def test_a_revision_names_its_files_as_the_working_tree_does(ws: Workspace) -> None:
    # The files of a revision are read from a temporary export; the plan's sources, the
    # audit rows and the diagnostics name them as under the manifests directory given.
    (ws.root / ".gitignore").write_text(".reconciler/\nreconciler.yaml\nage-key.txt\n")
    git(ws, "init", "-q", "-b", "main")
    ws.write("acme", "stripe", stripe_manifest("acme"))
    git(ws, "add", "-A")
    git(ws, "commit", "-q", "-m", "good")
    git(ws, "mv", "manifests", "config")
    git(ws, "commit", "-q", "-m", "moved")

    planned = ws.plan_json("--manifests", "config", "--revision", "HEAD")
    assert {c["source"] for c in planned["changes"]} == {"config/tenants/acme/stripe.yaml"}
    # A plan of the working tree fills the manifest cache; the revision's files are the same,
    # so apply takes them from it and decrypts them again from the export to write them.
    assert ws.plan_json("--manifests", "config")["changes"]
    applied = ws.run("apply", "--manifests", "config", "--revision", "HEAD", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    assert set(ws.sql("SELECT DISTINCT source_path FROM configuration_audit_logs")) == {
        ("config/tenants/acme/stripe.yaml",)
    }

    (ws.root / "config/tenants/globex").mkdir()
    (ws.root / "config/tenants/globex/stripe.yaml").write_text("tenant: [unclosed\n")
    git(ws, "add", "-A")
    git(ws, "commit", "-q", "-m", "broken")
    broken = ws.run("plan", "--manifests", "config", "--revision", "HEAD")
    assert broken.returncode != 0
    assert "config/tenants/globex/stripe.yaml:2:1:" in broken.stderr
    assert "reconciler-revision-" not in broken.stdout + broken.stderr
