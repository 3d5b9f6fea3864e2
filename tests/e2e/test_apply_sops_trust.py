"""``apply`` never writes a secret it could not authenticate and read as text: a file
without a MAC, a relabelled SOPS type and a malformed value all stop it, with one line and
nothing written."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.e2e.workspace import Workspace, stripe_manifest

API_KEY = "rk_live_" + "A1b2C3d4E5f6G7h8J9k0L1m2"


def _empty_mac(text: str) -> str:
    return re.sub(r"^    mac: ENC\[.*\]$", "    mac: ''", text, flags=re.M)


def _bytes_type(text: str) -> str:
    enc = re.search(r"api_key: (ENC\[[^\]]*),type:str\]", text)
    assert enc is not None
    return text.replace(enc.group(0), f"api_key: {enc.group(1)},type:bytes]")


def _short_iv(text: str) -> str:
    enc = re.search(r"api_key: (ENC\[[^\]]*\])", text)
    assert enc is not None
    return text.replace(enc.group(1), re.sub(r",iv:[^,]*,", ",iv:AAAA,", enc.group(1)))


@pytest.mark.parametrize(
    ("tamper", "code", "words"),
    [
        (_empty_mac, "RCN-SOPS-1", "no MAC"),
        (_bytes_type, "RCN-SOPS-3", "type:bytes"),
        (_short_iv, "RCN-SOPS-3", "iv is 3 bytes"),
    ],
    ids=["no-mac", "bytes-type", "short-iv"],
)
def test_apply_refuses_what_it_cannot_trust(
    ws: Workspace, tamper: Callable[[str], str], code: str, words: str
) -> None:
    # No webhook: its signing secret would fail a Stripe rule of its own and hide the point.
    path = ws.write("acme", "stripe", stripe_manifest("acme", api_key=API_KEY, webhooks={}))
    path.write_text(tamper(path.read_text()))
    result = ws.run("apply", "--auto-approve")
    assert result.returncode == 1
    assert code in result.stderr and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and API_KEY not in result.stderr + result.stdout
    assert ws.sql("SELECT count(*) FROM integration_configs") == [(0,)]
    assert ws.sql("SELECT count(*) FROM webhook_configurations") == [(0,)]
