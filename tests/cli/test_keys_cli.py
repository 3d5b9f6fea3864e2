"""``reconciler keys status | rotate | generate`` through click's CliRunner."""

from __future__ import annotations

import base64
import os

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from reconciler.cli.main import cli
from reconciler.crypto.fingerprint import FINGERPRINT_KEY_ENV
from reconciler.crypto.keyring import KEYRING_ENV, Keyring
from tests.integration.test_rotate import FINGERPRINT_KEY, cipher_of, seed


@pytest.fixture
def keyring_entries() -> tuple[str, str]:
    return Keyring.generate_entry(1), Keyring.generate_entry(2)


def _env(database_url: str, keyring: str) -> dict[str, str]:
    return {
        "RECONCILER_DATABASE_URL": database_url,
        KEYRING_ENV: keyring,
        FINGERPRINT_KEY_ENV: base64.b64encode(FINGERPRINT_KEY).decode(),
        "RECONCILER_AUDIT_KEY": base64.b64encode(os.urandom(32)).decode(),
        "RECONCILER_ACTOR": "key-admin",
    }


def test_status_then_rotate_then_status(
    database_url: str, engine: sa.Engine, keyring_entries: tuple[str, str]
) -> None:
    old, new = keyring_entries
    seed(engine, cipher_of(Keyring.parse(old, source="test")))
    runner = CliRunner()
    both = f"{old},{new}"

    status = runner.invoke(cli, ["keys", "status"], env=_env(database_url, both))
    assert status.exit_code == 0, status.output
    lines = status.output.splitlines()
    assert "keyring: versions 1, 2; active (encrypts): 2" in lines
    assert any(
        line.split() == ["integration_configs", "1", "6", "needs", "rotation"] for line in lines
    )
    assert any(line.split() == ["oauth_tokens", "1", "2", "needs", "rotation"] for line in lines)
    assert "10 row(s) not under the active key" in status.output
    for secret in (old.split(":")[1], new.split(":")[1]):
        assert secret not in status.output

    rotate = runner.invoke(
        cli, ["keys", "rotate", "--batch-size", "4"], env=_env(database_url, both)
    )
    assert rotate.exit_code == 0, rotate.output
    assert "Re-encrypted 10 row(s) under key version 2 in 4 batch(es)" in rotate.output
    assert "integration_configs: 4 row(s) re-encrypted (4/10)" in rotate.output

    status = runner.invoke(cli, ["keys", "status"], env=_env(database_url, both))
    assert any(
        line.split() == ["webhook_configurations", "2", "2", "active"]
        for line in status.output.splitlines()
    )
    assert "Every stored secret is under the active key." in status.output

    again = runner.invoke(cli, ["keys", "rotate"], env=_env(database_url, both))
    assert again.exit_code == 0 and "Re-encrypted 0 row(s)" in again.output
    with engine.connect() as conn:
        performers = (
            conn.execute(sa.text("SELECT DISTINCT performed_by FROM configuration_audit_logs"))
            .scalars()
            .all()
        )
    assert performers == ["key-admin"]


def test_status_flags_versions_missing_from_keyring(
    database_url: str, engine: sa.Engine, keyring_entries: tuple[str, str]
) -> None:
    old, new = keyring_entries
    seed(engine, cipher_of(Keyring.parse(old, source="test")))
    result = CliRunner().invoke(cli, ["keys", "status"], env=_env(database_url, new))
    assert result.exit_code == 0
    assert any(
        line.split() == ["integration_configs", "1", "6", "NOT", "IN", "KEYRING"]
        for line in result.output.splitlines()
    )
    rotate = CliRunner().invoke(cli, ["keys", "rotate"], env=_env(database_url, new))
    assert rotate.exit_code == 1
    assert "key version 1, which is not in the keyring" in rotate.output


def test_external_database_without_keys_names_the_variables(database_url: str) -> None:
    result = CliRunner().invoke(
        cli, ["keys", "rotate"], env={"RECONCILER_DATABASE_URL": database_url, KEYRING_ENV: ""}
    )
    assert result.exit_code == 1
    assert KEYRING_ENV in result.output and FINGERPRINT_KEY_ENV in result.output


def test_generate() -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["keys", "generate"], env={KEYRING_ENV: ""})
    assert first.exit_code == 0
    entry = first.stdout.strip()
    assert entry.startswith("1:") and Keyring.parse(entry, source="out").versions == (1,)
    nxt = runner.invoke(cli, ["keys", "generate"], env={KEYRING_ENV: entry})
    assert nxt.stdout.startswith("2:")
    fixed = runner.invoke(cli, ["keys", "generate", "--version", "7"])
    assert fixed.stdout.startswith("7:")
    fp = runner.invoke(cli, ["keys", "generate", "--fingerprint-key"])
    assert len(base64.b64decode(fp.stdout.strip())) == 32


def test_generate_refuses_versions_the_database_cannot_store() -> None:
    runner = CliRunner()
    too_high = runner.invoke(cli, ["keys", "generate", "--version", "2147483648"])
    assert too_high.exit_code == 1
    assert too_high.output.strip().splitlines()[-1] == (
        "Error: the new key has version 2147483648, above 2147483647, the highest the database "
        "can store"
    )
    newest = "2147483647:" + base64.b64encode(os.urandom(32)).decode()
    after_newest = runner.invoke(cli, ["keys", "generate"], env={KEYRING_ENV: newest})
    assert after_newest.exit_code == 1
    assert "above 2147483647" in after_newest.output
    assert newest.split(":")[1] not in after_newest.output


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_rotate_prints_the_result_but_no_progress(
    database_url: str, engine: sa.Engine, keyring_entries: tuple[str, str], where: str
) -> None:
    old, new = keyring_entries
    seed(engine, cipher_of(Keyring.parse(old, source="test")))
    args = ["keys", "rotate", "--batch-size", "4"]
    args = ["--quiet", *args] if where == "before" else [*args, "--quiet"]
    result = CliRunner().invoke(cli, args, env=_env(database_url, f"{old},{new}"))
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 10 row(s) under key version 2" in result.stdout
    assert result.stderr == ""


def test_quiet_generate_prints_only_the_entry() -> None:
    result = CliRunner().invoke(cli, ["keys", "generate", "--quiet"], env={KEYRING_ENV: ""})
    assert result.exit_code == 0
    assert result.stdout.startswith("1:") and result.stderr == ""
