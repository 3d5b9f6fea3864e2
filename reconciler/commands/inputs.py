"""The inputs every verb reads: keys, the selected manifests and the database state."""

from __future__ import annotations

import dataclasses
import io
import itertools
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self, TextIO

from reconciler.commands.read_apart import ReadApart
from reconciler.crypto.fingerprint import Fingerprinter
from reconciler.crypto.local_keys import load_keys_for_target
from reconciler.errors import (
    ConfigError,
    KeyUnavailable,
    ManifestInvalid,
)
from reconciler.load.cache import CACHE_DIR_ENV, CACHE_KEY_ENV, KEY_FILE_NAME
from reconciler.load.cache import enabled as cache_enabled
from reconciler.load.cache_file import LoadCache
from reconciler.load.cache_key import cache_key_from_env
from reconciler.load.manifests import TENANTS_DIR
from reconciler.model.actual import ActualState
from reconciler.model.desired import (
    DesiredIntegration,
    DesiredState,
    DesiredWebhook,
    EncodedRows,
)
from reconciler.model.fields import INTEGRATION_SECRETS, WEBHOOK_SECRETS
from reconciler.model.plan import (
    Action,
    Plan,
    Selectors,
)
from reconciler.progress import QUIET, Progress
from reconciler.store.database import (
    DATA_DIR_ENV,
    DEFAULT_DATA_DIR,
    DatabaseTarget,
    translate_db_errors,
)
from reconciler.store.read import ActualObjects, RowBatch, read_row_batches
from reconciler.store.session import Database
from reconciler.store.transaction import begin_read_snapshot
from reconciler.store.visibility import Access, check_visibility

ALL = Selectors()
"""No selection: every tenant and platform."""

CACHED_SELECTION_MIN_TENANTS = 100
"""A run naming fewer tenants than this (``--tenant``, ``--changed-from``) neither reads nor
writes the manifest cache: the cache is one file holding every manifest of the fleet (about
2 KB each), and reading it costs far more than parsing and decrypting a few tenants' files,
so a plan of two tenants would cost more the larger the fleet."""


# -- shared steps -------------------------------------------------------------------------------


