"""End-to-end: stored ciphertexts are bound to their fingerprint.

A rotated-out credential copied back into its row by SQL, ciphertexts swapped between rows,
and values in the legacy ``rcn1`` form: ``drift`` reports each (exit 2 with
``--detailed-exitcode``), ``keys rotate`` refuses what it cannot prove (one line naming the
row, never the value), and ``apply`` rewrites them from the manifests.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from reconciler.crypto.aead import RCN1, RCN2, CipherContext
from reconciler.crypto.keyring import Keyring
from tests.e2e.workspace import Workspace, stripe_manifest

V1 = "rk_live_" + "BindingCanaryFirst0123456"
V2 = "rk_live_" + "BindingCanarySecond012345"
API_KEY = "acme/stripe/production/integration/API_KEY"
MISMATCH = "stored api_key does not match its fingerprint"


def _api_key(ws: Workspace, tenant: str = "acme") -> tuple[str, str]:
    [(stored, fingerprint)] = ws.sql(
        "SELECT api_key, api_key_fingerprint FROM integration_configs WHERE tenant_id = %s",
        tenant,
    )
    return stored, fingerprint


def _set_api_key(ws: Workspace, stored: str, tenant: str = "acme") -> None:
    ws.sql("UPDATE integration_configs SET api_key = %s WHERE tenant_id = %s", stored, tenant)


def _drift(ws: Workspace) -> tuple[subprocess.CompletedProcess[str], dict[str, dict[str, Any]]]:
    text = ws.run("drift", "--detailed-exitcode")
    as_json = ws.run("drift", "--format", "json", "--quiet")
    assert as_json.returncode == 0, as_json.stderr
    changes = {c["address"]: c for c in json.loads(as_json.stdout)["changes"]}
    return text, changes


def _rotate(ws: Workspace) -> subprocess.CompletedProcess[str]:
    entry = Keyring.generate_entry(len(ws.env["RECONCILER_KEYRING"].split(",")) + 1)
    ws.env["RECONCILER_KEYRING"] = f"{ws.env['RECONCILER_KEYRING']},{entry}"
    return ws.run("keys", "rotate")


def _no_leak(result: subprocess.CompletedProcess[str], *values: str) -> None:
    for value in (V1, V2, *values):
        assert value not in result.stdout + result.stderr


def test_replayed_credential_is_reported_refused_and_healed(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme", api_key=V1))
    assert ws.run("apply", "--auto-approve").returncode == 0
    earlier, _ = _api_key(ws)
    assert earlier.startswith(RCN2)
    ws.write("acme", "stripe", stripe_manifest("acme", api_key=V2))
    assert ws.run("apply", "--auto-approve").returncode == 0
    assert ws.run("drift", "--detailed-exitcode").returncode == 0

    # The rotated-out credential's ciphertext copied back; its fingerprint column untouched.
    _set_api_key(ws, earlier)
    drift, changes = _drift(ws)
    assert drift.returncode == 2, drift.stdout + drift.stderr
    assert "api_key: (sensitive, changed)" in drift.stdout and MISMATCH in drift.stdout
    assert [f["field"] for f in changes[API_KEY]["fields"]] == ["api_key"]
    assert MISMATCH in str(changes[API_KEY]["reason"])
    _no_leak(drift, earlier)

    rotate = _rotate(ws)
    assert rotate.returncode == 1, rotate.stdout + rotate.stderr
    [error] = [line for line in rotate.stderr.splitlines() if line.startswith("Error:")]
    assert "integration_configs.api_key tenant=acme row=STRIPE/PRODUCTION/API_KEY" in error
    assert "does not match its fingerprint" in error
    _no_leak(rotate, earlier)
    assert _api_key(ws)[0] == earlier  # nothing re-encrypted

    # apply rewrites it from the manifest; then drift is clean and rotation goes through.
    healed = ws.run("apply", "--auto-approve")
    assert healed.returncode == 0, healed.stderr
    assert ws.run("drift", "--detailed-exitcode").returncode == 0
    rotate = ws.run("keys", "rotate")
    assert rotate.returncode == 0, rotate.stderr
    assert ws.run("drift", "--detailed-exitcode").returncode == 0


def test_ciphertexts_swapped_between_rows_and_columns_are_reported_and_refused(
    ws: Workspace,
) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme", api_key=V1))
    ws.write("beta", "stripe", stripe_manifest("beta", api_key=V2))
    assert ws.run("apply", "--auto-approve").returncode == 0
    acme, beta = _api_key(ws, "acme"), _api_key(ws, "beta")
    # Ciphertext and fingerprint moved together from one tenant's row to the other's.
    ws.sql(
        "UPDATE integration_configs SET api_key = %s, api_key_fingerprint = %s"
        " WHERE tenant_id = 'acme'",
        *beta,
    )
    ws.sql(
        "UPDATE integration_configs SET api_key = %s, api_key_fingerprint = %s"
        " WHERE tenant_id = 'beta'",
        *acme,
    )
    drift, changes = _drift(ws)
    assert drift.returncode == 2
    assert {API_KEY, "beta/stripe/production/integration/API_KEY"} <= changes.keys()
    rotate = _rotate(ws)
    assert rotate.returncode == 1 and "tenant=acme row=STRIPE/PRODUCTION/API_KEY" in rotate.stderr
    _no_leak(rotate)

    # A webhook's signing secret moved into the integration's api_secret column.
    assert ws.run("apply", "--auto-approve").returncode == 0
    ws.sql(
        "UPDATE integration_configs AS i SET api_secret = w.signing_secret,"
        " api_secret_fingerprint = w.signing_secret_fingerprint"
        " FROM webhook_configurations AS w WHERE i.tenant_id = 'acme' AND w.tenant_id = 'acme'"
    )
    drift, changes = _drift(ws)
    assert drift.returncode == 2
    assert "stored api_secret does not match its fingerprint" in str(changes[API_KEY]["reason"])
    rotate = _rotate(ws)
    assert rotate.returncode == 1 and "integration_configs.api_secret tenant=acme" in rotate.stderr
    assert ws.run("apply", "--auto-approve").returncode == 0
    assert ws.sql("SELECT api_secret FROM integration_configs WHERE tenant_id = 'acme'") == [
        (None,)
    ]
    assert ws.run("drift", "--detailed-exitcode").returncode == 0


def _legacy(ws: Workspace, plaintext: str) -> str:
    """What releases before rcn2 stored: AES-GCM bound to the row and column only."""
    keyring = Keyring.parse(ws.env["RECONCILER_KEYRING"], source="test")
    ctx = CipherContext.integration("acme", "STRIPE", "PRODUCTION", "API_KEY", "api_key")
    nonce = os.urandom(12)
    sealed = AESGCM(keyring.key(keyring.active_version, where="test")).encrypt(
        nonce, plaintext.encode(), ctx.aad()
    )
    return RCN1 + base64.b64encode(nonce + sealed).decode()


def test_legacy_rcn1_values_are_shown_until_upgraded_and_never_trusted_blindly(
    ws: Workspace,
) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme", api_key=V2))
    assert ws.run("apply", "--auto-approve").returncode == 0

    # A legacy value of the current credential: plan shows it; rotate upgrades it to rcn2.
    _set_api_key(ws, _legacy(ws, V2))
    drift, changes = _drift(ws)
    assert drift.returncode == 2 and "legacy rcn1" in str(changes[API_KEY]["reason"])
    rotate = ws.run("keys", "rotate")
    assert rotate.returncode == 0, rotate.stderr
    upgraded, _ = _api_key(ws)
    assert upgraded.startswith(RCN2)
    assert ws.run("drift", "--detailed-exitcode").returncode == 0

    # A legacy value of the rotated-out credential, next to the current fingerprint: shown
    # by plan, refused by rotate, healed by apply.
    _set_api_key(ws, _legacy(ws, V1))
    drift, _ = _drift(ws)
    assert drift.returncode == 2
    rotate = ws.run("keys", "rotate")
    assert rotate.returncode == 1 and "does not match its fingerprint" in rotate.stderr
    _no_leak(rotate)
    assert ws.run("apply", "--auto-approve").returncode == 0
    assert _api_key(ws)[0].startswith(RCN2)
    assert ws.run("drift", "--detailed-exitcode").returncode == 0
