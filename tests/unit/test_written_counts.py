"""`WrittenCounts` (hub/metrics/writes.py), the hub_*_written counters: a write counts once it is
settled and only if it succeeded, whether the store answered at call time (`Resolved`) or with a
future that settles later; futures are counted without a callback, at the scrape or a sweep, and
the ones kept stay within the writes in flight plus SWEEP_EVERY."""

from __future__ import annotations

import asyncio

from hub.metrics.writes import EVENTS, PARAMETER_ROWS, QUARANTINED, SWEEP_EVERY, WrittenCounts
from hub.streams.store.resolved import Resolved


async def test_settled_successful_writes_count_failed_and_cancelled_ones_do_not() -> None:
    loop = asyncio.get_running_loop()
    counts = WrittenCounts()
    counts.events(Resolved(3))
    counts.events(Resolved.failed(ValueError("not stored")))
    later, failed, cancelled, in_flight = (loop.create_future() for _ in range(4))
    for written in (later, failed, cancelled, in_flight):
        counts.events(written)
    counts.parameter_rows(loop.create_future())
    done_rows = loop.create_future()
    counts.parameter_rows(done_rows)
    quarantined = loop.create_future()
    quarantined.set_result(4)  # settled before it was told
    counts.quarantined(quarantined)
    assert counts.counts() == [3, 0, 4]
    later.set_result(5)
    failed.set_exception(OSError("disk full"))
    cancelled.cancel()
    done_rows.set_result(7)
    assert counts.counts() == [8, 7, 4]  # in_flight not yet
    in_flight.set_result(1)
    assert counts.counts()[EVENTS] == 9
    assert counts.counts() == [9, 7, 4]  # counted once however often it is read


async def test_kept_futures_stay_within_the_writes_in_flight_plus_the_sweep_bound() -> None:
    loop = asyncio.get_running_loop()
    counts = WrittenCounts()
    stuck = loop.create_future()  # a write that never settles keeps only itself
    counts.events(stuck)
    total = 0
    for k in range(10 * SWEEP_EVERY):
        written = loop.create_future()
        counts.events(written)
        written.set_result(2)
        total += 2
        assert counts.kept(EVENTS) <= 1 + SWEEP_EVERY
    assert counts.counts()[EVENTS] == total
    assert counts.kept(EVENTS) == 1
    in_flight = [loop.create_future() for _ in range(3 * SWEEP_EVERY)]  # many in flight at once
    for written in in_flight:
        counts.events(written)
        assert counts.kept(EVENTS) <= len(in_flight) + 1 + SWEEP_EVERY
    for written in in_flight:
        written.set_result(1)
    assert counts.counts()[EVENTS] == total + len(in_flight)
    assert (counts.kept(EVENTS), counts.kept(PARAMETER_ROWS), counts.kept(QUARANTINED)) == (1, 0, 0)
