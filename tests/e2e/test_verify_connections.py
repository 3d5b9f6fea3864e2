"""End-to-end: ``apply --verify-connections`` against a local fake Stripe API."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.workspace import Workspace, stripe_manifest
from tests.fake_platform import closed_port, fake_platform

KEY = "rk_live_" + "VerifyCanary0123456789ab"
ADDRESS = "acme/stripe/production/integration/API_KEY"


def _settings(ws: Workspace, stripe_url: str, extra: str = "") -> None:
    (ws.root / "reconciler.yaml").write_text(
        f"health:\n  timeout_seconds: 2\n  base_urls:\n    stripe: {stripe_url}\n{extra}"
    )


def _written(ws: Workspace) -> tuple[int, int]:
    return (
        ws.sql("SELECT count(*) FROM integration_configs")[0][0],
        ws.sql("SELECT count(*) FROM apply_runs")[0][0],
    )


def test_a_rejected_key_blocks_the_apply_and_writes_nothing(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme", api_key=KEY))
    with fake_platform({"/v1/balance": (401, 0.0)}) as server:
        _settings(ws, server.url)
        refused = ws.run("apply", "--auto-approve", "--verify-connections")
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert ADDRESS in refused.stderr and "HTTP 401" in refused.stderr
    assert "tenants/acme/stripe.yaml" in refused.stderr
    assert server.seen == [("/v1/balance", f"Bearer {KEY}")]
    assert KEY not in refused.stdout + refused.stderr
    assert _written(ws) == (0, 0)


def test_an_accepted_key_applies_and_unchanged_keys_are_not_probed_again(
    ws: Workspace,
) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme", api_key=KEY))
    with fake_platform({"/v1/balance": (200, 0.0)}) as server:
        _settings(ws, server.url, "apply:\n  verify_connections: true\n")
        applied = ws.run("apply", "--auto-approve")
        assert applied.returncode == 0, applied.stderr
        assert len(server.seen) == 1
        assert _written(ws) == (1, 1)
        # Only the sync interval changes: the stored key is not tested again.
        ws.write("acme", "stripe", stripe_manifest("acme", api_key=KEY, interval=30))
        again = ws.run("apply", "--auto-approve")
        assert again.returncode == 0, again.stderr
        assert len(server.seen) == 1


def test_the_flag_turns_the_setting_off(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme", api_key=KEY))
    with fake_platform({"/v1/balance": (401, 0.0)}) as server:
        _settings(ws, server.url, "apply:\n  verify_connections: true\n")
        applied = ws.run("apply", "--auto-approve", "--no-verify-connections")
    assert applied.returncode == 0, applied.stderr
    assert server.seen == []


def test_unreachable_warns_by_default_and_blocks_when_configured(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme", api_key=KEY))
    nowhere = f"http://127.0.0.1:{closed_port()}"
    _settings(ws, nowhere, "apply:\n  verify_connections_unreachable: block\n")
    blocked = ws.run("apply", "--auto-approve", "--verify-connections")
    assert blocked.returncode == 4, blocked.stdout + blocked.stderr
    assert "did not answer" in blocked.stderr and "network unreachable" in blocked.stderr
    assert "HTTP" not in blocked.stderr.split("did not answer", 1)[1].splitlines()[0]
    assert _written(ws) == (0, 0)

    _settings(ws, nowhere)
    warned = ws.run("apply", "--auto-approve", "--verify-connections")
    assert warned.returncode == 0, warned.stderr
    assert f"warning: connection not tested: {ADDRESS}" in warned.stderr
    assert KEY not in warned.stdout + warned.stderr
    assert _written(ws) == (1, 1)


def test_settings_are_checked(ws: Workspace, tmp_path: Path) -> None:
    (ws.root / "reconciler.yaml").write_text("apply:\n  verify_connections_unreachable: maybe\n")
    bad = ws.run("apply", "--auto-approve")
    assert bad.returncode != 0
    assert "apply.verify_connections_unreachable: must be one of warn, block" in bad.stderr
