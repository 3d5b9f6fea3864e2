"""Safe file reading and atomic file writing, shared by every part that touches files.

Reading (:func:`read_file`) opens only regular files, never through a final symbolic link
and without blocking on a FIFO, and stops at a size limit; :func:`read_text` reads a file
the user names directly as UTF-8 text. Writing (:func:`atomic_write`)
goes through a temporary file in the target's directory, fsynced and renamed over the
target, so a crash never leaves half a file.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from reconciler.errors import ConfigError
from reconciler.yaml_source import MAX_FILE_BYTES

NOT_REGULAR = "RCN-F005"
"""Rule id: a symbolic link, FIFO, socket or device where a manifest or directory belongs."""

NOT_REGULAR_HINT = "only regular files and directories inside the manifests root are read"

# O_NONBLOCK: opening a FIFO must not wait for a writer (fstat then refuses it).
# O_NOFOLLOW: the file opened is the one discovery saw, never a link's target.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class UnsafeFile(ConfigError):
    """A file to read is not a regular file, or is a link (``RCN-F005``); one line."""


def read_file(path: Path | str, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file ``path``: at most ``limit + 1`` of them.

    The file is opened without following a final symbolic link and without blocking (a
    FIFO), and checked with ``fstat`` before anything is read. A file larger than ``limit``
    yields its first ``limit + 1`` bytes, which the YAML reader refuses as too large
    (``RCN-Y004``) without the rest ever being read.

    Raises:
        UnsafeFile: a link, FIFO, socket, device or directory, or a file that cannot be
            opened; the message names the file and the rule.
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        raise UnsafeFile(f"{path}: {_open_problem(exc)} [{NOT_REGULAR}]") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            what = file_kind(info.st_mode)
            raise UnsafeFile(f"{path}: {what}; {NOT_REGULAR_HINT} [{NOT_REGULAR}]")
        chunks: list[bytes] = []
        total = 0
        # The whole file plus one byte: a file is read in one call, and its end confirmed by
        # a second one asking for a single byte (no large buffer per file).
        want = min(info.st_size, limit) + 1
        while total <= limit:
            if total == want:  # it grew since fstat: read on, up to the limit
                want = limit + 1
            chunk = os.read(fd, want - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    except OSError as exc:
        raise UnsafeFile(f"{path}: cannot read: {exc.strerror} [{NOT_REGULAR}]") from None
    finally:
        os.close(fd)


def _open_problem(exc: OSError) -> str:
    if exc.errno in (errno.ELOOP, errno.EMLINK):  # O_NOFOLLOW on a link (Linux, BSD)
        return f"is a symbolic link; {NOT_REGULAR_HINT}"
    if exc.errno == errno.ENXIO:
        return f"is a socket or device; {NOT_REGULAR_HINT}"
    return f"cannot open: {exc.strerror}"


def file_kind(mode: int) -> str:
    """What a non-regular file is, for a message."""
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    if stat.S_ISDIR(mode):
        return "is a directory"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "is a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device"
    return "is not a regular file"


def read_text(path: str | os.PathLike[str]) -> str:
    """The whole file at ``path`` as UTF-8 text (a plain read: links are followed, no limit).

    Raises:
        ConfigError: ``<path>: cannot read: <reason>`` or ``<path>: not UTF-8 text``.
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None


def atomic_write(
    path: str | os.PathLike[str],
    data: str | bytes | Iterable[bytes],
    *,
    mode: int | None = None,
    keep_mode: bool = True,
) -> None:
    """Replace ``path`` with ``data`` atomically: a crash leaves the old file or the new one.

    The data goes to a temporary file in the target's directory (created ``O_EXCL``, mode
    0600), is fsynced, and is renamed over the target. With ``keep_mode`` the result has the
    target's current permissions, or for a new file ``mode`` (default 0o644) less the umask;
    without it the file keeps the temporary file's 0600. Text is written as UTF-8 with line
    endings untouched; an iterable of byte strings is written piece by piece, as it is
    produced (a large file is then never held whole). On any failure (the iterable's
    included) the temporary file is removed and the error raised.
    """
    target = Path(path)
    final_mode: int | None = None
    if keep_mode:
        try:
            final_mode = stat.S_IMODE(target.stat().st_mode)
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            final_mode = (0o644 if mode is None else mode) & ~umask
    pieces: Iterable[bytes]
    if isinstance(data, str):
        pieces = (data.encode("utf-8"),)
    elif isinstance(data, bytes):
        pieces = (data,)
    else:
        pieces = data
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            for piece in pieces:
                handle.write(piece)
            handle.flush()
            os.fsync(handle.fileno())
        if final_mode is not None:
            os.chmod(tmp, final_mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def expand_paths(paths: Iterable[Path], walk: Callable[[Path], Iterable[Path]]) -> list[Path]:
    """The files named, and those ``walk`` finds under the directories named, in a stable
    order (each directory's sorted), each once.

    Raises:
        ConfigError: a path does not exist.
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(walk(path)))
        elif path.is_file():
            found.append(path)
        else:
            raise ConfigError(f"{path}: no such file or directory")
    return list(dict.fromkeys(found))
