"""A large warm-cache run reads the database in a forked process while it loads; the
result, the progress lines and the errors are those of reading in this process, and a
reading process that fails in any way only sends the run back to reading here."""

from __future__ import annotations

import io
import multiprocessing
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler import commands
from reconciler.commands import inputs, read_apart
from reconciler.crypto.fingerprint import Fingerprinter
from reconciler.errors import DatabaseUnavailable
from reconciler.load.cache import encode_state
from reconciler.model.actual import ActualState
from reconciler.model.desired import DesiredState
from reconciler.model.plan import Selectors
from reconciler.progress import Progress
from reconciler.settings import load_settings
from reconciler.store.read import ActualObjects, RowBatch
from reconciler.store.session import Database, open_database
from reconciler.store.visibility import Access
from tests.e2e.workspace import Workspace, stripe_manifest

TENANTS = ("acme", "globex", "initech")


class Reads:
    """Which way each read of a run went."""

    def __init__(self) -> None:
        self.apart: list[read_apart.ReadApart | None] = []
        self.here: int = 0


@pytest.fixture
def reads(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Iterator[Reads]:
    """Three tenants applied and their manifests cached; three tenants count as a large
    run. Yields what each later read did."""
    for tenant in TENANTS:
        ws.write(tenant, "stripe", stripe_manifest(tenant))
    ws.enter(monkeypatch)
    monkeypatch.setenv("RECONCILER_WORKERS", "2")
    commands.apply(manifests_dir=Path("manifests"), settings=load_settings())  # fills the cache
    monkeypatch.setattr(inputs, "READ_APART_MIN_TENANTS", 3)
    seen = Reads()
    start, here = read_apart.ReadApart.start, inputs._read_snapshot

    def started(*args: object) -> read_apart.ReadApart | None:
        seen.apart.append(start(*args))  # type: ignore[arg-type]
        return seen.apart[-1]

    def counted(*args: object) -> ActualState:
        seen.here += 1
        return here(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(read_apart.ReadApart, "start", started)
    monkeypatch.setattr(inputs, "_read_snapshot", counted)
    yield seen
    assert not multiprocessing.active_children()  # every reading process was waited for


def _plan() -> tuple[commands.PlanResult, list[str]]:
    stderr = io.StringIO()
    result = commands.plan(
        manifests_dir=Path("manifests"), settings=load_settings(), progress=Progress(stderr)
    )
    return result, stderr.getvalue().splitlines()


def test_plan_reads_in_a_process_of_its_own(reads: Reads) -> None:
    result, lines = _plan()
    assert len(reads.apart) == 1 and reads.apart[0] is not None
    assert reads.here == 0
    assert not result.plan.changes  # the same state as reading here gives
    assert any(line.startswith("Reading database... 6 rows (") for line in lines)


def test_a_warm_plan_settles_what_is_stored_and_still_returns_the_whole_desired_state(
    reads: Reads, monkeypatch: pytest.MonkeyPatch
) -> None:
    warm, _ = _plan()
    settled = warm.settled.integrations + warm.settled.webhooks
    assert not warm.made.integrations and not warm.made.webhooks  # no desired object made
    assert len(settled) == len(warm.desired.integrations) + len(warm.desired.webhooks) > 0
    monkeypatch.setenv("RECONCILER_CACHE", "0")
    cold, _ = _plan()
    assert not cold.settled.integrations and not cold.settled.webhooks
    assert _encoded(warm.desired) == _encoded(cold.desired)


def _encoded(state: DesiredState) -> list[str]:
    """Every object of ``state``, secrets as fingerprints, in one order."""
    return sorted(repr(row) for rows in encode_state(state) for row in rows)


def test_apply_reads_apart_and_replans_under_the_lock(reads: Reads, ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme", interval=45))
    result = commands.apply(manifests_dir=Path("manifests"), settings=load_settings())
    assert reads.apart and reads.apart[0] is not None
    assert result.plan.changes
    assert all(c.address.tenant == "acme" for c in result.plan.changes)
    assert not _plan()[0].plan.changes


def test_a_doubted_ciphertext_is_reported_through_the_process(reads: Reads, ws: Workspace) -> None:
    [(stored,)] = ws.sql("SELECT api_key FROM integration_configs WHERE tenant_id = 'globex'")
    ws.sql("UPDATE integration_configs SET api_key = %s WHERE tenant_id = 'acme'", stored)
    result, _ = _plan()
    assert reads.apart[0] is not None and reads.here == 0
    [change] = result.plan.changes
    assert change.address.tenant == "acme"
    assert [f.field for f in change.fields] == ["api_key"]


_BUFFERED_THEN_PLAN = """
import sys
from pathlib import Path
from reconciler import commands
from reconciler.commands import inputs, read_apart
from reconciler.settings import load_settings
inputs.READ_APART_MIN_TENANTS = 3
started, real = [], read_apart.ReadApart.start
def start(*args):
    started.append(real(*args))
    return started[-1]
read_apart.ReadApart.start = staticmethod(start)
sys.stdout.write("written before the fork;")  # a pipe's stdout is block-buffered: still held
result = commands.plan(manifests_dir=Path("manifests"), settings=load_settings())
sys.stdout.write(f" apart: {started[0] is not None}, changes: {len(result.plan.changes)}")
"""


def test_output_buffered_before_the_fork_is_written_once(reads: Reads, ws: Workspace) -> None:
    env = {**ws.env, "RECONCILER_WORKERS": "2"}
    env["RECONCILER_CACHE_DIR"] = os.environ["RECONCILER_CACHE_DIR"]  # the one apply filled
    done = subprocess.run(
        [sys.executable, "-c", _BUFFERED_THEN_PLAN],
        cwd=ws.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "written before the fork; apart: True, changes: 0"


@pytest.mark.parametrize("how", ["raises", "dies"])
def test_a_failed_process_sends_the_run_back_to_reading_here(
    reads: Reads, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    parent, real = os.getpid(), inputs.read_snapshot_batches

    def failing(*args: object, **kwargs: object) -> None:
        if os.getpid() != parent:  # only in the forked process
            if how == "dies":
                os._exit(3)
            raise DatabaseUnavailable("connection lost")
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(inputs, "read_snapshot_batches", failing)
    result, lines = _plan()
    assert reads.apart[0] is not None
    assert reads.here == 1
    assert not result.plan.changes
    assert sum(line.startswith("Reading database...") for line in lines) == 2
    assert not any("lost" in line for line in lines)


def test_an_error_is_raised_by_the_read_here(reads: Reads, monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable(*args: object, **kwargs: object) -> None:
        raise DatabaseUnavailable("database went away")

    monkeypatch.setattr(inputs, "read_snapshot_batches", unavailable)
    with pytest.raises(DatabaseUnavailable, match="went away"):
        _plan()
    assert reads.apart[0] is not None and reads.here == 1


def test_interrupt_stops_the_process(
    reads: Reads, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    def slow(*args: object, **kwargs: object) -> None:
        time.sleep(60)  # the forked process is stopped long before
        raise AssertionError

    monkeypatch.setattr(inputs, "read_snapshot_batches", slow)
    with (
        open_database(ws.database_url) as db,
        pytest.raises(KeyboardInterrupt),
        inputs.ReadWhileLoading(db, commands.ALL, inputs.fingerprinter_for(db.target)) as reading,
    ):
        reading.start_apart(Path("manifests"))
        assert reads.apart[0] is not None
        raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("case", "selectors"),
    [
        ("few tenants named", Selectors(tenants=("acme", "globex"))),
        ("cache off", commands.ALL),
        ("one process", commands.ALL),
        ("small fleet", commands.ALL),
    ],
)
def test_not_started_when_the_run_reads_better_here(
    reads: Reads, monkeypatch: pytest.MonkeyPatch, case: str, selectors: Selectors
) -> None:
    if case == "cache off":
        monkeypatch.setenv("RECONCILER_CACHE", "0")
    if case == "one process":
        monkeypatch.setenv("RECONCILER_WORKERS", "1")
    if case == "small fleet":
        monkeypatch.setattr(inputs, "READ_APART_MIN_TENANTS", 4)
    result = commands.plan(
        manifests_dir=Path("manifests"), settings=load_settings(), selectors=selectors
    )
    assert not result.plan.changes
    assert reads.apart == [] and reads.here == 1


def test_a_cache_that_cannot_be_looked_at_reads_here(
    reads: Reads, monkeypatch: pytest.MonkeyPatch
) -> None:
    is_file = Path.is_file

    def unreadable(path: Path) -> bool:
        if path.name.startswith("manifests-") and path.suffix == ".cache":
            raise PermissionError(13, "Permission denied", str(path))
        return is_file(path)

    monkeypatch.setattr(Path, "is_file", unreadable)
    result, _ = _plan()
    assert not result.plan.changes
    assert reads.apart == [] and reads.here == 1


def test_rows_travel_as_plain_values(reads: Reads, ws: Workspace) -> None:
    batches: list[RowBatch] = []
    with open_database(ws.database_url) as db:
        fingerprint = inputs.fingerprinter_for(db.target)
        inputs.read_snapshot_batches(db, commands.ALL, fingerprint, Access.READ, batches.append)
        direct = inputs._read_snapshot(db, commands.ALL, fingerprint, Access.READ, lambda _: None)
    assert [b.table for b in batches] == [0, 1]  # integrations, webhooks; no tokens
    objects = ActualObjects()
    for batch in batches:
        for row in batch.rows:
            assert not any(isinstance(v, str) and v.startswith("rcn") for v in row)  # no ciphertext
        objects.add(pickle.loads(pickle.dumps(batch)))
    assert len(objects) == 6
    assert objects.state() == direct


@pytest.mark.parametrize("how", ["dies after one batch", "sends something else"])
def test_a_partial_or_odd_stream_is_not_used(
    reads: Reads, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    def odd(
        db: Database, selectors: Selectors, fp: Fingerprinter, access: Access, out: Any
    ) -> None:
        db.engine.dispose(close=False)

        def first(batch: RowBatch) -> None:
            if how == "dies after one batch":
                out.send_bytes(pickle.dumps(batch))
                os._exit(3)
            out.send_bytes(pickle.dumps({"rows": batch.rows}))
            out.send_bytes(b"")
            os._exit(0)

        inputs.read_snapshot_batches(db, selectors, fp, access, first)

    monkeypatch.setattr(read_apart, "_read_and_send", odd)
    result, lines = _plan()
    assert reads.apart[0] is not None and reads.here == 1
    assert not result.plan.changes  # every row, read here: nothing it was sent is kept
    assert "Reading database... the reading process failed; reading here (" in "\n".join(lines)
