"""What the loader trusts in an encrypted manifest: a MAC over every ``ENC[...]`` value,
secrets that decrypt to text, and malformed values reported at their line (never a crash).

Files are encrypted by the real sops binary where the case allows, and the same files are
shown to be refused (or, where sops has no opinion, accepted) by sops itself.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.diagnostics import Diagnostic
from reconciler.load.validate import load_desired_state, secret_problem

from .conftest import AgeKey, sops_binary

CASE = Path(__file__).resolve().parents[2] / "cases" / "invalid" / "test-key-in-production"
LIVE = "rk_live_51H8abcdefghij"
API_KEY = "environments.production.integrations.API_KEY.api_key"
_ENC = re.compile(r"ENC\[AES256_GCM,[^\]]*\]")
_ZEROS = "AAAAAAAAAAAAAAAAAAAAAA=="
FAKE_ENC = f"ENC[AES256_GCM,data:c2VjcmV0,iv:{_ZEROS},tag:{_ZEROS},type:str]"
"""Well-formed but not decryptable: what the invalid-case manifests use."""


def _tree(tmp_path: Path, key: AgeKey, api_key: str = LIVE) -> tuple[Path, Path]:
    """The case's manifests with ``api_key`` set (raw YAML text), encrypted by real sops."""
    root = tmp_path / "manifests"
    shutil.copytree(CASE / "manifests", root)
    file = root / "tenants/acme/stripe.yaml"
    file.write_text(file.read_text().replace("sk_test_51H8abcdefghijklmnopqrstuv", api_key))
    key.encrypt(tmp_path, file)
    return root, file


def _line(file: Path, prefix: str) -> int:
    """1-based number of the first line that starts (after indentation) with ``prefix``."""
    lines = file.read_text().splitlines()
    return next(n for n, text in enumerate(lines, 1) if text.lstrip().startswith(prefix))


def _replace_api_key(file: Path, new: str) -> None:
    text = file.read_text()
    old = re.search(r"api_key: (ENC\[[^\]]*\])", text)
    assert old is not None
    file.write_text(text.replace(old.group(1), new, 1))


def _sops(key: AgeKey, *args: str) -> subprocess.CompletedProcess[str]:
    binary = sops_binary()
    env = {**os.environ, "SOPS_AGE_KEY": str(key.identity), "SOPS_DISABLE_VERSION_CHECK": "1"}
    env.pop("SOPS_AGE_KEY_FILE", None)
    return subprocess.run([binary, *args], env=env, capture_output=True, text=True, check=False)


def _formatted(diagnostics: Any) -> list[str]:
    return [d.format() for d in diagnostics]


# --------------------------------------------------------------------------- no MAC, no trust


@pytest.mark.parametrize(
    "mac", ["    mac: ''\n", "    mac: null\n", ""], ids=["empty", "null", "gone"]
)
def test_enc_values_without_a_mac_are_refused(tmp_path: Path, no_keys: Any, mac: str) -> None:
    key = AgeKey()
    root, file = _tree(tmp_path, key)
    file.write_text(re.sub(r"^    mac: ENC\[.*\]\n", mac, file.read_text(), flags=re.M))
    for identities in (key.identities(), no_keys):  # the file's key, and no key at all
        result = load_desired_state(root, identities=identities, fingerprint=lambda s: "fp")
        assert result.state is None
        (diag,) = result.diagnostics
        assert diag.code == "RCN-SOPS-1" and "no MAC" in diag.message, diag.format()
        assert (diag.file or "").endswith("tenants/acme/stripe.yaml")
        assert diag.line == _line(file, "mac:" if mac else "sops:")
        assert LIVE not in diag.format()
    # sops refuses the same file.
    refused = _sops(key, "decrypt", str(file))
    assert refused.returncode != 0
    assert "MAC" in refused.stderr and LIVE not in refused.stdout


def test_secrets_decrypt_refuses_a_file_without_a_mac(tmp_path: Path) -> None:
    from reconciler.errors import DecryptFailed
    from reconciler.sops import decrypt_file

    key = AgeKey()
    _, file = _tree(tmp_path, key)
    file.write_text(re.sub(r"^    mac: ENC\[.*\]\n", "    mac: ''\n", file.read_text(), flags=re.M))
    with pytest.raises(DecryptFailed, match="no MAC") as info:
        decrypt_file(file, key.identities())
    assert LIVE not in str(info.value)


