"""Notifications: JSON and Slack bodies with masked content, bounded retries, never raising."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from reconciler.model.enums import Environment, Platform, RiskLevel
from reconciler.model.plan import (
    Action,
    Address,
    Change,
    FieldChange,
    Plan,
    ResourceKind,
    Risk,
)
from reconciler.notify import event_document, send, slack_document
from reconciler.settings import NotifyTarget

PLAN = Plan(
    created_at="2026-12-01T00:00:00Z",
    manifests_digest="m",
    actual_fingerprint="a",
    changes=(
        Change(
            Address("acme", Platform.STRIPE, Environment.PRODUCTION, ResourceKind.WEBHOOK, "b"),
            Action.UPDATE,
            (FieldChange("signing_secret", "(sensitive)", "(sensitive)", sensitive=True),),
            Risk(RiskLevel.HIGH),
        ),
    ),
)


class Server:
    """Answers each POST with the next status of ``statuses`` (then 204), after ``delay``."""

    def __init__(self, statuses: list[int], delay: float = 0.0) -> None:
        self.bodies: list[dict[str, Any]] = []
        bodies, pending = self.bodies, list(statuses)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                time.sleep(delay)
                self.send_response(pending.pop(0) if pending else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/secret-path-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ok() -> Iterator[Server]:
    s = Server([])
    yield s
    s.close()


def test_json_and_slack_bodies_carry_the_masked_plan(ok: Server) -> None:
    doc = event_document("applied", summary="applied 1 update", plan=PLAN, details={"run": "r"})
    targets = [NotifyTarget(ok.url), NotifyTarget(ok.url, format="slack")]
    assert [d.error for d in send(targets, "applied", doc)] == [None, None]
    generic, slack = ok.bodies
    assert generic["event"] == "applied" and generic["details"] == {"run": "r"}
    change = generic["plan"]["changes"][0]
    assert change["address"] == "acme/stripe/production/webhook/b" and change["risk"] == "HIGH"
    assert change["fields"][0]["after"] == "(sensitive)"
    assert slack == slack_document(doc)
    assert "acme/stripe/production/webhook/b" in slack["text"] and "[HIGH]" in slack["text"]


def test_events_filter_targets(ok: Server) -> None:
    doc = event_document("drift", summary="drift")
    assert send([NotifyTarget(ok.url, events=("applied",))], "drift", doc) == []
    assert ok.bodies == []


def test_server_errors_are_retried_then_reported_without_raising() -> None:
    flaky = Server([503, 502])
    try:
        (delivery,) = send([NotifyTarget(flaky.url)], "failed", {"event": "failed"}, pause=0)
        assert delivery.error is None and delivery.attempts == 3
        broken = Server([500, 500, 500, 500])
        (failed,) = send([NotifyTarget(broken.url)], "failed", {"event": "failed"}, pause=0)
        broken.close()
        assert failed.error == "HTTP 500" and failed.attempts == 3
        # The URL's path (where webhook secrets live) is not repeated in reports.
        assert "secret-path-token" not in failed.url
    finally:
        flaky.close()


def test_a_client_error_is_not_retried() -> None:
    refusing = Server([404])
    try:
        (delivery,) = send([NotifyTarget(refusing.url)], "drift", {"event": "drift"}, pause=0)
        assert delivery.error == "HTTP 404" and delivery.attempts == 1
    finally:
        refusing.close()


def test_timeouts_bound_the_wait() -> None:
    slow = Server([], delay=1.0)
    try:
        started = time.monotonic()
        target = NotifyTarget(slow.url, timeout_seconds=0.2)
        (delivery,) = send([target], "applied", {"event": "applied"}, pause=0)
        assert delivery.error is not None and delivery.attempts == 3
        assert time.monotonic() - started < 3
    finally:
        slow.close()


def test_dead_target_is_reported() -> None:
    dead = Server([])
    url = dead.url
    dead.close()
    (delivery,) = send([NotifyTarget(url)], "applied", {"event": "applied"}, pause=0)
    assert delivery.error is not None
