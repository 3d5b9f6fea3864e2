"""A local fake platform API: ``http.server`` in a thread, answering per path prefix.

Each answer is ``(status, delay_seconds)``; every request is recorded (path and the
``Authorization`` header) so tests can check what a probe sent. ``silent_port()`` gives a
port that accepts connections and never answers (the "no answer" case).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class FakePlatform:
    """Answers by path prefix (longest first); 404 for anything else."""

    answers: dict[str, tuple[int, float]] = field(default_factory=dict)
    seen: list[tuple[str, str | None]] = field(default_factory=list)
    port: int = 0
    active: int = 0
    most_active: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        """The root URL (``http://127.0.0.1:PORT``)."""
        return f"http://127.0.0.1:{self.port}"

    def answer(self, path: str) -> tuple[int, float]:
        for prefix in sorted(self.answers, key=len, reverse=True):
            if path.startswith(prefix):
                return self.answers[prefix]
        return 404, 0.0


@contextmanager
def fake_platform(answers: dict[str, tuple[int, float]]) -> Iterator[FakePlatform]:
    """Run a :class:`FakePlatform` on a free local port for the ``with`` block."""
    platform = FakePlatform(dict(answers))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with platform._lock:
                platform.seen.append((self.path, self.headers.get("Authorization")))
                platform.active += 1
                platform.most_active = max(platform.most_active, platform.active)
            try:
                status, delay = platform.answer(self.path)
                time.sleep(delay)
            finally:
                # Done before the answer is sent: once the client has it, it may start its
                # next request, which must not count as overlapping this one.
                with platform._lock:
                    platform.active -= 1
            try:
                body = b'{"ok": true}' if status < 400 else b'{"error": "x"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client gave up (timeout)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    platform.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield platform
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (the backlog) and never sends a byte."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def closed_port() -> int:
    """A local port nothing listens on (connection refused)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port
