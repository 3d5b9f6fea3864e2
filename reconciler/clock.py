"""The wall clock, behind a seam tests can fix.

The verbs take a ``clock`` argument (any :class:`Clock`) defaulting to :data:`SYSTEM`; a test
passes :class:`FixedClock` to get reproducible timestamps in plans and apply runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Something that tells the current time as an aware UTC datetime."""

    def __call__(self) -> datetime: ...


def system_clock() -> datetime:
    """The machine's clock, in UTC."""
    return datetime.now(UTC)


SYSTEM: Clock = system_clock
"""The default clock of every verb."""


@dataclass(frozen=True, slots=True)
class FixedClock:
    """A clock stopped at ``moment`` (an aware datetime), for tests and reproducible output."""

    moment: datetime

    def __call__(self) -> datetime:
        return self.moment.astimezone(UTC)


def now_utc(clock: Clock = SYSTEM) -> datetime:
    """The current time from ``clock`` (the system clock unless given)."""
    return clock()


def rfc3339(moment: datetime) -> str:
    """``moment`` in UTC to the second, as plans and reports print it: ``2026-01-02T03:04:05Z``."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
