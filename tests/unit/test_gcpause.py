"""Pausing the cyclic collector: the block runs without it, and what it allocated does not
wait to be scanned by the first allocation afterwards."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from reconciler.gcpause import gc_paused, paused_gc


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


@pytest.mark.usefixtures("collector_on")
def test_the_collector_is_off_in_the_block_and_on_after() -> None:
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():  # nested: the outer block decides
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


@pytest.mark.usefixtures("collector_on")
def test_what_the_block_allocated_is_not_scanned_by_the_next_allocation() -> None:
    started: list[int] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    kept: list[list[int]] = []

    @gc_paused
    def allocate() -> None:
        kept.extend([i] for i in range(50_000))
        assert gc.get_count()[0] >= 50_000  # counted as new while the collector is off

    gc.callbacks.append(record)
    try:
        allocate()
        after = [[i] for i in range(10)]  # a few allocations after the block
    finally:
        gc.callbacks.remove(record)
    # Handed to the oldest generation unscanned: no collection ran (the collector is off
    # in the block, so any collection recorded here ran after it).
    assert started == []
    assert gc.get_count()[0] < 100
    assert len(kept) == 50_000 and len(after) == 10


def test_a_disabled_collector_stays_disabled() -> None:
    was = gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()
