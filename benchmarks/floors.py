"""What the hardware allows: the floors the fleet benchmark compares each stage with.

A floor is the cost of the unavoidable work of a stage, measured on the same files and rows
in the same run, with nothing of the reconciler in the way:

- **reading manifests**: raw reads, YAML parsing (PyYAML's C loader, and the fastest other
  parser installed: ``yaml_rs`` when present), unwrapping each file's data key with age, and
  AES-GCM of every ``ENC[...]`` value (the sops MAC included). Measured on one core, then
  again with every core taking a contiguous share of the files at the same time (each part
  started together on all cores): that wall time is the all-cores floor. Dividing the
  one-core time by the cores would assume the cores scale perfectly, which a shared or
  virtual machine's do not.
- **the database**: ``SELECT`` of the rows a plan reads (psycopg, tuples in Python), and
  ``COPY`` of the rows an initial apply writes into tables shaped like the real ones (same
  columns, indexes and constraints; rolled back).

A stage's ratio is its time over its floor; the targets are ratios, so they hold on any
machine. Peak memory is sampled per stage over the process and its worker processes.
"""

from __future__ import annotations

import base64
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
import pyrage
import yaml
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from benchmarks.memory_sampler import children
from reconciler.sops.codec import aad_for, split_enc

READ_TABLES = ("integration_configs", "webhook_configurations", "oauth_tokens")
"""What a plan reads."""

WRITE_TABLES = ("integration_configs", "webhook_configurations", "configuration_audit_logs")
"""What an initial apply writes (tokens are the OAuth flow's)."""


@dataclass(frozen=True, slots=True)
class FileFloors:
    """One-core seconds of each part of reading ``files`` manifests."""

    files: int
    values: int
    read: float
    pyyaml: float
    fastest_parser: str
    fastest_parse: float
    age: float
    aes: float
    cores: int
    parallel: float | None = None
    """Wall seconds of the same work with each core taking a share at once (None: one core)."""

    @property
    def one_core(self) -> float:
        """Read, the fastest parse, age and AES-GCM, on one core."""
        return self.read + self.fastest_parse + self.age + self.aes

    @property
    def all_cores(self) -> float:
        """The reading floor when every core takes a share of the files, as measured."""
        if self.parallel is None:
            return self.one_core / self.cores
        return max(self.parallel, self.one_core / self.cores)

    @property
    def scaling(self) -> float:
        """How many times faster all cores read than one (at most the core count)."""
        return self.one_core / self.all_cores


@dataclass(frozen=True, slots=True)
class DatabaseFloors:
    """Seconds to SELECT what a plan reads and to COPY what an initial apply writes."""

    select_rows: int
    select: float
    copy_rows: int
    copy: float


@dataclass(slots=True)
class _Doc:
    data_key_enc: str
    values: list[tuple[str, str]] = field(default_factory=list)  # (ENC string, AAD)


def _parsers() -> dict[str, Any]:
    parsers: dict[str, Any] = {"pyyaml-c": lambda text: yaml.load(text, Loader=yaml.CSafeLoader)}
    try:
        import yaml_rs

        parsers["yaml-rs"] = yaml_rs.loads
    except ImportError:
        pass
    return parsers


