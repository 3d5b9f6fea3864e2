"""A large load's workers parse and decrypt while the database is read in a thread; the
result, the progress lines and the errors are those of reading after the load."""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler import commands
from reconciler.commands import inputs
from reconciler.crypto.fingerprint import Fingerprinter
from reconciler.errors import DatabaseUnavailable, ManifestInvalid
from reconciler.load import pool
from reconciler.model.actual import ActualState
from reconciler.progress import Progress
from reconciler.settings import load_settings
from reconciler.store.database import create_engine, resolve_database_url
from reconciler.store.session import Database, open_database
from reconciler.store.visibility import Access
from tests.e2e.workspace import Workspace, stripe_manifest

TENANTS = ("acme", "globex", "initech")


def _reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "reconciler-read"]


@pytest.fixture
def forked(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Three tenants applied, loads forked into two workers however few the files; returns
    the names of the threads each read of the actual state ran in."""
    for tenant in TENANTS:
        ws.write(tenant, "stripe", stripe_manifest(tenant))
    ws.enter(monkeypatch)
    commands.apply(manifests_dir=Path("manifests"), settings=load_settings())
    monkeypatch.setattr(pool, "PARALLEL_MIN_FILES", 1)
    monkeypatch.setenv(pool.WORKERS_ENV, "2")
    monkeypatch.setenv("RECONCILER_CACHE", "0")  # every file loaded, by the workers
    readers: list[str] = []
    real = inputs._read_snapshot

    def recorded(*args: object) -> ActualState:
        readers.append(threading.current_thread().name)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(inputs, "_read_snapshot", recorded)
    return readers


def test_plan_reads_while_workers_load(forked: list[str]) -> None:
    stderr = io.StringIO()
    result = commands.plan(
        manifests_dir=Path("manifests"), settings=load_settings(), progress=Progress(stderr)
    )
    assert forked == ["reconciler-read"]
    assert not result.plan.changes  # the same state as the sequential read gives
    lines = stderr.getvalue().splitlines()
    loading = next(i for i, line in enumerate(lines) if line.startswith("Loading manifests..."))
    reading = next(i for i, line in enumerate(lines) if line.startswith("Reading database..."))
    assert loading < reading
    assert lines[reading].startswith("Reading database... 6 rows (")  # integration + webhook
    assert not _reader_threads()


def test_apply_reads_while_workers_load_and_replans_under_the_lock(
    forked: list[str], ws: Workspace
) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme", interval=45))
    result = commands.apply(manifests_dir=Path("manifests"), settings=load_settings())
    assert forked == ["reconciler-read"]
    assert result.plan.changes
    assert all(c.address.tenant == "acme" for c in result.plan.changes)
    assert not commands.plan(manifests_dir=Path("manifests"), settings=load_settings()).plan.changes
    assert not _reader_threads()


def test_manifest_error_drops_the_read(
    forked: list[str], ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = ws.root / "manifests" / "tenants" / "globex" / "stripe.yaml"
    broken.write_text("tenant: [globex\n")
    failing: Callable[..., ActualState] = inputs._read_snapshot

    def noisy(*args: object) -> ActualState:
        failing(*args)
        raise DatabaseUnavailable("database noise")

    monkeypatch.setattr(inputs, "_read_snapshot", noisy)
    stderr = io.StringIO()
    before = ws.snapshot()
    with pytest.raises(ManifestInvalid):
        commands.plan(
            manifests_dir=Path("manifests"), settings=load_settings(), progress=Progress(stderr)
        )
    assert forked == ["reconciler-read"]  # it ran, and what it raised is not reported
    assert "Reading database" not in stderr.getvalue()
    assert "noise" not in stderr.getvalue()
    assert ws.snapshot() == before
    assert not _reader_threads()


def test_interrupt_stops_and_joins_the_reader(database_url: str) -> None:
    with (
        open_database(database_url) as db,
        pytest.raises(KeyboardInterrupt),
        inputs.ReadWhileLoading(db, commands.ALL, _fingerprinter(db)) as reading,
    ):
        reading.start()
        raise KeyboardInterrupt
    assert not _reader_threads()


def test_reader_errors_are_translated_in_the_caller(database_url: str) -> None:
    good = resolve_database_url(database_url)
    target = resolve_database_url("postgresql://nobody@127.0.0.1:1/none")
    db = Database(target, create_engine(target))
    stderr = io.StringIO()
    with db, inputs.ReadWhileLoading(db, commands.ALL, _fingerprinter(db), Access.APPLY) as r:
        r.start()
        with pytest.raises(DatabaseUnavailable):
            r.result(Progress(stderr))
    assert "Reading database... failed" in stderr.getvalue()
    assert good.url != target.url
    assert not _reader_threads()


def _fingerprinter(db: Database) -> Fingerprinter:
    key = base64.b64encode(b"f" * 32).decode()
    return inputs.fingerprinter_for(db.target, {"RECONCILER_FINGERPRINT_KEY": key})
