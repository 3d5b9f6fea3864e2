"""The documented pull-request workflow, driven as CI drives it.

PR job: validate, ``plan --out`` (the artifact), ``show --format markdown`` (the comment,
rendered with no database and no keys). Deploy job: apply of that saved plan; a stale plan
is refused with exit 3 and planned again; a CRITICAL change is reported as blocked at plan
time and refused at apply (exit 4) until the flag it names is given.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.e2e.workspace import Workspace, stripe_manifest


def _show(ws: Workspace, plan: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``show`` as the comment step runs it: no database URL, no keys of any kind."""
    env = {
        k: v
        for k, v in ws.env.items()
        if not k.startswith(("RECONCILER_", "SOPS_")) or k == "RECONCILER_ACTOR"
    }
    env["RECONCILER_DATABASE_URL"] = "postgresql://nobody@127.0.0.1:9/none"  # never reached
    return subprocess.run(
        ws.command("show", plan, *args),
        cwd=ws.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_pull_request_then_merge(ws: Workspace) -> None:
    path = ws.write("acme", "stripe", stripe_manifest("acme"))

    # -- pull request ------------------------------------------------------------------
    assert ws.run("validate", "--format", "github").returncode == 0
    made = ws.run("plan", "--out", "plan.json", "--detailed-exitcode", "--quiet")
    assert made.returncode == 2, made.stderr
    state = sorted(p.name for p in ws.root.rglob("*"))
    comment = _show(ws, "plan.json", "--format", "markdown")
    assert comment.returncode == 0, comment.stderr
    assert comment.stdout.startswith("<!-- reconciler-plan -->\n")
    assert "acme" in comment.stdout and "Apply will be blocked" not in comment.stdout
    assert sorted(p.name for p in ws.root.rglob("*")) == state  # show wrote nothing

    record = json.loads((ws.root / "plan.json").read_text())
    assert record["policy"]["blocked"] is False
    hook = next(c for c in record["changes"] if c["resource"]["kind"] == "webhook")
    lines = path.read_text().splitlines()
    assert hook["source"] == "manifests/tenants/acme/stripe.yaml"
    assert lines[hook["line"] - 1].strip() == "billing-events:"
    text = _show(ws, "plan.json").stdout
    assert f"# manifests/tenants/acme/stripe.yaml:{hook['line']}" in text

    # -- merge: the reviewed plan is the applied plan ----------------------------------------
    applied = ws.run("apply", "plan.json", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    assert ws.run("plan", "--detailed-exitcode", "--quiet").returncode == 0


def test_stale_plan_is_refused_then_planned_again(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    assert ws.run("plan", "--out", "plan.json", "--quiet").returncode == 0
    # Another merge is applied first: the database moves under the saved plan.
    assert ws.run("apply", "--auto-approve", "--quiet").returncode == 0
    stale = ws.run("apply", "plan.json", "--auto-approve")
    assert stale.returncode == 3, stale.stderr
    assert "make a new plan" in stale.stderr
    # The documented fallback: plan again and apply that.
    again = ws.run("apply", "--auto-approve")
    assert again.returncode == 0, again.stderr


def test_critical_change_is_blocked_at_plan_time_and_at_apply(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    assert ws.run("apply", "--auto-approve", "--quiet").returncode == 0
    ws.remove("acme", "stripe")

    made = ws.run("plan", "--prune", "--out", "plan.json")
    assert made.returncode == 0, made.stderr
    assert "Apply will be blocked:" in made.stdout
    assert "(needs --allow-risk critical)" in made.stdout
    assert "(needs --allow-mass-deletion)" in made.stdout
    record = json.loads((ws.root / "plan.json").read_text())
    assert record["policy"]["blocked"] is True
    assert {b["needs"] for b in record["policy"]["blocks"]} == {
        "--allow-risk critical",
        "--allow-mass-deletion",
    }
    # Deletions point at the file that declared the objects.
    assert {c["source"] for c in record["changes"]} == {"manifests/tenants/acme/stripe.yaml"}

    comment = _show(ws, "plan.json", "--format", "markdown").stdout
    assert "Apply will be blocked by policy" in comment
    assert "`--allow-risk critical`" in comment
    assert "<details open>" in comment  # CRITICAL is expanded, not collapsed

    # An edited verdict in the file is not believed.
    record["policy"]["blocks"] = []
    record["policy"]["blocked"] = False
    (ws.root / "edited.json").write_text(json.dumps(record))
    edited = _show(ws, "edited.json")
    assert "Apply will be blocked:" in edited.stdout
    assert "recorded policy verdict does not match" in edited.stderr

    before = ws.snapshot()
    blocked = ws.run("apply", "plan.json", "--auto-approve")
    assert blocked.returncode == 4, blocked.stderr
    assert "--allow-risk critical" in blocked.stderr
    assert ws.snapshot() == before

    allowed = ws.run(
        "plan", "--prune", "--allow-risk", "critical", "--allow-mass-deletion", "--quiet"
    )
    assert allowed.returncode == 0
    assert "Apply will be blocked" not in allowed.stdout
    done = ws.run(
        "apply", "plan.json", "--auto-approve", "--allow-risk", "critical", "--allow-mass-deletion"
    )
    assert done.returncode == 0, done.stderr


def _git(ws: Workspace, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=ws.root,
        check=True,
        capture_output=True,
    )


def test_apply_of_uncommitted_manifests_is_recorded_dirty(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    _git(ws, "init", "-q")
    _git(ws, "add", "manifests")
    _git(ws, "commit", "-q", "-m", "acme")
    ws.write("acme", "stripe", stripe_manifest("acme", interval=30))  # not committed

    refused = ws.run("apply", "--auto-approve", "--require-clean")
    assert refused.returncode == 1
    assert "uncommitted changes (--require-clean)" in refused.stderr
    assert ws.sql("SELECT count(*) FROM apply_runs") == [(0,)]

    applied = ws.run("apply", "--auto-approve", "--quiet")
    assert applied.returncode == 0, applied.stderr
    assert "warning: manifests has uncommitted changes" in applied.stderr  # even --quiet
    [(commit, dirty)] = ws.sql("SELECT git_commit, git_dirty FROM apply_runs")
    assert dirty is True and commit and len(commit) == 40
    commits = {c for (c,) in ws.sql("SELECT git_commit FROM configuration_audit_logs")}
    assert commits == {f"{commit}-dirty"}
    history = ws.run("history")
    assert f"{commit[:8]}*" in history.stdout
    [(run_id,)] = ws.sql("SELECT id::text FROM apply_runs")
    detail = ws.run("history", "show", run_id[:8], "--format", "json")
    assert detail.returncode == 0, detail.stderr
    assert json.loads(detail.stdout)["worktree_dirty"] is True

    _git(ws, "add", "manifests")
    _git(ws, "commit", "-q", "-m", "interval")
    ws.write("acme", "stripe", stripe_manifest("acme", interval=45))
    _git(ws, "commit", "-q", "-am", "again")
    clean = ws.run("apply", "--auto-approve", "--require-clean")
    assert clean.returncode == 0, clean.stderr
    assert ws.sql("SELECT git_dirty FROM apply_runs ORDER BY started_at DESC LIMIT 1") == [(False,)]


def test_selector_typo_never_looks_like_a_plan(ws: Workspace) -> None:
    ws.write("acme-robotics", "stripe", stripe_manifest("acme-robotics"))
    for args in (
        ["plan", "--detailed-exitcode", "--tenat", "acme"],
        ["plan", "--detailed-exitcode", "--tenant", "acme-robotic"],
    ):
        result = ws.run(*args)
        assert result.returncode == 64, (args, result.stdout, result.stderr)
        assert "No changes" not in result.stdout
    assert not Path(ws.root / ".reconciler").exists()