def _walk(node: Any, path: tuple[str, ...], out: list[tuple[str, str]]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "sops":
                _walk(value, (*path, str(key)), out)
    elif isinstance(node, list):
        for item in node:
            _walk(item, path, out)
    elif isinstance(node, str) and node.startswith("ENC[AES256_GCM,"):
        out.append((node, aad_for(path)))


def measure_files(paths: Sequence[Path], identity: pyrage.x25519.Identity) -> FileFloors:
    """Time each part of reading ``paths`` on one core, part by part, then on every core."""
    one = _measure_parts(paths, identity)
    cores = os.cpu_count() or 1
    if cores > 1 and len(paths) >= cores:
        one = replace(one, cores=cores, parallel=_measure_on_all_cores(paths, identity, cores))
    return one


def measure_files_on_one_core(
    paths: Sequence[Path], identity: pyrage.x25519.Identity
) -> FileFloors:
    """Time each part of reading ``paths`` in this process only."""
    return _measure_parts(paths, identity)


def _measure_on_all_cores(
    paths: Sequence[Path], identity: pyrage.x25519.Identity, cores: int
) -> float:
    """Wall seconds of the parts of reading ``paths`` with ``cores`` forked processes, each
    taking a contiguous share; every part starts on all of them at once (a barrier), and
    only the parts are timed, not the set-up between them."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(cores)
    size = -(-len(paths) // cores)
    shares = [paths[i : i + size] for i in range(0, len(paths), size)]
    receive, send = ctx.Pipe(duplex=False)

    def child(index: int) -> None:
        parts = _measure_parts(shares[index], identity, barrier)
        if index == 0:
            send.send(parts.one_core)
        os._exit(0)

    workers = [ctx.Process(target=child, args=(i,)) for i in range(len(shares))]
    for worker in workers:
        worker.start()
    seconds = float(receive.recv())
    for worker in workers:
        worker.join()
    return seconds


def _measure_parts(
    paths: Sequence[Path],
    identity: pyrage.x25519.Identity,
    barrier: threading.Barrier | None = None,
) -> FileFloors:
    """Time each part of reading ``paths`` in this process. With ``barrier`` (shared with the
    other processes measuring at once), each part starts when every process is ready for it
    and its time runs until every process is done with it."""

    def together() -> None:
        if barrier is not None:
            barrier.wait()

    together()
    started = time.perf_counter()
    texts = [p.read_bytes() for p in paths]
    together()
    read = time.perf_counter() - started

    parse_times: dict[str, float] = {}
    parsed: list[Any] = []
    for name, parse in _parsers().items():
        together()
        started = time.perf_counter()
        result = [parse(t.decode()) for t in texts]
        together()
        parse_times[name] = time.perf_counter() - started
        if name == "pyyaml-c":
            parsed = result
    fastest = min(parse_times, key=lambda n: parse_times[n])

    docs: list[_Doc] = []
    for doc in parsed:
        one = _Doc(doc["sops"]["age"][0]["enc"])
        _walk(doc, (), one.values)
        one.values.append((doc["sops"]["mac"], doc["sops"]["lastmodified"]))
        docs.append(one)

    together()
    started = time.perf_counter()
    keys = [pyrage.decrypt(d.data_key_enc.encode(), [identity]) for d in docs]
    together()
    age = time.perf_counter() - started

    sealed = []
    for key, doc in zip(keys, docs, strict=True):
        for value, aad_text in doc.values:
            fields = split_enc(value)
            assert fields is not None
            data, iv, tag = (base64.b64decode(f) for f in fields[:3])
            sealed.append((key, iv, data + tag, aad_text.encode()))
    together()
    started = time.perf_counter()
    aead: dict[bytes, AESGCM] = {}
    for key, iv, box, aad in sealed:
        cipher = aead.get(key)
        if cipher is None:
            cipher = aead[key] = AESGCM(key)
        cipher.decrypt(iv, box, aad)
    together()
    aes = time.perf_counter() - started

    return FileFloors(
        files=len(paths),
        values=len(sealed),
        read=read,
        pyyaml=parse_times["pyyaml-c"],
        fastest_parser=fastest,
        fastest_parse=parse_times[fastest],
        age=age,
        aes=aes,
        cores=1,
    )


def measure_database(url: str) -> DatabaseFloors:
    """SELECT the plan's tables; COPY the apply's rows into look-alike tables, rolled back."""
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as conn:
        started = time.perf_counter()
        select_rows = 0
        for table in READ_TABLES:
            select_rows += len(conn.execute(f"SELECT * FROM {table}").fetchall())
        select = time.perf_counter() - started

        dumps: dict[str, bytes] = {}
        with conn.cursor() as cur:
            for table in WRITE_TABLES:
                buffer = bytearray()
                with cur.copy(f"COPY {table} TO STDOUT (FORMAT binary)") as copy:
                    for chunk in copy:
                        buffer += chunk
                dumps[table] = bytes(buffer)
            copy_rows = 0
            for table in WRITE_TABLES:
                (count,) = cur.execute(f"SELECT count(*) FROM {table}").fetchall()[0]
                copy_rows += int(count)
            for table in WRITE_TABLES:
                cur.execute(f"CREATE TABLE floor_{table} (LIKE {table} INCLUDING ALL)")
            started = time.perf_counter()
            for table in WRITE_TABLES:
                with cur.copy(f"COPY floor_{table} FROM STDIN (FORMAT binary)") as copy:
                    copy.write(dumps[table])
            conn.execute("SELECT 1")  # the COPYs are complete on the server
            copy_seconds = time.perf_counter() - started
        conn.rollback()
    return DatabaseFloors(select_rows, select, copy_rows, copy_seconds)


_SAMPLER = Path(__file__).with_name("memory_sampler.py")
"""Run by path: it imports nothing but the standard library."""


class PeakMemory:
    """Peak memory (proportional set size) of this process and its descendants, every 250 ms.

    The sampler is a separate process, not a thread: the loader runs its worker pool only
    when the process has no other thread (forking a threaded process is unsafe), so a
    sampling thread would measure every stage on one core. ``cpu`` is the sampler's own CPU
    time, to be subtracted from the children's CPU time of a stage. PSS costs the kernel a
    walk of the page tables, so it is read every 250 ms, not more often: at 10,000 tenants a
    20 ms cadence took a third of a core from the stages it measured.

    The database server is not a descendant when it runs apart (an external URL); the
    embedded server is started before the stages and its memory is not the tool's, so only
    processes started after the sampler (the worker pool) are counted besides this one.
    """

    def __init__(self, *, descendants_only: bool = False) -> None:
        self._known = children(os.getpid())
        self._descendants_only = descendants_only
        self.peak = 0
        self.cpu = 0.0
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> PeakMemory:
        command = [sys.executable, str(_SAMPLER), str(os.getpid()), ",".join(map(str, self._known))]
        if self._descendants_only:
            command.append("descendants")
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._process is not None
        out, _ = self._process.communicate("stop\n")
        peak, cpu = out.split()
        self.peak, self.cpu = int(peak), float(cpu)


@contextmanager
def sampled(*, descendants_only: bool = False) -> Iterator[PeakMemory]:
    """Sample peak memory for the duration of a ``with`` block (of the processes started in
    it alone, with ``descendants_only``)."""
    with PeakMemory(descendants_only=descendants_only) as peak:
        yield peak
