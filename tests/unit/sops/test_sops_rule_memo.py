"""The walk remembers which keys match a rule: per rule, never across rules."""

from __future__ import annotations

from reconciler.sops import tree
from reconciler.sops.encryption_rules import EncryptionRules


def test_remembered_answers_are_per_rule() -> None:
    rules = [
        EncryptionRules.build("encrypted_regex", "^pass", source="a"),
        EncryptionRules.build("encrypted_regex", "word$", source="b"),
        EncryptionRules.build("unencrypted_suffix", "word", source="c"),
        EncryptionRules.build("encrypted_suffix", "_secret", source="d"),
    ]
    keys = ["password", "passphrase", "keyword", "user", "api_secret", "word"]
    for _ in range(2):  # the second round answers from memory
        for rule in rules:
            matches = tree._memoized(rule)
            assert [matches(k) for k in keys] == [rule.matches(k) for k in keys]


def test_memory_is_bounded() -> None:
    rule = EncryptionRules.build("encrypted_regex", "^k1", source="a")
    matches = tree._memoized(rule)
    keys = [f"k{i}" for i in range(tree._MATCHED_LIMIT + 100)]
    assert [matches(k) for k in keys] == [rule.matches(k) for k in keys]
    assert len(tree._MATCHED[(rule.kind, rule.value)]) <= tree._MATCHED_LIMIT
