"""``reconciler secrets ...`` through click's CliRunner: output, files written, error exits."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pyrage
import pytest
from click.testing import CliRunner, Result

from reconciler.cli.main import cli
from reconciler.sops import Identities, decrypt_documents, read_file
from tests.unit.sops.helpers import IDENTITY_1, VECTORS

PLAIN = "db:\n    password: hunter2-secret\n    port: 5432\nname_unencrypted: acme\n"

EDITOR_SCRIPT = """
import os, pathlib, stat, sys
path = pathlib.Path(sys.argv[1])
log = pathlib.Path(os.environ["EDIT_LOG"])
calls = log.read_text().count("call") if log.exists() else 0
mode = oct(stat.S_IMODE(path.stat().st_mode)), oct(stat.S_IMODE(path.parent.stat().st_mode))
with log.open("a") as out:
    out.write(f"call {path} {mode[0]} {mode[1]}\\n")
actions = os.environ["EDIT_ACTIONS"].split(",")
action = actions[min(calls, len(actions) - 1)]
if action == "break":
    path.write_text("db: [\\n")
elif action.startswith("replace:"):
    old, new = action[len("replace:"):].split("=")
    path.write_text(path.read_text().replace(old, new))
"""


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Identities]:
    """An identity in SOPS_AGE_KEY_FILE; returns its recipient and identities."""
    identity = pyrage.x25519.Identity.generate()
    key_file = tmp_path / "keys.txt"
    key_file.write_text(f"# test key\n{identity}\n")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key_file))
    return str(identity.to_public()), Identities.of([identity])


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["secrets", *args], input=input)


def _encrypted_file(tmp_path: Path, recipient: str, name: str = "f.yaml") -> Path:
    path = tmp_path / name
    path.write_text(PLAIN)
    assert run("encrypt", "-i", "--age", recipient, str(path)).exit_code == 0
    return path


def test_keygen_prints_a_key_file() -> None:
    result = run("keygen")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("# created: ")
    assert lines[1].startswith("# public key: age1")
    assert lines[2].startswith("AGE-SECRET-KEY-1")


def test_keygen_output_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    target = tmp_path / "keys.txt"
    result = run("keygen", "-o", str(target))
    assert result.exit_code == 0
    assert result.stderr.startswith("Public key: age1")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    before = target.read_text()
    again = run("keygen", "-o", str(target))
    assert again.exit_code == 1
    assert "already exists; refusing to overwrite" in again.stderr
    assert target.read_text() == before


def test_encrypt_and_decrypt(tmp_path: Path, keys: tuple[str, Identities]) -> None:
    recipient, identities = keys
    path = tmp_path / "f.yaml"
    path.write_text(PLAIN)
    os.chmod(path, 0o640)
    printed = run("encrypt", "--age", recipient, str(path))
    assert printed.exit_code == 0
    assert "hunter2" not in printed.stdout
    assert "name_unencrypted: acme" in printed.stdout
    assert path.read_text() == PLAIN  # stdout only

    assert run("encrypt", "-i", "--age", recipient, str(path)).exit_code == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    encrypted = path.read_text()
    again = run("encrypt", "-i", str(path))  # already encrypted, nothing new: untouched
    assert again.exit_code == 0
    assert "nothing to change" in again.stderr
    assert path.read_text() == encrypted
    path.write_text(encrypted.replace("name_unencrypted: acme", "name_unencrypted: acme\nnew: v"))
    assert run("encrypt", "-i", str(path)).exit_code == 0
    assert "new: ENC[" in path.read_text()
    documents, _ = read_file(path)
    assert decrypt_documents(documents, identities, source="f")[0]["db"]["port"] == 5432

    decrypted = run("decrypt", str(path))
    assert decrypted.exit_code == 0
    assert decrypted.stdout == PLAIN + "new: v\n"
    as_json = run("decrypt", "--output-type", "json", str(path))
    assert '"password": "hunter2-secret"' in as_json.stdout
    assert run("decrypt", "--extract", '["db"]["password"]', str(path)).stdout == "hunter2-secret"
    assert run("decrypt", "--extract", '["db"]', str(path)).stdout == (
        "password: hunter2-secret\nport: 5432\n"
    )
    missing = run("decrypt", "--extract", '["db"]["nope"]', str(path))
    assert missing.exit_code == 1
    assert '["db"]["nope"] not found' in missing.stderr

    assert run("decrypt", "-i", str(path)).exit_code == 0
    assert path.read_text() == PLAIN + "new: v\n"


def test_encrypt_to_json_with_a_rule_flag(tmp_path: Path, keys: tuple[str, Identities]) -> None:
    recipient = keys[0]
    path = tmp_path / "f.yaml"
    path.write_text(PLAIN)
    result = run(
        "encrypt", "--age", recipient, "--encrypted-regex", "^password$", "--output-type", "json",
        str(path),
    )  # fmt: skip
    assert result.exit_code == 0
    assert '"port": 5432' in result.stdout
    assert '"encrypted_regex": "^password$"' in result.stdout
    both = run("encrypt", "--age", recipient, "--encrypted-regex", "a", "--encrypted-suffix", "b",
               str(path))  # fmt: skip
    assert both.exit_code == 1
    assert "give at most one of" in both.stderr


def test_encrypt_without_recipients_fails_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(PLAIN)
    result = run("encrypt", "-i", str(path))
    assert result.exit_code == 1
    assert "no recipients: pass --age or add a creation rule to .sops.yaml" in result.stderr
    assert path.read_text() == PLAIN


def test_decrypt_without_any_key(tmp_path: Path) -> None:
    path = _encrypted_file(tmp_path, str(pyrage.x25519.Identity.generate().to_public()))
    result = run("decrypt", str(path))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {path}: no age identity found")
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("vector", "message"),
    [
        ("negative/basic.tampered-unencrypted-value.enc.yaml", "MAC mismatch"),
        ("negative/simple.swapped-ciphertexts.enc.yaml", "username: cannot decrypt"),
        ("negative/simple.plaintext-injected.enc.yaml", "password: value must be encrypted"),
    ],
)
def test_decrypt_errors_exit_1_without_plaintext(
    vector: str, message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(IDENTITY_1))
    path = VECTORS / "generated-sops-3.11.0" / vector
    copy = tmp_path / path.name
    copy.write_bytes(path.read_bytes())
    result = run("decrypt", "-i", str(copy))
    assert result.exit_code == 1
    assert message in result.stderr
    assert str(copy) in result.stderr
    assert result.stdout == ""
    for secret in ("s3cr3t", "hunter2", "injected-plaintext", "admin"):
        assert secret not in result.output
    assert copy.read_bytes() == path.read_bytes()


def _editor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, actions: str) -> Path:
    script = tmp_path / "editor.py"
    script.write_text(EDITOR_SCRIPT)
    log = tmp_path / "editor.log"
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")
    monkeypatch.setenv("EDIT_LOG", str(log))
    monkeypatch.setenv("EDIT_ACTIONS", actions)
    return log


def test_edit_changes_only_the_edited_value(
    tmp_path: Path, keys: tuple[str, Identities], monkeypatch: pytest.MonkeyPatch
) -> None:
    recipient, identities = keys
    path = _encrypted_file(tmp_path, recipient)
    before = path.read_text()
    log = _editor(tmp_path, monkeypatch, "replace:5432=6543")
    result = run("edit", str(path))
    assert result.exit_code == 0, result.output
    _, temp, file_mode, dir_mode = log.read_text().split()
    assert (file_mode, dir_mode) == ("0o600", "0o700")
    assert not Path(temp).exists()
    after = path.read_text()
    changed = set(after.splitlines()) - set(before.splitlines())
    assert {line.split(":")[0].strip() for line in changed} <= {"port", "lastmodified", "mac"}
    assert any(line.strip().startswith("port:") for line in changed)
    assert decrypt_documents(read_file(path)[0], identities, source="f")[0]["db"]["port"] == 6543


def test_edit_without_changes_writes_nothing(
    tmp_path: Path, keys: tuple[str, Identities], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _encrypted_file(tmp_path, keys[0])
    before = path.read_bytes()
    _editor(tmp_path, monkeypatch, "none")
    result = run("edit", str(path))
    assert result.exit_code == 0
    assert "not changed; nothing written" in result.stderr
    assert path.read_bytes() == before


def test_edit_with_invalid_yaml_can_be_aborted_or_fixed(
    tmp_path: Path, keys: tuple[str, Identities], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _encrypted_file(tmp_path, keys[0])
    before = path.read_bytes()
    _editor(tmp_path, monkeypatch, "break")
    aborted = run("edit", str(path), input="n\n")
    assert aborted.exit_code == 1
    assert "invalid YAML" in aborted.stderr
    assert "edit aborted; nothing written" in aborted.stderr
    assert "hunter2" not in aborted.output
    assert path.read_bytes() == before

    log = _editor(tmp_path, monkeypatch, "break,replace:db: [=db: {port: 1}")
    log.unlink(missing_ok=True)
    fixed = run("edit", str(path), input="y\n")
    assert fixed.exit_code == 0, fixed.output
    assert log.read_text().count("call") == 2
    assert decrypt_documents(read_file(path)[0], keys[1], source="f") == [{"db": {"port": 1}}]


def test_updatekeys(tmp_path: Path, keys: tuple[str, Identities]) -> None:
    recipient, _ = keys
    path = _encrypted_file(tmp_path, recipient)
    newcomer = pyrage.x25519.Identity.generate()
    (tmp_path / ".sops.yaml").write_text(
        f"creation_rules:\n  - age: {recipient},{newcomer.to_public()}\n"
    )
    before = path.read_text()
    declined = run("updatekeys", str(path), input="n\n")
    assert declined.exit_code == 0
    assert f"+++ {newcomer.to_public()}" in declined.stderr
    assert "Changes not applied" in declined.stderr
    assert path.read_text() == before

    assert run("updatekeys", "-y", str(path)).exit_code == 0
    documents, _ = read_file(path)
    assert (
        decrypt_documents(documents, Identities.of([newcomer]), source="f")[0]["db"]["port"] == 5432
    )
    again = run("updatekeys", "-y", str(path))
    assert "already up to date" in again.stderr


def test_quiet_secrets_commands_say_nothing_on_stderr(
    tmp_path: Path, keys: tuple[str, Identities], monkeypatch: pytest.MonkeyPatch
) -> None:
    recipient, _ = keys
    keygen = CliRunner().invoke(cli, ["--quiet", "secrets", "keygen", "-o", str(tmp_path / "k")])
    assert keygen.exit_code == 0 and keygen.stderr == ""
    path = _encrypted_file(tmp_path, recipient)
    newcomer = pyrage.x25519.Identity.generate()
    (tmp_path / ".sops.yaml").write_text(
        f"creation_rules:\n  - age: {recipient},{newcomer.to_public()}\n"
    )
    for args in (["updatekeys", "-y", "--quiet"], ["rotate", "--quiet"]):
        result = run(*args, str(path))
        assert result.exit_code == 0, result.output
        assert result.stderr == ""
    before = path.read_bytes()
    _editor(tmp_path, monkeypatch, "none")
    unchanged = CliRunner().invoke(cli, ["--quiet", "secrets", "edit", str(path)])
    assert unchanged.exit_code == 0 and unchanged.stderr == ""
    assert path.read_bytes() == before


def test_updatekeys_over_directories_follows_each_files_own_sops_yaml(
    tmp_path: Path, keys: tuple[str, Identities]
) -> None:
    """One batch: the nearest .sops.yaml and its matching rule, per file (read once each)."""
    recipient, _ = keys
    team_a, team_b = pyrage.x25519.Identity.generate(), pyrage.x25519.Identity.generate()
    (tmp_path / ".sops.yaml").write_text(
        f"creation_rules:\n  - path_regex: ^a/\n    age: {recipient},{team_a.to_public()}\n"
        f"  - age: {recipient}\n"
    )
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / ".sops.yaml").write_text(
        f"creation_rules:\n  - age: {recipient},{team_b.to_public()}\n"
    )
    for sub in ("a", "b", "c"):
        (tmp_path / sub).mkdir(exist_ok=True)
        for name in ("x.yaml", "y.yaml"):
            _encrypted_file(tmp_path / sub, recipient, name)
    result = run("updatekeys", "-y", str(tmp_path))
    assert result.exit_code == 0, result.output
    for sub, newcomer in (("a", team_a), ("b", team_b)):
        for name in ("x.yaml", "y.yaml"):
            documents, _ = read_file(tmp_path / sub / name)
            opened = decrypt_documents(documents, Identities.of([newcomer]), source=name)
            assert opened[0]["db"]["port"] == 5432
    assert "c/x.yaml: recipients already up to date" in result.stderr.replace(
        str(tmp_path) + "/", ""
    )
