"""The clock seam: a fixed clock gives reproducible timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from reconciler.clock import SYSTEM, FixedClock, now_utc, rfc3339


def test_fixed_clock_returns_its_moment_in_utc() -> None:
    moment = datetime(2026, 1, 2, 8, 4, 5, tzinfo=timezone(timedelta(hours=5)))
    clock = FixedClock(moment)
    assert now_utc(clock) == moment
    assert now_utc(clock).tzinfo is UTC
    assert rfc3339(now_utc(clock)) == "2026-01-02T03:04:05Z"


def test_system_clock_is_aware_utc() -> None:
    before = datetime.now(UTC)
    moment = now_utc()
    assert moment.tzinfo is UTC
    assert before <= moment <= datetime.now(UTC)
    assert SYSTEM() >= moment


def test_rfc3339_drops_fractions_of_a_second() -> None:
    assert rfc3339(datetime(2026, 5, 6, 7, 8, 9, 999_999, tzinfo=UTC)) == "2026-05-06T07:08:09Z"
