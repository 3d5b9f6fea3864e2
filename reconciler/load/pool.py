"""The worker pool of the loading stage: files are split into contiguous chunks, and each
chunk is analysed, decrypted and turned into its share of the desired state
(:func:`load_chunk`), in this process or in forked workers (:func:`run_chunks`).

Workers are forked from the calling process and receive the :class:`ChunkInputs` through
the pool's initializer, so keys and templates are inherited rather than sent; only each
chunk's result travels back. The calling process keeps no module-level state: it passes the
inputs to every call.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import multiprocessing
import operator
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import Any, TypeVar

from reconciler import sops
from reconciler.diagnostics import Diagnostic, Diagnostics
from reconciler.errors import ConfigError
from reconciler.load import manifests as mf
from reconciler.load.analyze import analyze_file
from reconciler.load.cache import (
    CachedFile,
    encode_state,
    entry_key,
)
from reconciler.load.cache_file import LoadCache
from reconciler.load.decrypt import Decryption
from reconciler.load.desired_state import build_state
from reconciler.load.file_types import AppEndpoint, FileJob, FileResult, Fingerprint, TemplateSet
from reconciler.model import desired as desired_model
from reconciler.model.desired import DesiredState
from reconciler.model.sensitive import Sensitive
from reconciler.progress import Stage

PARALLEL_MIN_FILES = 1000
"""Below this many files a run stays in one process (a fork costs more than it saves)."""

WORKERS_ENV = "RECONCILER_WORKERS"


def _reduce_sensitive(value: Sensitive[Any]) -> tuple[Any, tuple[Any]]:
    return Sensitive, (value.reveal(),)


# Results of worker processes carry decrypted secrets back to the parent through the pool's
# pipe (memory only). Plain pickle still refuses Sensitive: only this pickler, used by
# multiprocessing between our own processes, may carry one.
ForkingPickler.register(Sensitive, _reduce_sensitive)


def _register_by_fields(cls: type[Any]) -> None:
    """Send instances of the frozen dataclass ``cls`` as ``cls(*field values)``.

    The default for a frozen dataclass with slots calls ``dataclasses.fields()`` once per
    object when loading it, which made taking in a worker's share of the state cost a
    quarter of loading it; calling the class is several times cheaper.
    """
    names = tuple(f.name for f in dataclasses.fields(cls))
    assert all(f.init for f in dataclasses.fields(cls)) and not hasattr(cls, "__post_init__")
    getter = operator.attrgetter(*names)
    if len(names) == 1:
        ForkingPickler.register(cls, lambda obj: (cls, (getter(obj),)))
    else:
        ForkingPickler.register(cls, lambda obj: (cls, getter(obj)))


for _name in desired_model.__all__:
    _cls = getattr(desired_model, _name)
    if isinstance(_cls, type) and dataclasses.is_dataclass(_cls):  # records, not aliases
        _register_by_fields(_cls)


@dataclass(frozen=True, slots=True)
class ChunkInputs:
    """What every chunk needs; inherited by forked workers, never pickled."""

    root: Path
    prefix: str
    templates: TemplateSet
    identities: sops.Identities | None
    fingerprint: Fingerprint | None
    decrypt: bool
    chunks: tuple[tuple[mf.ManifestFile, ...], ...]
    cache: LoadCache | None
    templates_digest: bytes
    progress: Stage | None = None
    pid: int = 0  # the parent: only it reports progress (a worker's copy must not draw)
    after_fork: Callable[[], None] | None = None
    """Called in this process once every worker is forked and this process has loaded its
    own chunk, while it waits for the workers (never when no worker is forked): from then on
    this process may start threads of its own, and has a core's worth of time to spare."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """One chunk's share of a :class:`LoadResult` (picklable)."""

    diagnostics: tuple[Diagnostic, ...]
    used: frozenset[str]
    skipped: tuple[str, ...]
    hashes: tuple[tuple[str, bytes], ...]
    endpoints: tuple[tuple[AppEndpoint, str, str], ...]
    pieces: tuple[tuple[str, DesiredState], ...]
    """Each file's share of the state, by relative path (empty when the chunk had errors)."""
    cached: tuple[tuple[str, bytes, CachedFile], ...] = ()
    """New cache entries (rel, key, value) made by this chunk."""


class _Worker:
    """The inputs of a worker process: set once, by the pool's initializer, in the worker
    (forked, so inherited rather than pickled); the calling process never sets it."""

    inputs: ChunkInputs | None = None


