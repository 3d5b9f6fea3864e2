"""Notifications of how an apply ended, sent to the targets configured in ``reconciler.yaml``."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TextIO

from reconciler.model.plan import Plan
from reconciler.notify import event_document, send
from reconciler.settings import Settings


def announce(
    settings: Settings,
    event: str,
    summary: str,
    p: Plan | None,
    details: Mapping[str, Any],
    stderr: TextIO,
) -> None:
    """Send one event to the configured targets; report failures on ``stderr``, never raise."""
    if not settings.notify:
        return
    doc = event_document(event, summary=summary, plan=p, details=details)
    for delivery in send(settings.notify, event, doc):
        if delivery.error is not None:
            print(
                f"warning: notification {event} to {delivery.url} failed after "
                f"{delivery.attempts} attempt(s): {delivery.error}",
                file=sys.stderr if stderr is None else stderr,
            )