def fingerprinter_for(
    target: DatabaseTarget,
    environ: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> Fingerprinter:
    """The fingerprint key: ``RECONCILER_FINGERPRINT_KEY``, else the development keys."""
    env = os.environ if environ is None else environ
    fp = Fingerprinter.from_environ(env)
    if fp is not None:
        return fp
    return load_keys_for_target(target, env, stderr=notes_stream(progress))[1]


def notes_stream(progress: Progress | None) -> TextIO:
    """Where one-line notices go: stderr, or nowhere under ``--quiet``."""
    if progress is None or progress.enabled:
        return sys.stderr
    return io.StringIO()


def open_load_cache(fingerprint: Fingerprinter, environ: Mapping[str, str]) -> LoadCache | None:
    """The manifest cache: ``$RECONCILER_CACHE_DIR``, else ``<data dir>/cache``.

    Its MAC key is ``$RECONCILER_CACHE_KEY``, else ``<data dir>/cache.key`` (made on first
    use). None when ``RECONCILER_CACHE=0``.

    Raises:
        ConfigError: ``$RECONCILER_CACHE_KEY`` is set but not a usable key.
    """
    directory = _cache_directory(environ)
    if directory is None:
        return None
    data_dir = Path(environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)
    # The key lives in the data directory, not in the cache directory: restoring a cache
    # directory (a CI cache) brings back entries, never the key that would vouch for forged
    # ones. $RECONCILER_CACHE_KEY (a CI secret) lets trusted jobs share one key instead.
    given = environ.get(CACHE_KEY_ENV)
    key = cache_key_from_env(given) if given else data_dir / KEY_FILE_NAME
    namespace = _cache_namespace(fingerprint)
    return LoadCache.open(directory, namespace, key)


def _cache_directory(environ: Mapping[str, str]) -> Path | None:
    """Where the manifest cache lives; None when it is off (``RECONCILER_CACHE=0``)."""
    if not cache_enabled(environ):
        return None
    data_dir = Path(environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)
    return Path(environ.get(CACHE_DIR_ENV) or data_dir / "cache")


def _cache_namespace(fingerprint: Fingerprinter) -> str:
    return fingerprint.fingerprint("reconciler/load-cache/v1")


def _cache_file_exists(fingerprint: Fingerprinter, environ: Mapping[str, str]) -> bool:
    """Whether the manifest cache is on and has a file (its entries are not checked)."""
    directory = _cache_directory(environ)
    if directory is None:
        return False
    try:
        return LoadCache.file_in(directory, _cache_namespace(fingerprint)).is_file()
    except OSError:  # unreadable: the load says so, in its notice about the cache
        return False


def load_desired(
    manifests_dir: Path,
    selectors: Selectors,
    fingerprint: Fingerprinter,
    progress: Progress = QUIET,
    *,
    paths: Sequence[Path] | None = None,
    use_cache: bool = True,
    after_fork: Callable[[], None] | None = None,
) -> DesiredState:
    """Load, decrypt and validate the selected manifests, or raise ``ManifestInvalid``.

    With the cache, unchanged files come back with fingerprints but no plaintext
    (:func:`with_plaintext` decrypts what an apply must write); a selection of fewer than
    :data:`CACHED_SELECTION_MIN_TENANTS` named tenants does without it. ``after_fork`` is
    called once the worker processes of a large load are forked (see
    :class:`ReadWhileLoading`).
    """
    state, _ = _loaded(
        manifests_dir, selectors, fingerprint, progress, paths, use_cache, after_fork
    )
    return state


def load_desired_encoded(
    manifests_dir: Path,
    selectors: Selectors,
    fingerprint: Fingerprinter,
    progress: Progress = QUIET,
    *,
    after_fork: Callable[[], None] | None = None,
) -> tuple[DesiredState, EncodedRows]:
    """:func:`load_desired`, with the integrations and webhooks of the files that came from
    the cache kept encoded: the state holds everything else, and
    :func:`~reconciler.core.settle.settle` compares the rows with the database before any
    desired object is made of them."""
    return _loaded(manifests_dir, selectors, fingerprint, progress, None, True, after_fork, True)


def _loaded(
    manifests_dir: Path,
    selectors: Selectors,
    fingerprint: Fingerprinter,
    progress: Progress,
    paths: Sequence[Path] | None,
    use_cache: bool,
    after_fork: Callable[[], None] | None,
    defer_cached: bool = False,
) -> tuple[DesiredState, EncodedRows]:
    from reconciler.load.stage import load_desired_state
    from reconciler.sops import load_identities

    if not manifests_dir.is_dir():
        # An empty desired state would plan the deletion of everything: refuse instead.
        raise ConfigError(
            f"manifests directory {manifests_dir} does not exist; pass --manifests DIR"
        )
    with progress.stage("Loading manifests", unit="file") as stage:
        few = 0 < len(selectors.tenants) < CACHED_SELECTION_MIN_TENANTS
        cache = open_load_cache(fingerprint, os.environ) if use_cache and not few else None
        result = load_desired_state(
            manifests_dir,
            selectors=selectors,
            paths=paths,
            identities=load_identities(),
            fingerprint=fingerprint,
            decrypt=True,
            cache=cache,
            progress=stage,
            after_fork=after_fork,
            defer_cached=defer_cached,
        )
        stage["detail"] = f"{result.files} files"
    for line in cache.report() if cache is not None else ():
        notes_stream(progress).write(f"{line}\n")  # cache off, old format, entries ignored
    if result.state is None or result.diagnostics.has_errors():
        raise ManifestInvalid(result.diagnostics)
    if result.skipped_decryption:
        raise KeyUnavailable(
            f"no age key to decrypt {len(result.skipped_decryption)} manifest(s) "
            f"(first: {result.skipped_decryption[0]}): set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY"
        )
    return result.state, result.encoded


def with_plaintext(
    desired: DesiredState,
    plan: Plan,
    manifests_dir: Path,
    fingerprint: Fingerprinter,
    progress: Progress = QUIET,
) -> DesiredState:
    """Decrypt again the files whose secrets ``plan`` writes, if they came from the cache."""

    def lacking(
        objects: Sequence[DesiredIntegration | DesiredWebhook], names: Sequence[str]
    ) -> Iterator[DesiredIntegration | DesiredWebhook]:
        for obj in objects:
            for name in names:
                secret = getattr(obj, name)
                if secret is not None and secret.value is None:
                    yield obj
                    break

    # Checked object by object first: after a cold load nothing lacks its plaintext, and an
    # initial load's plan has a change for every object.
    by_address = {
        o.address: o
        for o in (
            *lacking(desired.integrations, INTEGRATION_SECRETS),
            *lacking(desired.webhooks, WEBHOOK_SECRETS),
        )
    }
    if not by_address:
        return desired
    needed: set[str] = set()
    for c in plan.changes:
        declared = by_address.get(c.address)
        if declared is not None and (
            c.action is Action.CREATE or any(f.sensitive for f in c.fields)
        ):
            needed.add(declared.source.path)
    if not needed:
        return desired
    from reconciler.load.stage import named_file

    root = manifests_dir.resolve()
    files = [named_file(root, name) for name in sorted(needed)]
    fresh = load_desired(
        manifests_dir,
        ALL,
        fingerprint,
        progress,
        paths=[f for f in files if root in f.resolve().parents],
        use_cache=False,
    )
    integrations = {str(i.address): i for i in fresh.integrations}
    webhooks = {str(w.address): w for w in fresh.webhooks}
    return dataclasses.replace(
        desired,
        integrations=tuple(integrations.get(str(i.address), i) for i in desired.integrations),
        webhooks=tuple(webhooks.get(str(w.address), w) for w in desired.webhooks),
    )


def read_actual(
    db: Database,
    selectors: Selectors,
    fingerprint: Fingerprinter,
    progress: Progress = QUIET,
    access: Access = Access.READ,
) -> ActualState:
    """Read the actual state, after checking the role sees every row of what it reads."""
    with (
        progress.stage("Reading database", unit="row") as stage,
        translate_db_errors(),
    ):
        actual = _read_snapshot(db, selectors, fingerprint, access, stage.advance)
        stage["detail"] = f"{_rows(actual)} rows"
    return actual


def _read_snapshot(
    db: Database,
    selectors: Selectors,
    fingerprint: Fingerprinter,
    access: Access,
    on_read: Callable[[int], None],
) -> ActualState:
    """The actual state as one read-only snapshot (the rows of one moment)."""
    objects = ActualObjects()
    read_snapshot_batches(db, selectors, fingerprint, access, objects.add, on_read)
    return objects.state()


def read_snapshot_batches(
    db: Database,
    selectors: Selectors,
    fingerprint: Fingerprinter,
    access: Access,
    take: Callable[[RowBatch], None],
    on_read: Callable[[int], None] | None = None,
) -> None:
    """Read the rows of the actual state as one read-only snapshot (the rows of one
    moment), after checking the role sees every row of what it reads; ``take`` is given
    each batch as it is read."""
    with db.engine.connect() as conn, conn.begin():
        begin_read_snapshot(conn)
        check_visibility(conn, access)  # never a plan from a partial view
        for batch in read_row_batches(conn, selectors, fingerprint, on_read=on_read):
            take(batch)


def _rows(actual: ActualState) -> int:
    return len(actual.integrations) + len(actual.webhooks) + len(actual.tokens)


READ_APART_MIN_TENANTS = 300
"""Below this many tenant directories the read is not given a process of its own (a fork
and a second connection cost more than the overlap saves)."""


def _large(manifests_dir: Path, selectors: Selectors) -> bool:
    """Whether a run is large enough to read in a process of its own."""
    from reconciler.load.pool import PARALLEL_MIN_FILES, worker_count

    if 0 < len(selectors.tenants) < READ_APART_MIN_TENANTS:
        return False
    try:
        with os.scandir(manifests_dir / TENANTS_DIR) as entries:
            tenants = sum(1 for _ in itertools.islice(entries, READ_APART_MIN_TENANTS))
    except OSError:
        return False  # the load reports what is wrong with the directory
    return tenants >= READ_APART_MIN_TENANTS and worker_count(PARALLEL_MIN_FILES, None) > 1


class _Stopped(Exception):
    """Raised in the reading thread between two queries once its result is not wanted."""


class ReadWhileLoading:
    """The first, unlocked read of the actual state, overlapped with loading the manifests.

    Two ways, chosen by the size of the run:

    - A large run that names no short list of tenants (:meth:`start_apart`, called before
      the load) forks a process that reads while this one loads
      (:mod:`reconciler.commands.read_apart`); this process makes the model objects of the
      rows it sends once the load is done. A warm-cache load is Python work in this
      process alone, so the read would otherwise follow it.
    - Otherwise a large load forks worker processes; once they are forked and this process
      has loaded its own share (:meth:`start`, passed to :func:`load_desired` as
      :attr:`after_fork`), the read runs in a thread of this process while it waits for the
      workers to finish parsing and decrypting. A fork never happens while the thread runs
      (it starts after the last fork and is joined before anything else may fork).

    Without either (small selections, small fleets) :meth:`result` reads as
    :func:`read_actual` does, after the load; it does so too when the reading process
    failed in any way, so that its error is raised here.

    The read is the same as :func:`read_actual`'s: one read-only snapshot, visibility checked
    first. Its outcome is reported only by :meth:`result`: when the block ends without it (a
    manifest error, ``KeyboardInterrupt``) the thread is told to stop after its current query
    and joined, the process is stopped, and what either read or raised is dropped. Use it as
    a context manager.
    """

    def __init__(
        self,
        db: Database,
        selectors: Selectors,
        fingerprint: Fingerprinter,
        access: Access = Access.READ,
    ) -> None:
        self._args = (db, selectors, fingerprint, access)
        self._thread: threading.Thread | None = None
        self._apart: ReadApart | None = None
        self._stop = threading.Event()
        self._actual: ActualState | None = None
        self._error: BaseException | None = None

    def start_apart(self, manifests_dir: Path) -> None:
        """Start reading in a forked process when the load will most likely come from the
        manifest cache (it is on and has a file) and the run is large (at least
        :data:`READ_APART_MIN_TENANTS` tenant directories, and no short list of tenants
        named), and more than one process may be used (``RECONCILER_WORKERS``).

        A load that parses and decrypts keeps both cores busy with worker processes, and
        reads in a thread meanwhile instead (:meth:`start`): a third process would only
        take time from them.
        """
        db, selectors, fingerprint, access = self._args
        if (
            self._apart is None
            and self._thread is None
            and _large(manifests_dir, selectors)
            and _cache_file_exists(fingerprint, os.environ)
        ):
            self._apart = ReadApart.start(db, selectors, fingerprint, access)

    @property
    def after_fork(self) -> Callable[[], None] | None:
        """What :func:`load_desired` calls once its workers are forked: :meth:`start`, unless
        a forked process reads already (then this process has no read of its own to do)."""
        return self.start if self._apart is None else None

    def start(self) -> None:
        """Start reading in a thread (once; later calls do nothing)."""
        if self._thread is None and self._apart is None:
            self._thread = threading.Thread(target=self._run, name="reconciler-read")
            self._thread.start()

    def _run(self) -> None:
        try:
            self._actual = _read_snapshot(*self._args, self._check)
        except BaseException as exc:  # handed to the caller's thread by result()
            self._error = exc

    def _check(self, _rows: int) -> None:
        if self._stop.is_set():
            raise _Stopped

    def result(self, progress: Progress = QUIET) -> ActualState:
        """The actual state: waits for the thread, or reads now when none was started.

        Errors are raised here, translated as :func:`read_actual` translates them.
        """
        if self._apart is not None:
            return self._result_apart(self._apart, progress)
        thread = self._thread
        if thread is None:
            return read_actual(*self._args[:3], progress, self._args[3])
        with (
            progress.stage("Reading database", unit="row") as stage,
            translate_db_errors(),
        ):
            self._join(thread)
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            assert self._actual is not None
            actual, self._actual = self._actual, None
            stage.advance(_rows(actual))
            stage["detail"] = f"{_rows(actual)} rows"
        return actual

    def _result_apart(self, apart: ReadApart, progress: Progress) -> ActualState:
        with progress.stage("Reading database", unit="row") as stage:
            objects = ActualObjects()
            received = apart.receive(objects.add)
            self._apart = None
            if received:
                stage.advance(len(objects))
                stage["detail"] = f"{len(objects)} rows"
                return objects.state()
            stage["detail"] = "the reading process failed; reading here"
        # Read here, where what went wrong is raised and reported; nothing it sent is kept.
        return read_actual(*self._args[:3], progress, self._args[3])

    def _join(self, thread: threading.Thread) -> None:
        thread.join()
        self._thread = None

    def close(self) -> None:
        """Stop and join the thread if it still runs; drop what it read. Idempotent."""
        thread = self._thread
        if thread is not None:
            self._stop.set()
            self._join(thread)
        if self._apart is not None:
            self._apart.close()
            self._apart = None
        self._actual = None
        self._error = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# -- plan ---------------------------------------------------------------------------------------