def _enter_worker(inputs: ChunkInputs) -> None:
    _Worker.inputs = inputs


def _load_chunk_in_worker(index: int) -> Chunk:
    assert _Worker.inputs is not None, "worker started without its inputs"
    return load_chunk(_Worker.inputs, index)


def run_chunks(inputs: ChunkInputs, processes: int) -> list[Chunk]:
    """Load every chunk of ``inputs``, in order; with more than one process and chunk, the
    chunks after the first are loaded by ``processes - 1`` forked workers."""
    if processes > 1 and len(inputs.chunks) > 1:
        # This process loads the first chunk itself while workers load the others, so
        # only their results travel through a pipe.
        fork = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(
            min(processes, len(inputs.chunks)) - 1,
            mp_context=fork,
            initializer=_enter_worker,
            initargs=(inputs,),
        ) as pool:
            others = pool.map(_load_chunk_in_worker, range(1, len(inputs.chunks)))
            parts = [load_chunk(inputs, 0)]
            # A fork-context pool has forked all its workers by the first submission. Not
            # before this chunk: a thread would only take this process's time from it.
            if inputs.after_fork is not None:
                inputs.after_fork()
            for index, part in enumerate(others, start=1):
                parts.append(part)
                if inputs.progress is not None:
                    inputs.progress.advance(len(inputs.chunks[index]))
            return parts
    return [load_chunk(inputs, i) for i in range(len(inputs.chunks))]


def worker_count(files: int, requested: int | None) -> int:
    """Processes to use: 1 for small runs and when threads exist (a fork is unsafe then)."""
    if requested is None:
        configured = os.environ.get(WORKERS_ENV, "").strip()
        if configured and not configured.isdigit():
            raise ConfigError(f"{WORKERS_ENV} must be a whole number, got {configured!r}")
        requested = int(configured) if configured else (os.cpu_count() or 1)
        if files < PARALLEL_MIN_FILES:
            return 1
    if threading.active_count() > 1 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(requested, files))


_T = TypeVar("_T")

MAIN_SHARE = 1.0
"""This process's chunk relative to a worker's. Taking in a worker's results costs this
process about what sending them costs the worker, so their chunks are equal."""
MAIN_SHARE_BUSY = 0.82
"""The same while this process also reads the database (``after_fork``'s thread): the read
costs about a tenth of loading the files (measured at 30,000 tenants: loading 90,000 files
on two cores, reading 540,000 rows)."""


def split_chunks(files: Sequence[_T], processes: int, *, busy: bool) -> tuple[tuple[_T, ...], ...]:
    """``files`` in contiguous chunks, the first for this process and one per worker.

    The chunks are sized so that every process finishes at about the same time: this
    process's own chunk is :data:`MAIN_SHARE` of a worker's, or :data:`MAIN_SHARE_BUSY`
    when it also reads the database meanwhile.
    """
    if not files:
        return ()
    if processes <= 1 or len(files) <= 1:
        return (tuple(files),)
    share = MAIN_SHARE_BUSY if busy else MAIN_SHARE
    worker = len(files) / (share + processes - 1)
    bounds = [0, round(worker * share)]
    bounds += [round(worker * (share + i)) for i in range(1, processes - 1)]
    bounds.append(len(files))
    return tuple(tuple(files[a:b]) for a, b in itertools.pairwise(bounds))


TRANSFER_FILES = 256
"""The most files a worker loads and sends back at a time (see :func:`transfer_chunks`)."""


def transfer_chunks(chunks: Sequence[tuple[_T, ...]]) -> tuple[tuple[_T, ...], ...]:
    """:func:`split_chunks`' chunks with every worker's cut into chunks of at most
    :data:`TRANSFER_FILES`, in file order; this process's own chunk (the first) is kept.

    Each small chunk is loaded and sent back on its own: a worker then holds one small
    chunk's objects at a time rather than its whole share, and this process receives each
    result as a small message instead of one that is, at its peak, as large again as the
    objects it carries.
    """
    if len(chunks) <= 1:
        return tuple(chunks)
    pieces = [
        chunk[i : i + TRANSFER_FILES]
        for chunk in chunks[1:]
        for i in range(0, len(chunk), TRANSFER_FILES)
    ]
    return (chunks[0], *pieces)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


BATCH_FILES = 64
"""Files taken through analysis, decryption and state building together (see
:func:`load_chunk`): small enough that their intermediate forms stay a few megabytes."""


