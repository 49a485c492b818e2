"""`hub_events_written_total{source}`, `hub_parameter_rows_written_total`, `hub_rows_quarantined_total`:
what each entry point's StreamService wrote, counted once the store made it durable.

A `WrittenCounts` is the `WriteTally` (hub/streams/service.py) of one source; a write that fails is
not counted. Stores answer with a settled `Resolved` (memory), counted at once, or an asyncio Future
(sqlite, redis), kept and counted once settled, without a done-callback of its own (a callback is a
Handle and a loop pass per write): the kept futures are swept when scraped and whenever enough have
gathered since the last sweep.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Iterable

from prometheus_client.core import CounterMetricFamily, Metric

from ..streams.store.resolved import Resolved

EVENTS, PARAMETER_ROWS, QUARANTINED = 0, 1, 2

#: The entry points, each a `source` label value.
SOURCES = ("signalr", "http", "tinybird", "eventhubs")

# The bound on settled futures kept per kind: a sweep runs when this many more than the last sweep
# left (writes still in flight, which their store holds anyway) have gathered; it counts every
# settled one and keeps only those still in flight, so the memory is the writes in flight plus this.
SWEEP_EVERY = 1024


class WrittenCounts:
    __slots__ = ("_counts", "_kept", "_sweep_at")

    def __init__(self) -> None:
        self._counts = [0, 0, 0]  # EVENTS, PARAMETER_ROWS, QUARANTINED
        self._kept: tuple[list[Any], list[Any], list[Any]] = ([], [], [])  # futures not counted yet, by kind
        self._sweep_at = [SWEEP_EVERY, SWEEP_EVERY, SWEEP_EVERY]

    def events(self, written: Awaitable[int]) -> None:
        self._count(written, EVENTS)

    def parameter_rows(self, written: Awaitable[int]) -> None:
        self._count(written, PARAMETER_ROWS)

    def quarantined(self, written: Awaitable[int]) -> None:
        self._count(written, QUARANTINED)

    def counts(self) -> list[int]:
        """Events, parameter rows, quarantined rows written so far (by every settled write)."""
        for kind in (EVENTS, PARAMETER_ROWS, QUARANTINED):
            self._sweep(kind)
        return self._counts

    def kept(self, kind: int) -> int:
        """Futures of `kind` kept, not counted yet (in flight, or settled since the last sweep)."""
        return len(self._kept[kind])

    def _count(self, written: Any, kind: int) -> None:
        if type(written) is Resolved:  # applied at call time (memory): the hot path
            try:
                self._counts[kind] += written.result()
            except Exception:  # noqa: BLE001 - not written: its caller hears why
                pass
            return
        kept = self._kept[kind]
        kept.append(written)
        if len(kept) >= self._sweep_at[kind]:
            self._sweep(kind)

    def _sweep(self, kind: int) -> None:
        in_flight = []
        total = 0
        for written in self._kept[kind]:
            if not written.done():
                in_flight.append(written)
                continue
            try:
                total += written.result()
            except (Exception, asyncio.CancelledError):  # noqa: BLE001 - not written: its caller hears why
                pass
        self._counts[kind] += total
        self._kept[kind][:] = in_flight
        self._sweep_at[kind] = len(in_flight) + SWEEP_EVERY


def written_families(by_source: dict[str, WrittenCounts]) -> Iterable[Metric]:
    counted = {source: counts.counts() for source, counts in by_source.items()}  # one sweep each a scrape
    events = CounterMetricFamily(
        "hub_events_written", "Events made durable in the store, by entry point.", labels=["source"]
    )
    for source, counts in counted.items():
        events.add_metric([source], counts[EVENTS])
    yield events
    yield CounterMetricFamily(
        "hub_parameter_rows_written", "Parameter data rows made durable in the store.", value=_sum(counted, PARAMETER_ROWS)
    )
    yield CounterMetricFamily(
        "hub_rows_quarantined", "Lenient rows (NDJSON, drop-in senders) kept in a topic's quarantine instead of stored.",
        value=_sum(counted, QUARANTINED),
    )


def _sum(counted: dict[str, list[int]], kind: int) -> int:
    return sum(counts[kind] for counts in counted.values())
