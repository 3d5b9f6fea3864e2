"""Reading the actual state in a forked process while this one loads the manifests.

A warm-cache plan of a large fleet spends about as long reading and checking the database's
rows as taking its manifests from the cache, and both are Python work that one process does
one after the other. :class:`ReadApart` forks a process, before the load starts, that runs
the read (:func:`~reconciler.commands.inputs.read_snapshot_batches`: one read-only
snapshot, visibility checked first, every ciphertext's binding checked) and keeps the rows
as plain values, pickled a batch at a time (bytes take less memory than the values they
hold); this process takes the batches once its load is done and makes the model
objects of each as it arrives.

The forked process is only a faster way to the same rows, never a second opinion: when it
fails in any way (an error, a lost connection, a crash, a message that is not a batch, no
end marker) the caller drops whatever it sent and reads the rows itself, in this process,
where any error is raised and reported as usual. Only this process's own fork is ever
unpickled, as :mod:`multiprocessing` does between its processes; nothing is read from disk.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from reconciler.crypto.fingerprint import Fingerprinter
from reconciler.model.plan import Selectors
from reconciler.store.read import RowBatch
from reconciler.store.session import Database
from reconciler.store.visibility import Access


class ReadApart:
    """One forked process reading the actual state; see the module docstring.

    Use :meth:`start`, then :meth:`receive` once; :meth:`close` stops the process if it
    still runs (``receive`` closes it too).
    """

    def __init__(self, process: BaseProcess, connection: Connection) -> None:
        self._process = process
        self._connection = connection

    @classmethod
    def start(
        cls,
        db: Database,
        selectors: Selectors,
        fingerprint: Fingerprinter,
        access: Access,
    ) -> ReadApart | None:
        """Fork the reading process; None where forking is not safe (threads running, no
        ``fork`` start method), and the caller reads in this process."""
        if threading.active_count() > 1 or "fork" not in multiprocessing.get_all_start_methods():
            return None
        # (multiprocessing flushes this process's stdout and stderr before it forks, so the
        # child never writes what was buffered here a second time.)
        receiving, sending = multiprocessing.Pipe(duplex=False)
        process = multiprocessing.get_context("fork").Process(
            target=_read_and_send,
            args=(db, selectors, fingerprint, access, sending),
            name="reconciler-read",
            daemon=True,
        )
        process.start()
        sending.close()  # this process only receives: the child's exit then reads as EOF
        return cls(process, receiving)

    def receive(self, take: Callable[[RowBatch], None]) -> bool:
        """Give ``take`` each batch the process read, in order (waits for them); False when
        the process failed (what ``take`` was given is then not the whole state)."""
        try:
            while blob := self._connection.recv_bytes():
                batch = pickle.loads(blob)  # noqa: S301 - from this process's own fork
                if not isinstance(batch, RowBatch):
                    return False
                take(batch)
        except (EOFError, OSError, pickle.UnpicklingError):
            return False
        finally:
            self.close()
        return True

    def close(self) -> None:
        """Stop the process if it still runs and wait for it. Idempotent."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._connection.close()


def _read_and_send(
    db: Database,
    selectors: Selectors,
    fingerprint: Fingerprinter,
    access: Access,
    sending: Connection,
) -> None:
    """The forked process: read, send the batches and the end marker, or exit without a
    word (and without the marker) on any failure.

    The pooled connections it inherited belong to the parent: it drops them unclosed (closing
    would end the parent's sessions) and opens its own.
    """
    from reconciler.commands.inputs import read_snapshot_batches

    db.engine.dispose(close=False)
    blobs: list[bytes] = []
    try:
        read_snapshot_batches(
            db,
            selectors,
            fingerprint,
            access,
            lambda batch: blobs.append(pickle.dumps(batch, pickle.HIGHEST_PROTOCOL)),
        )
        for blob in blobs:
            sending.send_bytes(blob)
        sending.send_bytes(b"")  # the end: everything was read and sent
    except BaseException:  # the parent reads again itself, and reports what goes wrong
        os._exit(1)