def load_chunk(inputs: ChunkInputs, index: int) -> Chunk:
    """Analyze, decrypt and build the state of one chunk of files (in a worker or here).

    Files go through the three steps in batches of :data:`BATCH_FILES`, so that their bytes,
    parse trees, validated models and plaintext documents are dropped as soon as their share
    of the state is built: a chunk holds the desired objects of its files, never all their
    intermediate forms (which take several times the memory). Each step still runs over a
    whole batch in a row, which keeps the per-file cost of the step-by-step order.
    """
    diagnostics = Diagnostics()
    decryption = Decryption(inputs.templates, inputs.identities, inputs.decrypt, diagnostics)
    used: set[str] = set()
    hashes: list[tuple[str, bytes]] = []
    endpoints: list[tuple[AppEndpoint, str, str]] = []
    built: list[_Built] = []
    files = inputs.chunks[index]
    for start in range(0, len(files), BATCH_FILES):
        built += _load_batch(
            inputs, files[start : start + BATCH_FILES], decryption, used, hashes, endpoints
        )
    skipped = decryption.skipped()
    pieces: list[tuple[str, DesiredState]] = []
    cached: list[tuple[str, bytes, CachedFile]] = []
    if diagnostics.error_count == 0:
        noisy = {d.file for d in diagnostics}  # files with warnings are not cached
        for item in built:
            pieces.append((item.rel, item.piece))
            if inputs.cache is not None and item.display not in noisy and not skipped:
                cached.append((item.rel, item.key, _cacheable(item)))
    return Chunk(
        diagnostics=tuple(diagnostics),
        used=frozenset(used),
        skipped=skipped,
        hashes=tuple(hashes),
        endpoints=tuple(endpoints),
        pieces=tuple(pieces),
        cached=tuple(cached),
    )


@dataclass(frozen=True, slots=True)
class _Built:
    """One file's share of the state, kept until the chunk's verdict is known."""

    rel: str
    display: str
    key: bytes
    piece: DesiredState
    endpoints: tuple[AppEndpoint, ...]
    chain: tuple[str, ...]


def _load_batch(
    inputs: ChunkInputs,
    manifests: Sequence[mf.ManifestFile],
    decryption: Decryption,
    used: set[str],
    hashes: list[tuple[str, bytes]],
    endpoints: list[tuple[AppEndpoint, str, str]],
) -> list[_Built]:
    """One batch of :func:`load_chunk`: its files' shares of the state (none once the
    chunk has an error). A function of its own so that every intermediate form of the
    batch's files is freed when it returns."""
    diagnostics = decryption.diagnostics
    batch: list[tuple[FileResult, bytes, bytes]] = []
    for manifest in manifests:
        data = mf.read_file(manifest.path)
        file_hash = sha256(data)
        hashes.append((manifest.rel, file_hash))
        job = FileJob(
            manifest.rel, inputs.prefix + manifest.rel, data, manifest.tenant, manifest.platform
        )
        result = analyze_file(job, inputs.templates)
        used.update(result.chain)
        diagnostics.extend(result.diagnostics)
        endpoints.extend((e, result.rel, result.display) for e in result.endpoints)
        batch.append((result, data, file_hash))
        if inputs.progress is not None and inputs.pid == os.getpid():
            inputs.progress.advance(1)
    secrets = [decryption.file(result, data) for result, data, _ in batch]
    built: list[_Built] = []
    if diagnostics.error_count == 0:  # after an error the chunk's pieces are not used
        for (result, _, file_hash), plain in zip(batch, secrets, strict=True):
            key = (
                entry_key(result.display, file_hash, inputs.templates_digest)
                if inputs.cache is not None
                else b""
            )
            piece = build_state([result], plain, inputs.fingerprint, "")
            built.append(
                _Built(result.rel, result.display, key, piece, result.endpoints, result.chain)
            )
    return built


def _cacheable(item: _Built) -> CachedFile:
    """The file's share of the state with every secret reduced to its fingerprint."""
    piece = item.piece
    integrations, webhooks, accounts = encode_state(piece)
    tenant = next(iter(piece.tenants)) if piece.tenants else ""
    endpoints = tuple(
        (
            e.platform.value,
            e.app_id,
            e.environment,
            e.url,
            e.path,
            item.rel,
            item.display,
        )
        for e in item.endpoints
    )
    return CachedFile(tenant, integrations, webhooks, accounts, endpoints, item.chain)
