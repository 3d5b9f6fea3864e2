"""``secrets rotate`` and ``secrets updatekeys`` over many files, in parallel.

Re-keying a repository after a team change touches every encrypted file. Each file is
independent, so the files are split into chunks handed to worker processes (one per CPU,
forked so the identities loaded once are inherited, not read again per file). Small batches
run in-process, where starting workers would cost more than it saves.

Each file is replaced atomically: its new text goes to a temporary file beside it, all
temporary files are flushed to disk with one ``sync`` (one fsync per file would cost more
than the cryptography), then each is renamed over its target, so a crash leaves every file
either as it was or fully rewritten. A file that fails (no key, MAC mismatch, no creation
rule) is reported and left untouched, and the others are still processed.
"""

from __future__ import annotations

import multiprocessing
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reconciler.errors import ConfigError, ReconcilerError
from reconciler.files import expand_paths
from reconciler.progress import QUIET, Progress
from reconciler.sops.age import Identities, load_identities
from reconciler.sops.creation_rules import RuleCache
from reconciler.sops.rekey import rotate_file, update_keys

Operation = Literal["rotate", "updatekeys"]

PARALLEL_FROM = 64
"""Batches smaller than this run in-process."""
CHUNK = 32
"""Files per unit of work handed to a worker."""

_SUFFIXES = (".yaml", ".yml", ".json")
_SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__"})


@dataclass(frozen=True, slots=True)
class FileResult:
    """What happened to one file.

    Attributes:
        path: the file.
        status: ``rotated``, ``updated``, ``unchanged``, ``pending`` (a change computed but
            not written, waiting for confirmation) or ``failed``.
        added / removed: recipients added and removed (``updatekeys``).
        error: the one-line error of a failed file.
        text: the new file text of a ``pending`` file.
        staged: the temporary file holding the new text, renamed over ``path`` at the end.
    """

    path: Path
    status: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    error: str | None = None
    text: str | None = None
    staged: str | None = None


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files named, and SOPS files (``.yaml``/``.yml``/``.json`` with a ``sops`` key) under
    directories named, in a stable order.

    Raises:
        ConfigError: a path does not exist.
    """
    return expand_paths(paths, _walk)


def _walk(root: Path) -> Iterator[Path]:
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if d not in _SKIP_DIRS]
        for name in files:
            if name.endswith(_SUFFIXES) and name not in (".sops.yaml", ".sops.yml"):
                candidate = Path(directory, name)
                if _looks_encrypted(candidate):
                    yield candidate


def _looks_encrypted(path: Path) -> bool:
    """A quick test before parsing: a top-level ``sops:`` key (YAML) or ``"sops"`` (JSON)."""
    try:
        text = path.read_bytes()
    except OSError:
        return False
    return text.startswith(b"sops:") or b"\nsops:" in text or b'"sops":' in text


# Set in the parent before forking; inherited by the workers.
_IDENTITIES: Identities | None = None
_RULES: RuleCache | None = None


def _one(path: Path, operation: Operation, write: bool) -> FileResult:
    identities = _IDENTITIES if _IDENTITIES is not None else load_identities()
    try:
        if operation == "rotate":
            text = rotate_file(path, identities)
            if write:
                return FileResult(path, "rotated", staged=stage_file(path, text))
            return FileResult(path, "pending", text=text)
        update = update_keys(path, identities, rules=_RULES)
        if update.text is None:
            return FileResult(path, "unchanged")
        if write:
            staged = stage_file(path, update.text)
            return FileResult(path, "updated", update.added, update.removed, staged=staged)
        return FileResult(path, "pending", update.added, update.removed, text=update.text)
    except ReconcilerError as exc:
        return FileResult(path, "failed", error=str(exc))


def stage_file(path: Path, text: str) -> str:
    """Write ``text`` to a new temporary file beside ``path`` with its permissions (no fsync:
    :func:`commit` syncs once for all files)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
        os.chmod(tmp, mode)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def commit(staged: Sequence[tuple[str, Path]]) -> None:
    """Flush every staged file to disk (one ``sync``), then rename each over its target."""
    if not staged:
        return
    os.sync()
    for tmp, target in staged:
        os.replace(tmp, target)


def discard(staged: Sequence[tuple[str, Path]]) -> None:
    """Remove staged files (after an interruption)."""
    for tmp, _ in staged:
        Path(tmp).unlink(missing_ok=True)


def _chunk(paths: Sequence[Path], operation: Operation, write: bool) -> list[FileResult]:
    return [_one(path, operation, write) for path in paths]


def run(
    paths: Sequence[Path],
    operation: Operation,
    *,
    write: bool = True,
    identities: Identities | None = None,
    workers: int | None = None,
    progress: Progress = QUIET,
) -> list[FileResult]:
    """Rotate or re-key every file, in parallel when there are many; results in file order.

    Args:
        paths: the files (see :func:`expand`).
        operation: ``rotate`` or ``updatekeys``.
        write: False computes the new texts without writing them (``pending`` results).
        identities: to decrypt with (default: discovered from the environment once).
        workers: processes to use (default: one per CPU; 1 runs in-process).
        progress: reports one stage with a count per file.
    """
    global _IDENTITIES, _RULES
    ids = identities if identities is not None else load_identities()
    count = workers if workers is not None else (os.cpu_count() or 1)
    title = "Rotating data keys" if operation == "rotate" else "Updating recipients"
    results: dict[Path, FileResult] = {}
    with progress.stage(f"{title} of {len(paths)} file(s)", len(paths), unit="file") as stage:
        _IDENTITIES = ids
        _RULES = RuleCache()  # one lookup of .sops.yaml per directory for the whole batch
        try:
            if count <= 1 or len(paths) < PARALLEL_FROM:
                for path in paths:
                    results[path] = _one(path, operation, write)
                    stage.advance()
            else:
                _in_pool(paths, operation, write, count, results, stage.advance)
        except BaseException:
            discard([(r.staged, r.path) for r in results.values() if r.staged is not None])
            raise
        finally:
            _IDENTITIES = None
            _RULES = None
        commit([(r.staged, r.path) for r in results.values() if r.staged is not None])
        failed = sum(1 for r in results.values() if r.status == "failed")
        stage["detail"] = f"{len(paths) - failed} done, {failed} failed"
    return [results[path] for path in paths]


def _in_pool(
    paths: Sequence[Path],
    operation: Operation,
    write: bool,
    workers: int,
    results: dict[Path, FileResult],
    advance: Callable[[int], None],
) -> None:
    size = max(1, min(CHUNK, len(paths) // (workers * 4) or 1))
    chunks = [paths[i : i + size] for i in range(0, len(paths), size)]
    # fork: workers inherit the loaded identities and imported modules (no re-import).
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures: dict[Future[list[FileResult]], int] = {
            pool.submit(_chunk, chunk, operation, write): len(chunk) for chunk in chunks
        }
        for future in as_completed(futures):
            for result in future.result():
                results[result.path] = result
            advance(futures[future])