def test_template_with_enc_values_and_no_mac_is_refused(tmp_path: Path, no_keys: Any) -> None:
    root = tmp_path / "manifests"
    shutil.copytree(CASE / "manifests", root)
    file = root / "tenants/acme/stripe.yaml"
    lines = file.read_text().replace("tenant: acme\n", "tenant: acme\ntemplate: base\n")
    file.write_text(
        "".join(
            line
            for line in lines.splitlines(True)
            if not line.lstrip().startswith(("api_key:", "signing_secret:"))
        )
    )
    assert "api_key" not in file.read_text()
    (root / "templates").mkdir()
    template = root / "templates/base.yaml"
    template.write_text(
        "apiVersion: reconciler/v1\nkind: PlatformTemplate\nenvironments:\n"
        "    production:\n        integrations:\n            API_KEY:\n"
        f"                api_key: {FAKE_ENC}\n"
        "        webhooks:\n            billing-events:\n"
        f"                signing_secret: {FAKE_ENC}\n"
        "sops:\n    lastmodified: '2026-11-24T00:00:00Z'\n    mac: ''\n    version: 3.11.0\n"
    )
    result = load_desired_state(root, identities=no_keys)
    (diag,) = result.diagnostics
    assert diag.code == "RCN-SOPS-1" and "no MAC" in diag.message, diag.format()
    assert (diag.file or "").endswith("templates/base.yaml")
    assert diag.line == _line(template, "mac:")
    assert result.state is None


def test_enc_value_outside_the_secret_fields_needs_sops_metadata(tmp_path: Path) -> None:
    root = tmp_path / "manifests"
    (root / "tenants/acme").mkdir(parents=True)
    file = root / "tenants/acme/stripe.yaml"
    file.write_text(
        "apiVersion: reconciler/v1\nkind: PlatformConfig\ntenant: acme\nplatform: STRIPE\n"
        "environments:\n    production:\n        integrations:\n            SETTINGS:\n"
        "                mapping_rules:\n"
        f"                    customer: {FAKE_ENC}\n"
    )
    result = load_desired_state(root, decrypt=False)
    (diag,) = result.diagnostics
    assert diag.code == "RCN-SOPS-1" and diag.line == _line(file, "customer:")
    assert diag.path == "environments.production.integrations.SETTINGS.mapping_rules.customer"
    assert result.state is None


# --------------------------------------------------------------------------- what a secret is


def test_secret_left_in_clear_by_the_rule_is_never_used_as_plaintext(tmp_path: Path) -> None:
    """An ENC value copied into a field the file's rule leaves in clear: sops prints it as
    it is (it is a clear value to sops); the loader refuses to take it for the secret."""
    key = AgeKey()
    _, donor = _tree(tmp_path / "donor", key)
    copied = _ENC.findall(donor.read_text())[0]
    root = tmp_path / "manifests"
    shutil.copytree(CASE / "manifests", root)
    file = root / "tenants/acme/stripe.yaml"
    file.write_text(file.read_text().replace("sk_test_51H8abcdefghijklmnopqrstuv", copied))
    config = tmp_path / ".sops.yaml"
    config.write_text(
        "creation_rules:\n  - encrypted_regex: '^signing_secret$'\n"
        f"    mac_only_encrypted: true\n    age: {key.recipient}\n"
    )
    assert _sops(key, "--config", str(config), "encrypt", "--in-place", str(file)).returncode == 0
    shown = _sops(key, "decrypt", str(file))
    assert shown.returncode == 0 and copied in shown.stdout  # sops: just a clear string
    result = load_desired_state(root, identities=key.identities(), fingerprint=lambda s: "fp")
    (diag,) = result.diagnostics
    assert diag.code == "RCN-SOPS-3" and diag.path == API_KEY, diag.format()
    assert "still an ENC[...] value" in diag.message
    assert diag.line == _line(file, "api_key:")
    assert result.state is None


def _relabel_api_key(file: Path, kind: str) -> None:
    """Change the ``type:`` of the api_key's ENC value (neither its tag nor the MAC covers it)."""
    text = file.read_text()
    enc = re.search(r"api_key: (ENC\[[^\]]*,type:str\])", text)
    assert enc is not None
    file.write_text(text.replace(enc.group(1), enc.group(1).replace("type:str]", f"type:{kind}]")))


def test_bytes_typed_secret_is_refused(tmp_path: Path) -> None:
    key = AgeKey()
    root, file = _tree(tmp_path, key)
    _relabel_api_key(file, "bytes")
    assert _sops(key, "decrypt", str(file)).returncode != 0  # sops 3.11 panics on it
    result = load_desired_state(root, identities=key.identities(), fingerprint=lambda s: "fp")
    (diag,) = result.diagnostics
    assert diag.code == "RCN-SOPS-3" and diag.path == API_KEY, diag.format()
    assert "type:bytes" in diag.message and diag.line == _line(file, "api_key:")
    assert LIVE not in diag.format() and "b'" not in diag.format()
    assert result.state is None


