"""``reconciler import`` end to end: apply, delete the manifests, import, plan shows nothing.

Real PostgreSQL, the CLI as a subprocess, and the real sops binary to read what was written.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.workspace import Workspace, sops_binary, stripe_manifest

STRIPE_KEY = "rk_live_" + "ImportImport0123456789"
HUBSPOT_SECRET = "hs-client-secret-" + "7f3a9c1e"
QB_VERIFIER = "qb-verifier-" + "0a1b2c3d4e5f"
BEARER = "erp-bearer-" + "5e6f7a8b"


@pytest.fixture
def ws(tmp_path: Path, database_url: str) -> Workspace:
    return Workspace.create(tmp_path, database_url)


def _envelope(tenant: str, platform: str, environments: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "reconciler/v1",
        "kind": "PlatformConfig",
        "tenant": tenant,
        "platform": platform,
        "environments": environments,
    }


def _seed(ws: Workspace) -> None:
    """Three platforms, two environments, every kind of field, then connected accounts."""
    stripe = stripe_manifest(
        "acme",
        api_key=STRIPE_KEY,
        webhooks={
            "billing-events": {
                "type": "INBOUND",
                "endpoint_url": "https://hooks.example.com/stripe",
                "auth_type": "SIGNATURE",
                "signing_secret": "whsec_" + "Q" * 32,
                "events": ["invoice.paid", "customer.created"],
                "circuit_breaker": {"failure_threshold": 3, "reset_after_seconds": 120},
            },
            "erp-notify": {
                "type": "OUTBOUND",
                "endpoint_url": "https://erp.example.com/hooks",
                "auth_type": "BEARER",
                "auth_token": BEARER,
                "events": ["charge.refunded"],
                "retry": {"max_attempts": 12, "multiplier": 2.5},
                "active": False,
            },
        },
    )
    stripe["environments"]["sandbox"] = {
        "integrations": {"SETTINGS": {"features": {"nested": {"a": [1, 2.5, "x"]}}}}
    }
    ws.write("acme", "stripe", stripe)
    ws.write(
        "acme",
        "hubspot",
        _envelope(
            "acme",
            "HUBSPOT",
            {
                "production": {
                    "integrations": {
                        "OAUTH": {
                            "primary": True,
                            "api_key": "5e1b9c7d-0f4e-4c2a-9b1d-3e5f7a9c1b2d",
                            "api_secret": HUBSPOT_SECRET,
                            "mapping_rules": {"contact": {"email": "PrimaryEmailAddr.Address"}},
                        }
                    }
                }
            },
        ),
    )
    ws.write(
        "acme",
        "quickbooks",
        _envelope(
            "acme",
            "QUICKBOOKS",
            {
                "production": {
                    "integrations": {
                        "OAUTH": {
                            "api_key": "ABq1client",
                            "api_secret": "qb-client-secret",
                            "sync": {"interval_minutes": 30, "direction": "OUTBOUND"},
                        }
                    },
                    "webhooks": {
                        "accounting-events": {
                            "type": "INBOUND",
                            "app_id": "reconciler-connect",
                            "endpoint_url": "https://hooks.example.com/quickbooks",
                            "auth_type": "SIGNATURE",
                            "signing_secret": QB_VERIFIER,
                            "events": ["Customer.Create", "Invoice.Create"],
                        }
                    },
                }
            },
        ),
    )
    applied = ws.run("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    ws.sql(
        """INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id,
               stripe_livemode, hubspot_portal_id, hubspot_app_id, hubspot_user_id,
               quickbooks_realm_id)
           VALUES ('acme', 'STRIPE', 'x', 'acct_1ImportAbcdef', true, NULL, NULL, NULL, NULL),
                  ('acme', 'STRIPE', 'x', 'acct_1ImportTestmo', false, NULL, NULL, NULL, NULL),
                  ('acme', 'HUBSPOT', 'x', NULL, NULL, '48213907', '987654', '17', NULL),
                  ('acme', 'QUICKBOOKS', 'x', NULL, NULL, NULL, NULL, NULL, '4614770251337223')"""
    )
    for platform in ("stripe", "hubspot", "quickbooks"):
        ws.remove("acme", platform)


def _decrypted(ws: Workspace, path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sops_binary(), "decrypt", str(path)],
        cwd=ws.root,
        env=ws.env,
        check=True,
        capture_output=True,
        text=True,
    )
    return yaml.safe_load(out.stdout)  # type: ignore[no-any-return]


def test_import_then_plan_shows_no_changes(ws: Workspace) -> None:
    _seed(ws)
    imported = ws.run("import", "--tenant", "acme")
    assert imported.returncode == 0, imported.stderr
    files = sorted(p.name for p in (ws.root / "manifests/tenants/acme").iterdir())
    assert files == ["hubspot.yaml", "quickbooks.yaml", "stripe.yaml"]
    # What the database cannot say is reported, not invented.
    assert (
        "warning: manifests/tenants/acme/quickbooks.yaml: "
        "environments.production.webhooks.accounting-events.app_id: not stored" in imported.stderr
    )
    qb = ws.root / "manifests/tenants/acme/quickbooks.yaml"
    assert "app_id" not in qb.read_text()
    assert ws.run("validate").returncode == 1  # until the user fills it in

    # No secret in plaintext on disk or in the output; the real sops reads every value back.
    stripe = ws.root / "manifests/tenants/acme/stripe.yaml"
    on_disk = "".join(p.read_text() for p in (ws.root / "manifests/tenants/acme").iterdir())
    for secret in (STRIPE_KEY, HUBSPOT_SECRET, QB_VERIFIER, BEARER):
        assert secret not in on_disk
        assert secret not in imported.stdout + imported.stderr
    assert stripe.read_text().startswith(
        "# yaml-language-server: $schema=../../../schemas/manifest.v1.json\n"
    )
    plain = _decrypted(ws, stripe)
    production = plain["environments"]["production"]
    assert production["integrations"]["API_KEY"]["api_key"] == STRIPE_KEY
    assert production["webhooks"]["erp-notify"] == {
        "type": "OUTBOUND",
        "endpoint_url": "https://erp.example.com/hooks",
        "auth_type": "BEARER",
        "auth_token": BEARER,
        "events": ["charge.refunded"],
        "retry": {"max_attempts": 12, "multiplier": 2.5},
        "active": False,
    }
    assert production["oauth_accounts"] == [
        {"stripe_account_id": "acct_1ImportAbcdef", "livemode": True}
    ]
    assert plain["environments"]["sandbox"]["oauth_accounts"] == [
        {"stripe_account_id": "acct_1ImportTestmo", "livemode": False}
    ]
    hubspot = _decrypted(ws, ws.root / "manifests/tenants/acme/hubspot.yaml")
    assert hubspot["environments"]["production"]["oauth_accounts"] == [
        {"portal_id": 48213907, "app_id": 987654, "user_id": 17}
    ]

    # Fill in what was reported (a non-secret edit keeps the MAC valid), then validate + plan.
    text = qb.read_text()
    qb.write_text(
        text.replace(
            "type: INBOUND\n", "type: INBOUND\n                app_id: reconciler-connect\n", 1
        )
    )
    validated = ws.run("validate")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    # The imported accounts were unmanaged (no manifest had declared them): the first plan
    # only marks their tokens managed (LOW), and nothing is left after applying it.
    for extra in ((), ("--prune",)):
        plan = ws.plan_json("--tenant", "acme", *extra)
        adopted = [
            (c["action"], c["resource"]["kind"], [r["code"] for r in c["risk"]["reasons"]])
            for c in plan["changes"]
        ]
        assert adopted == [("update", "oauth_account", ["ADOPT_ACCOUNT"])] * len(adopted)
        assert len(adopted) == 4, json.dumps(plan["changes"], indent=1)
        assert plan["notices"] == [], plan["notices"]  # every connected account declared
    applied = ws.run("apply", "--auto-approve", "--tenant", "acme")
    assert applied.returncode == 0, applied.stderr
    for extra in ((), ("--prune",)):
        plan = ws.plan_json("--tenant", "acme", *extra)
        assert plan["changes"] == [], json.dumps(plan["changes"], indent=1)
        assert plan["notices"] == [], plan["notices"]


def test_import_refuses_to_overwrite_without_force(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    assert ws.run("apply", "--auto-approve").returncode == 0
    target = ws.root / "manifests/tenants/acme/stripe.yaml"
    before = target.read_bytes()
    refused = ws.run("import", "--tenant", "acme")
    assert refused.returncode == 1
    assert "already exists" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert target.read_bytes() == before
    forced = ws.run("import", "--tenant", "acme", "--force", "--platform", "stripe")
    assert forced.returncode == 0, forced.stderr
    assert "Replaced manifests/tenants/acme/stripe.yaml" in forced.stdout
    assert ws.plan_json("--tenant", "acme")["changes"] == []
