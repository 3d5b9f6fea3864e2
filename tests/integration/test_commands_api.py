"""The administrative verbs through the Python API (``reconciler.commands``), without click.

Scripts call these functions directly; each returns a frozen result and prints nothing.
"""

from __future__ import annotations

import base64
import dataclasses
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from reconciler import commands
from reconciler.crypto.fingerprint import FINGERPRINT_KEY_ENV
from reconciler.crypto.keyring import KEYRING_ENV, Keyring
from reconciler.errors import ConfigError
from reconciler.model.enums import Platform
from tests.integration.test_rotate import FINGERPRINT_KEY, cipher_of, seed


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch, database_url: str) -> tuple[str, str]:
    old, new = Keyring.generate_entry(1), Keyring.generate_entry(2)
    monkeypatch.setenv(KEYRING_ENV, f"{old},{new}")
    monkeypatch.setenv(FINGERPRINT_KEY_ENV, base64.b64encode(FINGERPRINT_KEY).decode())
    monkeypatch.setenv("RECONCILER_AUDIT_KEY", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("RECONCILER_ACTOR", "api-script")
    return old, new


def test_keys_and_audit_verbs_return_frozen_results(
    database_url: str,
    engine: sa.Engine,
    keys: tuple[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old, _ = keys
    seed(engine, cipher_of(Keyring.parse(old, source="test")))

    status = commands.key_status(database_url=database_url)
    assert status.versions == (1, 2) and status.active_version == 2
    assert status.stale_rows == 10 and status.tables[0] == "integration_configs"

    rotation = commands.rotate_keys(batch_size=4, database_url=database_url)
    assert (rotation.total, rotation.batches, rotation.remaining) == (10, 4, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rotation.batches = 0  # type: ignore[misc]
    assert commands.key_status(database_url=database_url).stale_rows == 0

    rows = commands.list_audit(database_url=database_url, limit=100)
    assert len(rows) == 10 and {r.performed_by for r in rows} == {"api-script"}
    assert commands.pending_reviews(database_url=database_url) == []

    checkpoint = tmp_path / "audit.json"
    written = commands.audit_checkpoint(out=checkpoint, database_url=database_url)
    assert written.tenants == 2 and checkpoint.read_text() == written.text
    verification = commands.verify_audit(checkpoint=checkpoint, database_url=database_url)
    assert verification.verified and verification.gaps == ()
    assert verification.report.keyed_rows == 10

    # The API prints nothing: rendering is the command line's business.
    assert capsys.readouterr() == ("", "")


def test_verify_without_the_audit_key_reports_a_gap_unless_accepted(
    database_url: str, engine: sa.Engine, keys: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(engine, cipher_of(Keyring.parse(keys[0], source="test")))
    commands.rotate_keys(database_url=database_url)
    monkeypatch.delenv("RECONCILER_AUDIT_KEY")
    strict = commands.verify_audit(database_url=database_url)
    assert strict.intact and not strict.verified and len(strict.gaps) == 1
    assert commands.verify_audit(database_url=database_url, without_key=True).verified
    with pytest.raises(ConfigError, match="no checkpoint written"):
        commands.audit_checkpoint(database_url=database_url)


def test_db_and_report_verbs(database_url: str) -> None:
    revision = commands.current(database_url=database_url)
    assert revision.current and revision.revision == revision.head
    change = commands.upgrade(database_url=database_url)
    assert not change.changed
    assert "CREATE TABLE" in commands.migration_sql().text
    with pytest.raises(ConfigError, match="needs --rollback"):
        commands.migration_sql(discard_audit_history=True)
    report = commands.health_report(platforms=(Platform.STRIPE,), database_url=database_url)
    assert list(report.counts) == [Platform.STRIPE] and not report.needs_attention
    assert commands.circuit_report(database_url=database_url).circuits == ()


def test_generate_key_keeps_the_value_out_of_its_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEYRING_ENV, Keyring.generate_entry(3))
    entry = commands.generate_key()
    assert entry.version == 4 and entry.value.startswith("4:")
    assert entry.value.split(":")[1] not in repr(entry)
    fingerprint = commands.generate_key(fingerprint_key=True)
    assert fingerprint.version is None and len(base64.b64decode(fingerprint.value)) >= 32
