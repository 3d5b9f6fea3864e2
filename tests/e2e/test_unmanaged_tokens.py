"""Tokens of accounts no manifest has ever declared are never revoked by accident.

The database is a live one: the application wrote its tokens (no account ids, its own
formats) before the reconciler's first upgrade, and keeps connecting accounts afterwards.
The example deploy command, ``apply --auto-approve --prune``, must revoke none of them; only
``--revoke-unmanaged`` does, behind the mass-revocation breaker. An account that a manifest
declared and no longer declares is still revoked by ``--prune``.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_legacy_tokens import _live_database
from tests.e2e.workspace import Workspace, stripe_manifest

DECLARED = "acct_1DeclaredAcct01"
LATER = "acct_1ConnectedLater"


def _active(ws: Workspace) -> list[tuple[int, str, str | None]]:
    return [
        (r[0], r[1], r[2])
        for r in ws.sql(
            "SELECT id, tenant_id, stripe_account_id FROM oauth_tokens"
            " WHERE is_active AND revoked_at IS NULL ORDER BY id"
        )
    ]


def test_prune_never_revokes_unmanaged_tokens(tmp_path: Path, empty_database_url: str) -> None:
    ws = Workspace.create(tmp_path, empty_database_url)
    _live_database(ws)
    # After the upgrade the OAuth flow connects two more acme accounts (with account ids).
    for account in (DECLARED, LATER):
        ws.sql(
            "INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id,"
            " stripe_livemode) VALUES ('acme', 'STRIPE', 'app-token', %s, true)",
            account,
        )
    ws.write("acme", "stripe", stripe_manifest("acme", accounts=[_account(DECLARED)]))
    ws.write("globex", "stripe", stripe_manifest("globex"))
    legacy_rows = ws.sql("SELECT * FROM oauth_tokens WHERE stripe_account_id IS NULL ORDER BY id")
    everything = _active(ws)

    plan = ws.plan_json("--prune")
    unmanaged = [n for n in plan["notices"] if n["kind"] == "unmanaged_accounts"]
    assert [n["address"] for n in unmanaged] == [
        "acme/hubspot/-/oauth_account/*",
        "acme/stripe/-/oauth_account/*",
        "globex/quickbooks/-/oauth_account/*",
        "globex/stripe/-/oauth_account/*",
    ]
    assert unmanaged[1]["message"].startswith("2 token(s) of accounts no manifest has ever")
    assert not [c for c in plan["changes"] if c["action"] == "revoke"]
    adopt = [c for c in plan["changes"] if c["resource"]["kind"] == "oauth_account"]
    assert [(c["action"], c["resource"]["name"], c["risk"]["level"]) for c in adopt] == [
        ("update", DECLARED, "LOW")
    ]

    # The example deploy command: nothing unmanaged is revoked, the declared account's
    # token becomes managed (audited), the application's legacy rows are untouched.
    deploy = ws.run("apply", "--auto-approve", "--prune")
    assert deploy.returncode == 0, deploy.stderr
    assert "0 revoked" in deploy.stdout
    assert _active(ws) == everything
    assert (
        ws.sql("SELECT * FROM oauth_tokens WHERE stripe_account_id IS NULL ORDER BY id")
        == legacy_rows
    )
    marked = ws.sql("SELECT stripe_account_id FROM oauth_tokens WHERE managed_since IS NOT NULL")
    assert marked == [(DECLARED,)]
    # The reconciler's own (keyed) rows; the tokens the test wrote by hand as the OAuth flow
    # would are recorded by the database as well ('t' rows).
    assert ws.sql(
        "SELECT action::text, risk_level::text FROM configuration_audit_logs"
        " WHERE entity_type = 'OAUTH_TOKEN' AND left(entry_hash, 1) = 'k'"
    ) == [("UPDATE", "LOW")]
    again = ws.run("apply", "--auto-approve", "--prune")
    assert again.returncode == 0 and "No changes" in again.stdout, again.stdout

    # Removed from its manifest: a managed account, revoked by --prune (HIGH).
    ws.write("acme", "stripe", stripe_manifest("acme", accounts=[]))
    removed = ws.run("apply", "--auto-approve", "--prune")
    assert removed.returncode == 0, removed.stderr
    assert "1 revoked" in removed.stdout
    assert DECLARED not in {a for _, _, a in _active(ws)}
    assert ws.sql(
        'SELECT risk_reasons @> \'[{"code": "UNDECLARED_ACCOUNT"}]\' FROM configuration_audit_logs'
        " WHERE action = 'REVOKE'"
    ) == [(True,)]

    # --revoke-unmanaged is a separate, explicit permission; it needs --prune.
    alone = ws.run("apply", "--auto-approve", "--revoke-unmanaged")
    assert alone.returncode == 1
    assert "--revoke-unmanaged revokes only together with --prune" in alone.stderr
    # acme has three unmanaged tokens left (its two legacy ones and LATER), all it has:
    # the mass-revocation breaker trips for acme, not for globex (two tokens).
    blocked = ws.run("apply", "--auto-approve", "--prune", "--revoke-unmanaged")
    assert blocked.returncode == 4, blocked.stdout + blocked.stderr
    assert "mass revocation of OAuth tokens (allow with --allow-mass-revocation)" in blocked.stderr
    assert "tenant acme: 3 of 3 active tokens" in blocked.stderr
    assert "--allow-mass-deletion" not in blocked.stderr
    assert len(_active(ws)) == len(everything) - 1
    # A saved plan keeps the permission it was made with.
    plan_file = tmp_path / "revoke.json"
    saved = ws.run("plan", "--prune", "--revoke-unmanaged", "--out", str(plan_file), "--quiet")
    assert saved.returncode == 0, saved.stderr
    record = json.loads(plan_file.read_text())
    assert record["mass_deletions"] == [
        {"tenant": "acme", "deleting": 3, "total": 3, "whole_tenant": False, "kind": "tokens"}
    ]
    revoked = ws.run("apply", str(plan_file), "--auto-approve", "--allow-mass-revocation")
    assert revoked.returncode == 0, revoked.stderr
    assert "5 revoked" in revoked.stdout
    assert _active(ws) == []
    verify = ws.run("audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def _account(account_id: str) -> dict[str, object]:
    return {"stripe_account_id": account_id, "livemode": True}
