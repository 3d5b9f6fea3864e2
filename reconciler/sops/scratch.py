"""Where ``secrets edit`` keeps the plaintext while the editor runs, and how it goes away.

Location: a directory ``reconciler-<uid>`` (0700, owned by the user, not a symlink) in the
first usable of ``$XDG_RUNTIME_DIR`` (per-user tmpfs), ``/dev/shm`` (tmpfs) and the system
temporary directory. A directory of that name that belongs to someone else or is open to
others is passed over. Each edit gets its own ``edit-<pid>-<start>-<random>/`` (0700)
holding the plaintext file (0600); ``<start>`` is the process start time, so a recycled pid
is not mistaken for the editing process.

Cleanup:

* normal exit and errors: the edit directory is removed (with anything the editor left in
  it, such as swap files);
* SIGTERM, SIGHUP, SIGINT: a handler stops the editor, removes the directory, and lets the
  signal act as it would have (the default ends the process; Python's SIGINT handler raises
  KeyboardInterrupt). A signal the process ignores (``nohup``) stays ignored;
* SIGKILL, a crash or a power cut cannot be caught: the plaintext stays in memory-backed
  storage where there is one (never on disk there), and the next edit removes the
  directories of processes that no longer exist before it writes anything.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Final

from reconciler.errors import ConfigError

# Not a shared temp file: only a per-user 0700 directory is ever used under it.
SHM: Final = Path("/dev/shm")  # noqa: S108
SIGNALS: Final = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
EDITOR_GRACE_SECONDS: Final = 2.0
"""How long an editor may take to exit after SIGTERM before it is killed."""

_PREFIX: Final = "edit-"


def candidates(env: Mapping[str, str]) -> list[Path]:
    """Where the private directory may go, best first (memory-backed before disk)."""
    found: list[Path] = []
    runtime = env.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime):
        found.append(Path(runtime))
    found.append(SHM)
    found.append(Path(tempfile.gettempdir()))
    return found


def private_dir(env: Mapping[str, str] | None = None) -> Path:
    """The user's private ``reconciler-<uid>`` directory, created if needed.

    Raises:
        ConfigError: no candidate location can hold a private directory.
    """
    uid = os.getuid()
    for parent in candidates(os.environ if env is None else env):
        if not parent.is_dir():
            continue
        path = parent / f"reconciler-{uid}"
        with contextlib.suppress(FileExistsError, OSError):
            path.mkdir(mode=0o700)
        try:
            info = path.lstat()
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid:
            continue  # a symlink, a file, or someone else's: never write through it
        if stat.S_IMODE(info.st_mode) & 0o077:
            try:
                path.chmod(0o700)
            except OSError:
                continue
        return path
    raise ConfigError(
        "no private directory for the plaintext: none of $XDG_RUNTIME_DIR, /dev/shm or the "
        "temporary directory can hold one owned by this user with mode 0700"
    )


def start_time(pid: int) -> str:
    """The start time of a process (Linux clock ticks since boot); ``"0"`` when unknown."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return "0"
    fields = raw[raw.rfind(b")") + 2 :].split()
    return fields[19].decode("ascii") if len(fields) > 19 else "0"


def _alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, under another user: not our edit, but not provably gone either
    return started == "0" or start_time(pid) in (started, "0")


def sweep(directory: Path) -> list[Path]:
    """Remove the edit directories of processes that no longer run; return what was removed.

    Names that are not ``edit-<pid>-<start>-<random>`` are left alone.
    """
    removed: list[Path] = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return removed
    for entry in entries:
        parts = entry.name.split("-")
        if not entry.name.startswith(_PREFIX) or len(parts) != 4 or not parts[1].isdigit():
            continue
        if _alive(int(parts[1]), parts[2]):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


@dataclass(slots=True)
class PlaintextFile:
    """A decrypted file being edited: where it is, and the editor working on it.

    Use :meth:`open` as a context manager; :meth:`run` starts the editor. Nothing of it
    remains after the ``with`` block, or after SIGTERM, SIGHUP or SIGINT.

    Attributes:
        path: the plaintext file (0600) in its own directory (0700).
        directory: the edit directory, removed as a whole.
    """

    path: Path
    directory: Path
    _editor: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @classmethod
    @contextlib.contextmanager
    def open(
        cls, name: str, text: str, env: Mapping[str, str] | None = None
    ) -> Iterator[PlaintextFile]:
        """Write ``text`` to a new private file called ``name``; remove it when done.

        Leftovers of processes that are gone are removed first.

        Raises:
            ConfigError: no private directory is available.
        """
        base = private_dir(env)
        sweep(base)
        pid = os.getpid()
        directory = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{pid}-{start_time(pid)}-", dir=base))
        self = cls(directory / name, directory)
        with _on_signals(self.discard):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                yield self
            finally:
                self.discard()

    def run(self, argv: Sequence[str]) -> int:
        """Run the editor on the file and wait for it; return its exit status.

        Raises:
            OSError: the editor cannot be started.
        """
        self._editor = subprocess.Popen([*argv, str(self.path)])
        try:
            return self._editor.wait()
        finally:
            self._editor = None

    def discard(self) -> None:
        """Stop the editor if it runs, then remove the edit directory. Safe to repeat."""
        editor = self._editor
        if editor is not None and editor.returncode is None:
            _stop(editor.pid)
        shutil.rmtree(self.directory, ignore_errors=True)


def _stop(pid: int) -> None:
    """SIGTERM a child, give it a moment to restore the terminal, then SIGKILL it; reap it.

    Uses ``os.waitpid`` directly: this runs inside a signal handler that may have
    interrupted ``Popen.wait``, which holds a lock of its own.
    """
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + EDITOR_GRACE_SECONDS
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


@contextlib.contextmanager
def _on_signals(cleanup: Callable[[], None]) -> Iterator[None]:
    """Run ``cleanup`` on SIGTERM/SIGHUP/SIGINT, then let the signal act as it would have.

    Only the main thread can set handlers; elsewhere the caller's ``finally`` is all there
    is. Signals the process ignores are left ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # None: a handler set outside Python, which cannot be restored from here; left alone.
    current = {sig: signal.getsignal(sig) for sig in SIGNALS}
    previous: dict[int, Any] = {
        sig: action
        for sig, action in current.items()
        if action is not None and action != signal.SIG_IGN
    }

    def handler(signum: int, _frame: FrameType | None) -> None:
        cleanup()
        for sig, action in previous.items():
            signal.signal(sig, action)
        # Default action: the process ends here, killed by this signal. Python's SIGINT
        # handler raises KeyboardInterrupt where the main thread was instead.
        signal.raise_signal(signum)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, action in previous.items():
            signal.signal(sig, action)
