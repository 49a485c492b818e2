"""`hub_events_written_total{source}`, `hub_parameter_rows_written_total`, `hub_rows_quarantined_total`:
what each entry point's StreamService wrote, counted once the store made it durable.

A `WrittenCounts` is the `WriteTally` (hub/streams/service.py) of one source; a write that fails is
not counted. Stores answer with a settled `Resolved` (memory) or an asyncio Future (sqlite, redis).
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any, Awaitable, Iterable

from prometheus_client.core import CounterMetricFamily, Metric

from ..streams.store.resolved import Resolved

EVENTS, PARAMETER_ROWS, QUARANTINED = 0, 1, 2

#: The entry points, each a `source` label value.
SOURCES = ("signalr", "http", "tinybird", "eventhubs")


class WrittenCounts:
    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts = [0, 0, 0]  # EVENTS, PARAMETER_ROWS, QUARANTINED

    def events(self, written: Awaitable[int]) -> None:
        self._count(written, EVENTS)

    def parameter_rows(self, written: Awaitable[int]) -> None:
        self._count(written, PARAMETER_ROWS)

    def quarantined(self, written: Awaitable[int]) -> None:
        self._count(written, QUARANTINED)

    def _count(self, written: Any, kind: int) -> None:
        if type(written) is Resolved:  # applied at call time (memory): the hot path, no callback
            try:
                self.counts[kind] += written.result()
            except Exception:  # noqa: BLE001 - not written: its caller hears why
                pass
        elif written.done():
            self._settled(kind, written)
        else:
            written.add_done_callback(partial(self._settled, kind))

    def _settled(self, kind: int, written: Any) -> None:
        try:
            self.counts[kind] += written.result()
        except (Exception, asyncio.CancelledError):  # noqa: BLE001 - not written: its caller hears why
            pass


def written_families(by_source: dict[str, WrittenCounts]) -> Iterable[Metric]:
    events = CounterMetricFamily(
        "hub_events_written", "Events made durable in the store, by entry point.", labels=["source"]
    )
    for source, counts in by_source.items():
        events.add_metric([source], counts.counts[EVENTS])
    yield events
    yield CounterMetricFamily(
        "hub_parameter_rows_written", "Parameter data rows made durable in the store.", value=_sum(by_source, PARAMETER_ROWS)
    )
    yield CounterMetricFamily(
        "hub_rows_quarantined", "Lenient rows (NDJSON, drop-in senders) kept in a topic's quarantine instead of stored.",
        value=_sum(by_source, QUARANTINED),
    )


def _sum(by_source: dict[str, WrittenCounts], kind: int) -> int:
    return sum(counts.counts[kind] for counts in by_source.values())


