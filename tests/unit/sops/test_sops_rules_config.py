"""Selection rules and ``.sops.yaml`` creation rules."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import ConfigError
from reconciler.sops import EncryptionRules, find_config, load_creation_rule
from reconciler.sops.creation_rules import relative_match_path
from tests.unit.sops.helpers import RECIPIENT_1, RECIPIENT_2


@pytest.mark.parametrize(
    ("metadata", "path", "encrypted"),
    [
        ({}, ("password",), True),
        ({}, ("public_unencrypted",), False),
        ({}, ("nested_unencrypted", "child"), False),  # an ancestor decides for its subtree
        ({"unencrypted_suffix": "_clear"}, ("a_clear", "b"), False),
        ({"encrypted_suffix": "_secret"}, ("token",), False),
        ({"encrypted_suffix": "_secret"}, ("children_secret", "x"), True),
        ({"encrypted_regex": "^(data|stringData)$"}, ("data", "api_key"), True),
        ({"encrypted_regex": "^(data|stringData)$"}, ("metadata", "name"), False),
        ({"encrypted_regex": "ata"}, ("metadata",), True),  # searched, not anchored
        ({"unencrypted_regex": "^(kind|metadata)$"}, ("metadata", "name"), False),
        ({"unencrypted_regex": "^(kind|metadata)$"}, ("stringData", "pw"), True),
    ],
)
def test_rules_test_every_path_component(
    metadata: dict[str, Any], path: tuple[str, ...], encrypted: bool
) -> None:
    assert EncryptionRules.from_mapping(metadata, source="f").should_encrypt(path) is encrypted


def test_rules_default_and_metadata_form() -> None:
    default = EncryptionRules.from_mapping({}, source="f")
    assert default.to_metadata() == {"unencrypted_suffix": "_unencrypted"}
    rules = EncryptionRules.from_mapping(
        {"encrypted_regex": "^data$", "mac_only_encrypted": True}, source="f"
    )
    assert rules.to_metadata() == {"encrypted_regex": "^data$", "mac_only_encrypted": True}


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"encrypted_regex": "a", "unencrypted_suffix": "_u"}, "only one of"),
        ({"encrypted_comment_regex": "sops:enc"}, "encrypted_comment_regex is unsupported"),
        ({"unencrypted_comment_regex": "x"}, "unencrypted_comment_regex is unsupported"),
        ({"encrypted_regex": "("}, "invalid encrypted_regex"),
        ({"mac_only_encrypted": "yes"}, "mac_only_encrypted must be true or false"),
    ],
)
def test_invalid_rules_are_refused(metadata: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EncryptionRules.from_mapping(metadata, source="f")


def _config(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ".sops.yaml"
    path.write_text(text)
    return path


def test_nearest_config_is_found_upward(tmp_path: Path) -> None:
    outer = _config(tmp_path, "creation_rules: [{age: x}]\n")
    inner = _config(tmp_path / "a", "creation_rules: [{age: x}]\n")
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    assert find_config(tmp_path / "a" / "b" / "c") == inner
    (tmp_path / "other").mkdir()
    assert find_config(tmp_path / "other") == outer


def test_first_matching_rule_wins_on_the_path_relative_to_the_config(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        f"""creation_rules:
  - path_regex: ^prod/.*\\.yaml$
    age: [{RECIPIENT_1}, {RECIPIENT_2}]
    encrypted_regex: ^(api_key|signing_secret)$
    mac_only_encrypted: true
  - path_regex: \\.yaml$
    age: "{RECIPIENT_2} , {RECIPIENT_1}"
  - age: {RECIPIENT_1}
""",
    )
    prod = load_creation_rule(tmp_path / "prod" / "x.yaml", config)
    assert prod.index == 0
    assert prod.recipients == (RECIPIENT_1, RECIPIENT_2)
    assert prod.rules.kind == "encrypted_regex"
    assert prod.rules.mac_only_encrypted
    # "^prod/" does not match "sub/prod/x.yaml": the path is relative to the config's folder.
    nested = load_creation_rule(tmp_path / "sub" / "prod" / "x.yaml", config)
    assert nested.index == 1
    assert nested.recipients == (RECIPIENT_2, RECIPIENT_1)
    assert nested.rules == EncryptionRules()
    assert load_creation_rule(tmp_path / "x.json", config).index == 2
    assert relative_match_path(tmp_path / "a" / "b.yaml", config) == "a/b.yaml"


def test_single_key_group_is_accepted(tmp_path: Path) -> None:
    config = _config(tmp_path, f"creation_rules:\n  - key_groups:\n      - age: [{RECIPIENT_1}]\n")
    assert load_creation_rule(tmp_path / "f.yaml", config).recipients == (RECIPIENT_1,)


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ("  - path_regex: nomatch\n    age: {r}\n", "no creation rule matches f.yaml"),
        ("  - age: age1pq1qqqqqqqqqqqqqqqqqqqqqqqqq\n", "post-quantum age recipients"),
        ("  - age: ssh-ed25519 AAAA\n", "only X25519 age recipients are supported"),
        ("  - pgp: ABCDEF\n    age: {r}\n", "pgp keys are not supported"),
        ("  - path_regex: '('\n    age: {r}\n", "invalid path_regex"),
        ("  - encrypted_regex: a\n    encrypted_suffix: b\n    age: {r}\n", "only one of"),
        ("  - path_regex: x\n", "no creation rule matches"),
        (
            "  - shamir_threshold: 2\n    key_groups:\n      - age: [{r}]\n      - age: [{r}]\n",
            "several key_groups (Shamir) are not supported",
        ),
    ],
)
def test_invalid_or_unmatched_rules_are_refused(tmp_path: Path, rules: str, message: str) -> None:
    config = _config(tmp_path, "creation_rules:\n" + rules.format(r=RECIPIENT_1))
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_creation_rule(tmp_path / "f.yaml", config)


def test_a_sops_config_that_is_a_link_is_refused_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "keys.txt"
    outside.write_text("AGE-SECRET-KEY-1" + "Q" * 58 + "\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".sops.yaml").symlink_to(outside)
    with pytest.raises(ConfigError, match=r"RCN-F005") as info:
        load_creation_rule(repo / "a.yaml", repo / ".sops.yaml")
    assert "AGE-SECRET" not in str(info.value)
