"""Rewriting SOPS files by patching their text: what is kept, and the fallbacks that keep
every result correct when a layout cannot be kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.sops import EditSession, Identities, decrypt_file, encrypt_file, rotate_file
from reconciler.sops.roundtrip import block_regions
from reconciler.yaml_source import parse_documents


def _encrypt(tmp_path: Path, text: str, recipient: str, name: str = "f.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.write_text(encrypt_file(path, recipients=recipient))
    return path


def test_block_regions() -> None:
    text = "a: 1\nsops:\n    x: 1\n\n    y: |\n        z\n\n\nb: 2\n"
    assert [text[s:e] for s, e in block_regions(text)] == [
        "sops:\n    x: 1\n\n    y: |\n        z\n"
    ]
    assert block_regions("a:\n  sops: 1\n") == []
    assert [("x\nsops:\n  k: v")[s:e] for s, e in block_regions("x\nsops:\n  k: v")] == [
        "sops:\n  k: v"
    ]


def test_comments_and_flow_values_are_kept_when_encrypting(
    tmp_path: Path, recipient: str, identities: Identities
) -> None:
    text = "# head\nsecret: s3cret  # why\nlist: [1, two]   # flow kept\nn: 1\n"
    path = _encrypt(tmp_path, text, recipient)
    out = path.read_text()
    assert out.startswith("# head\nsecret: ENC[")
    assert '  # why\nlist: ["ENC[' in out and "# flow kept" in out
    assert decrypt_file(path, identities).documents == parse_documents(text)


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\n---\nb: secret\n",  # several documents
        "base: &x secret\ncopy: *x\n",  # an alias: one value in the text, two in the result
    ],
)
def test_layouts_that_cannot_be_kept_are_serialized_and_stay_correct(
    text: str, tmp_path: Path, recipient: str, identities: Identities
) -> None:
    path = _encrypt(tmp_path, text, recipient)
    assert decrypt_file(path, identities).documents == parse_documents(text)
    path.write_text(rotate_file(path, identities))
    assert decrypt_file(path, identities).documents == parse_documents(text)


def test_edit_view_keeps_comments_and_shows_multiline_values_as_blocks(
    tmp_path: Path, recipient: str, identities: Identities
) -> None:
    text = "# modeline\nkey: |\n    line 1\n    line 2\nflow: {pw: 'a: b'}  # c\n"
    path = _encrypt(tmp_path, text, recipient)
    session = EditSession.open(path, identities)
    assert (
        session.plaintext == '# modeline\nkey: |\n    line 1\n    line 2\nflow: {pw: "a: b"}  # c\n'
    )
    sealed = session.seal(session.plaintext.replace("line 2", "line two"))
    path.write_text(sealed)
    assert sealed.startswith("# modeline\nkey: ENC[")
    assert decrypt_file(path, identities).documents == [
        {"key": "line 1\nline two\n", "flow": {"pw": "a: b"}}
    ]


def test_rotate_changes_only_ciphertexts_and_the_block(
    tmp_path: Path, recipient: str, identities: Identities
) -> None:
    text = "# c1\na:\n  - x: secret   # c2\n    y: 2\n"
    path = _encrypt(tmp_path, text, recipient)
    before = path.read_text()
    after = rotate_file(path, identities)
    old_lines, new_lines = before.split("\nsops:")[0].splitlines(), after.split("\nsops:")[0]
    assert [line for line in old_lines if "ENC[" not in line] == [
        line for line in new_lines.splitlines() if "ENC[" not in line
    ]
    assert "ENC[" in new_lines and not set(before.split()) & {
        t for t in new_lines.split() if t.startswith("ENC[")
    }
