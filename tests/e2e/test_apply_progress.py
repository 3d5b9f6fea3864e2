"""The "Reading database" and "Applying N change(s)" stages count their work, so a terminal
shows a bar with counts for them as it does for loading manifests."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from reconciler import commands, progress
from reconciler.progress import Progress, Stage
from reconciler.settings import load_settings
from tests.e2e.workspace import Workspace, stripe_manifest


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal (so the live bar is drawn)."""

    def isatty(self) -> bool:
        return True


class _Recording(Progress):
    """Progress on a fake terminal that keeps every stage it ran."""

    def __init__(self) -> None:
        self.terminal = _Terminal()
        super().__init__(self.terminal)
        self.stages: dict[str, Stage] = {}

    @contextmanager
    def stage(self, title: str, total: int | None = None, *, unit: str = "") -> Iterator[Stage]:
        with super().stage(title, total, unit=unit) as stage:
            self.stages[title] = stage
            yield stage


def test_reading_and_applying_count_rows(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    for tenant in ("acme", "globex"):
        ws.write(tenant, "stripe", stripe_manifest(tenant))
    ws.enter(monkeypatch)
    monkeypatch.setattr(progress, "LIVE_AFTER", 0)  # draw the bar at once
    # A terminal as people have one: CI runs set CI, which turns the bar off.
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    manifests = Path("manifests")

    first = _Recording()
    result = commands.apply(manifests_dir=manifests, settings=load_settings(), progress=first)
    changes = len(result.plan.changes)
    assert changes == 4  # an integration and a webhook per tenant
    assert first.live
    applying = first.stages[f"Applying {changes} change(s)"]
    # Each change is a row written, then its audit row.
    assert (applying.total, applying.done, applying.unit) == (2 * changes, 2 * changes, "row")
    assert applying._bar is not None and applying._bar.n == 2 * changes
    assert first.stages["Reading database"].done == 0

    second = _Recording()
    again = commands.plan(manifests_dir=manifests, settings=load_settings(), progress=second)
    assert not again.plan.changes
    reading = second.stages["Reading database"]
    assert reading.done == 4 and reading.unit == "row"
    assert reading._bar is not None and reading._bar.n == 4
    assert "Reading database... 4 rows" in second.terminal.getvalue()
