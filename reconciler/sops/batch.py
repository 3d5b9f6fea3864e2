"""``secrets rotate`` and ``secrets updatekeys`` over many files, in parallel.

Re-keying a repository after a team change touches every encrypted file. Each file is
independent, so the files are split into chunks handed to worker processes (one per CPU,
forked so the identities loaded once are inherited, not read again per file). Small batches
run in-process, where starting workers would cost more than it saves.

Each file is written atomically on its own; a file that fails (no key, MAC mismatch, no
creation rule) is reported and left untouched, and the others are still processed.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reconciler.errors import ConfigError, ReconcilerError
from reconciler.files import atomic_write
from reconciler.progress import QUIET, Progress
from reconciler.sops.age import Identities, load_identities
from reconciler.sops.operations import rotate_file, update_keys

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
    """

    path: Path
    status: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    error: str | None = None
    text: str | None = None


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files named, and SOPS files (``.yaml``/``.yml``/``.json`` with a ``sops`` key) under
    directories named, in a stable order.

    Raises:
        ConfigError: a path does not exist.
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(_walk(path)))
        elif path.is_file():
            found.append(path)
        else:
            raise ConfigError(f"{path}: no such file or directory")
    unique = dict.fromkeys(found)
    return list(unique)


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


def _one(path: Path, operation: Operation, write: bool) -> FileResult:
    identities = _IDENTITIES if _IDENTITIES is not None else load_identities()
    try:
        if operation == "rotate":
            text = rotate_file(path, identities)
            if write:
                atomic_write(path, text)
            return FileResult(path, "rotated" if write else "pending", text=None if write else text)
        update = update_keys(path, identities)
        if update.text is None:
            return FileResult(path, "unchanged")
        if write:
            atomic_write(path, update.text)
        return FileResult(
            path,
            "updated" if write else "pending",
            update.added,
            update.removed,
            text=None if write else update.text,
        )
    except ReconcilerError as exc:
        return FileResult(path, "failed", error=str(exc))


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
    global _IDENTITIES
    ids = identities if identities is not None else load_identities()
    count = workers if workers is not None else (os.cpu_count() or 1)
    title = "Rotating data keys" if operation == "rotate" else "Updating recipients"
    results: dict[Path, FileResult] = {}
    with progress.stage(f"{title} of {len(paths)} file(s)", len(paths), unit="file") as stage:
        if count <= 1 or len(paths) < PARALLEL_FROM:
            _IDENTITIES = ids
            try:
                for path in paths:
                    results[path] = _one(path, operation, write)
                    stage.advance()
            finally:
                _IDENTITIES = None
        else:
            _IDENTITIES = ids
            try:
                _in_pool(paths, operation, write, count, results, stage.advance)
            finally:
                _IDENTITIES = None
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
