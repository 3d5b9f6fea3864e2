"""Notifications: POST what happened to the targets of ``reconciler.yaml`` ``notify:``.

Events: ``applied``, ``blocked`` (by policy: risk, breakers), ``failed`` (an error, nothing
written), ``drift`` (the database differs from git), ``approval-needed`` (blocked for want of
approvals). The content is the plan's, which holds no secret (sensitive fields are
masked); text is escaped of control characters.

Delivery is bounded: each attempt has the target's timeout, and a failed attempt (no answer,
a connection error, a 5xx or 429) is retried twice with a short pause. A notification never
fails or undoes what it reports: failures are returned (and written on stderr by the
caller), never raised.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler import __version__
from reconciler.escape import printable
from reconciler.model.plan import Plan
from reconciler.settings import NotifyTarget

ATTEMPTS = 3
RETRY_PAUSE_SECONDS = 0.5
MAX_CHANGES_LISTED = 50


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of sending one event to one target (``error`` None: delivered)."""

    url: str
    event: str
    attempts: int
    error: str | None = None


def event_document(
    event: str,
    *,
    summary: str,
    plan: Plan | None = None,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The generic JSON body: event, one-line summary, details, and the plan's changes."""
    doc: dict[str, Any] = {
        "event": event,
        "summary": summary,
        "reconciler_version": __version__,
        "details": dict(details or {}),
    }
    if plan is not None:
        doc["plan"] = {
            "summary": plan.summary(),
            "revision": plan.revision,
            "author": plan.author,
            "changes": [
                {
                    "address": str(c.address),
                    "action": c.action.value,
                    "risk": c.risk.level.value,
                    "reasons": [r.code for r in c.risk.reasons],
                    "fields": [f.to_dict() for f in c.fields],
                }
                for c in plan.changes[:MAX_CHANGES_LISTED]
            ],
            "changes_not_listed": max(0, len(plan.changes) - MAX_CHANGES_LISTED),
        }
    return doc


def slack_document(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook body (``text`` plus one line per change) for ``doc``."""
    lines = [f"*reconciler {doc['event']}*: {doc['summary']}"]
    plan = doc.get("plan")
    if plan:
        for c in plan["changes"]:
            lines.append(f"• {c['action']} `{c['address']}` [{c['risk']}]")
        if plan["changes_not_listed"]:
            lines.append(f"… and {plan['changes_not_listed']} more")
    return {"text": "\n".join(printable(line) for line in lines)}


Sender = Callable[[str, bytes, float], int]


def _post(url: str, body: bytes, timeout: float) -> int:
    request = urllib.request.Request(  # noqa: S310 - the URL is checked to be http(s)
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": f"reconciler/{__version__}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def send(
    targets: Sequence[NotifyTarget],
    event: str,
    doc: Mapping[str, Any],
    *,
    sender: Sender = _post,
    pause: float = RETRY_PAUSE_SECONDS,
) -> list[Delivery]:
    """Send ``doc`` to every target subscribed to ``event``; never raises for a target."""
    deliveries = []
    for target in targets:
        if event not in target.events:
            continue
        payload = slack_document(doc) if target.format == "slack" else dict(doc)
        body = json.dumps(payload, ensure_ascii=False).encode()
        error: str | None = None
        attempt = 0
        for attempt in range(1, ATTEMPTS + 1):
            try:
                status = sender(target.url, body, target.timeout_seconds)
            except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections
                error = printable(str(getattr(exc, "reason", exc)))[:200]
            else:
                if 200 <= status < 300:
                    error = None
                    break
                error = f"HTTP {status}"
                if status < 500 and status != 429:
                    break  # the target refuses this request: trying again will not help
            if attempt < ATTEMPTS:
                time.sleep(pause * attempt)
        deliveries.append(Delivery(_shown_url(target.url), event, attempt, error))
    return deliveries


def _shown_url(url: str) -> str:
    # Webhook URLs often carry their secret in the path (Slack): show scheme and host only.
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].rsplit('@', 1)[-1]}/..."