def test_relabelled_secret_type_is_refused_although_sops_accepts_it(tmp_path: Path) -> None:
    """A digits-only secret relabelled ``type:int`` keeps its MAC bytes: sops decrypts the
    file without complaint, so the loader checks the type of every secret itself."""
    key = AgeKey()
    root, file = _tree(tmp_path, key, api_key='"12345"')
    _relabel_api_key(file, "int")
    accepted = _sops(key, "decrypt", str(file))
    assert accepted.returncode == 0 and "api_key: 12345" in accepted.stdout
    result = load_desired_state(root, identities=key.identities(), fingerprint=lambda s: "fp")
    (diag,) = result.diagnostics
    assert diag.code == "RCN-SOPS-3" and diag.path == API_KEY, diag.format()
    assert "type:int" in diag.message and "12345" not in diag.format()
    assert result.state is None


def test_integer_typed_secret_is_refused(tmp_path: Path) -> None:
    """An unquoted ``0012345`` is an integer to sops (octal in Go: 5349) and is encrypted
    as ``type:int``; it must not come back as the text "5349"."""
    key = AgeKey()
    root, file = _tree(tmp_path, key, api_key="0012345")
    assert ",type:int]" in file.read_text()
    result = load_desired_state(root, identities=key.identities(), fingerprint=lambda s: "fp")
    (diag,) = result.diagnostics
    assert diag.code == "RCN-SOPS-3" and diag.path == API_KEY, diag.format()
    assert "type:int" in diag.message
    assert "5349" not in diag.format() and "12345" not in diag.format()
    assert result.state is None


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("sk_test_x", None),
        (b"sk_live_x", "type:bytes"),
        (5349, "type:int"),
        (True, "type:bool"),
        (1.5, "type:float"),
        ("ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]", "still an ENC[...]"),
        ("ENC[anything", "still an ENC[...]"),
    ],
)
def test_secret_problem(value: object, words: str | None) -> None:
    problem = secret_problem(value)
    if words is None:
        assert problem is None
    else:
        assert problem is not None and words in problem
        assert "sk_live_x" not in problem and "5349" not in problem


# --------------------------------------------------------------------------- malformed values


def test_short_iv_is_a_diagnostic_at_the_value(tmp_path: Path) -> None:
    key = AgeKey()
    root, file = _tree(tmp_path, key)
    text = file.read_text()
    enc = re.search(r"api_key: (ENC\[[^\]]*\])", text)
    assert enc is not None
    broken = re.sub(r",iv:[^,]*,", ",iv:AAAA,", enc.group(1))
    file.write_text(text.replace(enc.group(1), broken))
    result = load_desired_state(root, identities=key.identities())
    (diag,) = result.diagnostics
    assert diag.code == "RCN-SOPS-3" and diag.path == API_KEY, diag.format()
    assert "iv is 3 bytes" in diag.message and "\n" not in diag.format()
    assert diag.line == _line(file, "api_key:")
    assert _sops(key, "decrypt", str(file)).returncode != 0  # sops fails on it too


_B64 = st.binary(max_size=48).map(lambda b: base64.b64encode(b).decode())
_FIELD = st.one_of(
    _B64,
    st.text(max_size=12),
    st.sampled_from(["", "AAAA", "A", "!!", "A" * 4000, "AA==,iv:AA==", "]", "\\n"]),
)
_TYPE = st.one_of(
    st.sampled_from(["str", "int", "float", "bool", "time", "comment", "bytes", "nope", ""]),
    st.text(max_size=8),
)
_ENC_VALUES = st.one_of(
    st.builds(
        "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{}]{}".format,
        _FIELD,
        _FIELD,
        _FIELD,
        _TYPE,
        st.sampled_from(["", "]", "x", ",type:str]"]),
    ),
    st.text(max_size=60).map(lambda t: "ENC[AES256_GCM,data:" + t),
    st.text(max_size=60).map(lambda t: "ENC[" + t),
    st.integers(1, 3000).map(lambda k: "ENC[AES256_GCM,data:" + ",iv:,tag:,type:" * k + "]"),
)


@pytest.fixture(scope="module")
def encrypted_case(tmp_path_factory: pytest.TempPathFactory) -> tuple[AgeKey, Path, str]:
    key = AgeKey()
    _, file = _tree(tmp_path_factory.mktemp("fuzz"), key)
    return key, file, file.read_text()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(enc=_ENC_VALUES)
def test_any_enc_string_gives_diagnostics_never_an_exception(
    encrypted_case: tuple[AgeKey, Path, str], enc: str
) -> None:
    key, file, original = encrypted_case
    file.write_text(original)
    _replace_api_key(file, json.dumps(enc))  # a JSON string is a YAML double-quoted scalar
    root = file.parents[2]
    result = load_desired_state(root, identities=key.identities(), workers=1)
    assert result.state is None
    diags: list[Diagnostic] = list(result.diagnostics)
    assert diags
    for diag in diags:
        assert diag.code.startswith("RCN-") and "\n" not in diag.format()
        if diag.code == "RCN-SOPS-3":
            assert diag.path == API_KEY and diag.line == _line(file, "api_key:")
