"""Whole-file operations: encrypt, decrypt, reseal (IV stash), edit, update keys."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyrage
import pytest

from reconciler.errors import ConfigError, DecryptFailed, KeyUnavailable
from reconciler.sops import (
    EditSession,
    EncryptionRules,
    Identities,
    ValueRejected,
    decrypt_documents,
    encrypt_documents,
    encrypt_file,
    encrypted_paths,
    is_encrypted,
    read_file,
    reseal_documents,
    update_keys,
)
from reconciler.sops.files import dump_yaml, parse_text
from tests.unit.sops.helpers import IDENTITY_1, VECTORS, identities_from

PLAIN: dict[str, Any] = {
    "apiVersion": "reconciler/v1",
    "environments": {
        "production": {
            "integrations": {"API_KEY": {"api_key": "sk_live_secret", "primary": True, "n": 3}},
            "webhooks": {"billing": {"signing_secret": "whsec_x", "events": ["a", "b"]}},
        }
    },
    "note_unencrypted": "clear",
    "ratio": 2.5,
    "nothing": None,
}


def _rule(metadata: dict[str, Any]) -> EncryptionRules:
    return EncryptionRules.from_mapping(metadata, source="test")


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        (
            {},
            {
                ("apiVersion",),
                ("environments", "production", "integrations", "API_KEY", "api_key"),
                ("environments", "production", "integrations", "API_KEY", "primary"),
                ("environments", "production", "integrations", "API_KEY", "n"),
                ("environments", "production", "webhooks", "billing", "signing_secret"),
                ("environments", "production", "webhooks", "billing", "events", 0),
                ("environments", "production", "webhooks", "billing", "events", 1),
                ("ratio",),
            },
        ),
        (
            {"encrypted_regex": "^(api_key|signing_secret)$", "mac_only_encrypted": True},
            {
                ("environments", "production", "integrations", "API_KEY", "api_key"),
                ("environments", "production", "webhooks", "billing", "signing_secret"),
            },
        ),
        (
            {"encrypted_suffix": "_key"},
            {("environments", "production", "integrations", "API_KEY", "api_key")},
        ),
        ({"unencrypted_regex": "^(apiVersion|environments|ratio)$"}, {("note_unencrypted",)}),
        ({"unencrypted_suffix": "Version"}, None),
    ],
)
def test_round_trip_with_each_rule(
    metadata: dict[str, Any],
    expected: set[tuple[Any, ...]] | None,
    recipient: str,
    identities: Identities,
) -> None:
    encrypted = encrypt_documents([PLAIN], [recipient], _rule(metadata), source="f.yaml")
    assert is_encrypted(encrypted[0])
    if expected is not None:
        assert encrypted_paths(encrypted[0]) == expected
    else:
        assert encrypted[0]["apiVersion"] == "reconciler/v1"
    # Through text, as a file would go.
    reread = parse_text(dump_yaml(encrypted), "yaml", source="f.yaml")
    assert decrypt_documents(reread, identities, source="f.yaml") == [PLAIN]
    api_key = ("environments", "production", "integrations", "API_KEY", "api_key")
    in_clear = expected is not None and api_key not in expected
    assert ("sk_live_secret" in dump_yaml(encrypted)) is in_clear


def test_multidoc_json_and_several_recipients(tmp_path: Path) -> None:
    first, second = pyrage.x25519.Identity.generate(), pyrage.x25519.Identity.generate()
    recipients = [str(first.to_public()), str(second.to_public())]
    docs = [{"a": "1"}, {"b": [1, 2.0, True]}]
    encrypted = encrypt_documents(docs, recipients, source="m.yaml")
    assert encrypted[0]["sops"] is encrypted[1]["sops"]
    for identity in (first, second):
        assert decrypt_documents(encrypted, Identities.of([identity]), source="m.yaml") == docs
    as_json = json.loads(json.dumps(encrypt_documents([docs[1]], recipients[:1], source="j")[0]))
    assert decrypt_documents([as_json], Identities.of([first]), source="j.json") == [docs[1]]


def test_no_identity_is_key_unavailable_naming_file_and_recipients(recipient: str) -> None:
    encrypted = encrypt_documents([{"k": "v"}], [recipient], source="f")
    with pytest.raises(KeyUnavailable) as info:
        decrypt_documents(encrypted, Identities(), source="tenants/a/stripe.yaml")
    assert str(info.value).startswith("tenants/a/stripe.yaml: no age identity found")
    assert recipient in str(info.value)


def test_plaintext_never_appears_in_errors(recipient: str, identities: Identities) -> None:
    encrypted = encrypt_documents(
        [{"pw": "hunter2-secret", "x": {"y": "other"}}], [recipient], source="f"
    )
    moved = {**encrypted[0], "x": {"y": encrypted[0]["pw"]}}
    with pytest.raises(DecryptFailed) as info:
        decrypt_documents([moved], identities, source="f.yaml")
    assert str(info.value).startswith("f.yaml: x.y: cannot decrypt: authentication failed")
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("documents", "message"),
    [
        ([["list"]], "document 1 is not a mapping"),
        ([{"sops": {"x": 1}}], "the top-level key 'sops' is reserved"),
        ([], "no document"),
        ([{"d": object()}], "f: d: unsupported value type object"),
    ],
)
def test_content_sops_cannot_hold_is_refused(
    documents: list[Any], message: str, recipient: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        encrypt_documents(documents, [recipient], source="f")


def test_post_quantum_recipients_are_refused() -> None:
    with pytest.raises(ConfigError, match="post-quantum"):
        encrypt_documents([{"a": "b"}], ["age1pq1" + "q" * 70], source="f")


def _lines(documents: list[Any]) -> set[str]:
    return set(dump_yaml(documents).splitlines())


def test_reseal_keeps_ciphertext_and_encrypts_what_was_added(
    recipient: str, identities: Identities
) -> None:
    encrypted = encrypt_documents([PLAIN], [recipient], source="f")[0]
    unchanged = reseal_documents([encrypted], identities, source="f")
    assert not unchanged.changed
    assert unchanged.documents == [encrypted]

    edited = {**encrypted, "new_secret": "s3", "note_unencrypted": "edited"}
    resealed = reseal_documents([edited], identities, source="f")
    assert resealed.changed
    assert resealed.newly_encrypted == (("new_secret",),)
    out = resealed.documents[0]
    assert out["environments"] == encrypted["environments"]  # same ciphertext, byte for byte
    assert out["new_secret"].startswith("ENC[")
    assert out["sops"]["mac"] != encrypted["sops"]["mac"]
    assert out["sops"]["age"] == encrypted["sops"]["age"]
    expected = {**PLAIN, "note_unencrypted": "edited", "new_secret": "s3"}
    assert decrypt_documents([out], identities, source="f") == [expected]


def test_reseal_refuses_an_encrypted_value_under_another_key(
    recipient: str, identities: Identities
) -> None:
    encrypted = encrypt_documents([{"a": "1", "b": "2"}], [recipient], source="f")[0]
    swapped = {**encrypted, "a": encrypted["b"], "b": encrypted["a"]}
    with pytest.raises(DecryptFailed, match="f: a: cannot decrypt"):
        reseal_documents([swapped], identities, source="f")


def test_reseal_keeps_encrypted_list_comments() -> None:
    path = VECTORS / "generated-sops-3.11.0" / "enc" / "basic.enc.yaml"
    documents, _ = read_file(path)
    identities = identities_from(IDENTITY_1)
    edited = {**documents[0], "added": "value"}
    out = reseal_documents([edited], identities, source="basic").documents[0]
    assert out["servers"] == documents[0]["servers"]
    assert out["servers"][0].endswith("type:comment]")
    plain = decrypt_documents([out], identities, source="basic")[0]
    assert plain["servers"] == ["alpha", "beta"]
    assert plain["added"] == "value"


def test_edit_session_changes_only_the_edited_value(
    tmp_path: Path, recipient: str, identities: Identities
) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(dump_yaml(encrypt_documents([PLAIN], [recipient], source="f")))
    session = EditSession.open(path, identities)
    assert "sk_live_secret" in session.plaintext
    later = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    text = session.seal(session.plaintext.replace("whsec_x", "whsec_y"), now=later)
    before, after = (
        _lines(parse_text(path.read_text(), "yaml", source="f")),
        _lines(parse_text(text, "yaml", source="f")),
    )
    changed = {line.split(":")[0].strip() for line in after - before}
    assert changed == {"signing_secret", "lastmodified", "mac"}
    reread = parse_text(text, "yaml", source="f")
    production = decrypt_documents(reread, identities, source="f")[0]["environments"]["production"]
    assert production["webhooks"]["billing"]["signing_secret"] == "whsec_y"
    with pytest.raises(ConfigError, match="invalid YAML"):
        session.seal("a: [\n")


def test_encrypt_file_uses_the_creation_rule_and_reseals_encrypted_files(
    tmp_path: Path, recipient: str, identities: Identities
) -> None:
    (tmp_path / ".sops.yaml").write_text(
        f"creation_rules:\n  - path_regex: tenants/\n    age: {recipient}\n"
        "    encrypted_regex: ^api_key$\n"
    )
    target = tmp_path / "tenants" / "a.yaml"
    target.parent.mkdir()
    target.write_text("api_key: k\nname: acme\n")
    text = encrypt_file(target)
    assert "name: acme" in text and "api_key: ENC[" in text and "encrypted_regex: ^api_key$" in text
    target.write_text(text)
    assert encrypt_file(target, identities=identities) == text  # nothing new: unchanged
    with pytest.raises(ConfigError, match="already encrypted"):
        encrypt_file(target, recipients=recipient)
    other = tmp_path / "other.yaml"
    other.write_text("a: b\n")
    with pytest.raises(ConfigError, match=r"no creation rule matches other\.yaml"):
        encrypt_file(other)
    assert "a: ENC[" in encrypt_file(other, recipients=recipient)


def test_update_keys_rewraps_and_leaves_values(
    tmp_path: Path, identity: Any, recipient: str
) -> None:
    newcomer = pyrage.x25519.Identity.generate()
    path = tmp_path / "f.yaml"
    path.write_text(dump_yaml(encrypt_documents([PLAIN], [recipient], source="f")))
    (tmp_path / ".sops.yaml").write_text(
        f"creation_rules:\n  - age: {recipient},{newcomer.to_public()}\n"
    )
    update = update_keys(path, Identities.of([identity]))
    assert update.added == (str(newcomer.to_public()),) and update.removed == ()
    assert update.text is not None
    old, new = (
        parse_text(path.read_text(), "yaml", source="f")[0],
        parse_text(update.text, "yaml", source="f")[0],
    )
    assert {k: v for k, v in new.items() if k != "sops"} == {
        k: v for k, v in old.items() if k != "sops"
    }
    assert new["sops"]["mac"] == old["sops"]["mac"]
    assert new["sops"]["lastmodified"] == old["sops"]["lastmodified"]
    assert new["sops"]["age"][0] == old["sops"]["age"][0]
    reread = parse_text(update.text, "yaml", source="f")
    assert decrypt_documents(reread, Identities.of([newcomer]), source="f") == [PLAIN]
    path.write_text(update.text)
    assert update_keys(path, Identities.of([newcomer])).text is None  # up to date

    (tmp_path / ".sops.yaml").write_text(f"creation_rules:\n  - age: {newcomer.to_public()}\n")
    removal = update_keys(path, Identities.of([newcomer]))
    assert removal.removed == (recipient,)
    assert removal.text is not None
    with pytest.raises(KeyUnavailable):
        decrypt_documents(
            parse_text(removal.text, "yaml", source="f"), Identities.of([identity]), source="f"
        )


def test_update_keys_turns_shamir_groups_into_one_group(tmp_path: Path) -> None:
    source = VECTORS / "generated-sops-3.11.0" / "enc" / "simple.shamir-2-of-2.enc.yaml"
    path = tmp_path / "s.yaml"
    path.write_text(source.read_text())
    newcomer = pyrage.x25519.Identity.generate()
    (tmp_path / ".sops.yaml").write_text(f"creation_rules:\n  - age: {newcomer.to_public()}\n")
    both = identities_from(IDENTITY_1, "generated-sops-3.11.0/identities/test-identity-2.txt")
    update = update_keys(path, both)
    assert update.text is not None
    documents = parse_text(update.text, "yaml", source="s")
    assert "key_groups" not in documents[0]["sops"]
    plain = decrypt_documents(documents, Identities.of([newcomer]), source="s")
    assert plain == decrypt_documents(read_file(source)[0], both, source="v")


def test_a_value_that_fails_names_its_location(recipient: str, identities: Identities) -> None:
    encrypted = encrypt_documents([{"a": {"b": ["x", "secret-1"]}}], [recipient], source="f")[0]
    broken = re.sub(r",iv:[^,]*,", ",iv:AAAA,", encrypted["a"]["b"][1])
    tampered = {**encrypted, "a": {"b": [encrypted["a"]["b"][0], broken]}}
    with pytest.raises(ValueRejected) as info:
        decrypt_documents([tampered], identities, source="f.yaml")
    assert (info.value.document, info.value.location) == (0, ("a", "b", 1))
    assert str(info.value) == f"f.yaml: a.b[1]: {info.value.problem}"
    assert info.value.problem.endswith("the iv is 3 bytes; sops writes 32 (8 to 128 can be read)")


@pytest.mark.parametrize("mac", ["", None])
def test_a_file_without_a_mac_is_refused(
    recipient: str, identities: Identities, mac: str | None
) -> None:
    encrypted = encrypt_documents([{"a": "secret-1"}], [recipient], source="f")[0]
    block = {k: v for k, v in encrypted["sops"].items() if k != "mac" or mac is not None}
    if mac is not None:
        block["mac"] = mac
    with pytest.raises(DecryptFailed, match="has no MAC"):
        decrypt_documents([{**encrypted, "sops": block}], identities, source="f")


def test_an_enc_string_is_never_encrypted_as_a_plaintext(
    recipient: str, identities: Identities
) -> None:
    other = encrypt_documents([{"a": "secret-1"}], [recipient], source="f")[0]["a"]
    with pytest.raises(ConfigError, match=r"f: b: the value is already an ENC\[...\] string"):
        encrypt_documents([{"b": other}], [recipient], source="f")
    # Left in clear by the rule, it is a clear value like any other (sops does the same).
    rule = EncryptionRules.build("encrypted_regex", "^a$", source="test")
    kept = encrypt_documents([{"b": other}], [recipient], rule, source="f")[0]
    assert kept["b"] == other
    encrypted = encrypt_documents([{"a": "x"}], [recipient], source="f")[0]
    with pytest.raises(ConfigError, match="already an ENC"):
        reseal_documents([{**encrypted, "new": "ENC[garbage"}], identities, source="f")
