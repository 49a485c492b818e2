"""One app's metrics: its own CollectorRegistry (never the global one: several apps may share a
process, as tests do), what fills it, and how the app wires it.

Counting on the hot paths is a plain addition on an object the counted code holds (SignalRMetrics,
WrittenCounts, a Counter of refusals); the families are made from those when scraped. The store's
commit durations use prometheus_client's Histogram, which is thread-safe (sqlite commits on its
writer thread) and costs little at one observation per commit.
- `hub_store_commit_duration_seconds`: a group commit (sqlite) or a pipeline (redis);
- `hub_store_up`: what GET /ready says, asked when scraped;
- `hub_rate_limited_total{source}`: requests over --rate-limit;
- `hub_refused_total{reason}`: max_connections, max_streams, max_invocations, header_timeout,
  head_too_large (a connection closed for falling behind is in signalr_connections_closed_total);
- the process collector: RSS, CPU seconds, open file descriptors.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..ratelimit import RateLimiter
from ..signalr.connections import ConnectionSlots
from ..signalr.dispatcher import HubDispatcher
from ..streams.store.base import StreamStore
from .durations import BUCKETS
from .http import HttpRequestMetrics
from .signalr import SignalRMetrics, signalr_families
from .writes import SOURCES, WrittenCounts, written_families

REFUSALS = ("max_connections", "max_streams", "max_invocations", "header_timeout", "head_too_large")


class HubMetrics(Collector):
    def __init__(
        self,
        store: StreamStore,
        slots: ConnectionSlots,
        limiter: RateLimiter | None,
        refused: Counter[str],
        untimed: Iterable[tuple[str, str]] = (),
    ):
        """`refused`: the HTTP edge's refusals by reason (hub/http_edge.py counts into it);
        `untimed`: (method, route) pairs of HTTP requests held open on purpose."""
        self.registry = CollectorRegistry()
        self.store = store
        self.slots = slots
        self.limiter = limiter
        self.refused = refused
        self.hubs: list[SignalRMetrics] = []
        self.written: dict[str, WrittenCounts] = {source: WrittenCounts() for source in SOURCES}
        self.store_up = True
        self.http = HttpRequestMetrics(self.registry, untimed)
        commits = Histogram("hub_store_commit_duration_seconds", "A store commit: a sqlite group commit or a Redis pipeline.",
                            registry=self.registry, buckets=BUCKETS)
        store.observe_commits(commits.observe)
        ProcessCollector(registry=self.registry)
        self.registry.register(self)

    def observe(self, dispatcher: HubDispatcher) -> None:
        """Count what `dispatcher`'s hub does (its connections and invocations), logging as before."""
        observer = SignalRMetrics(dispatcher.observer.hub, (m.name for m in dispatcher.methods.values()))
        dispatcher.observer = observer
        self.hubs.append(observer)

    def tally(self, source: str) -> WrittenCounts:
        """What a StreamService of `source` (one of SOURCES) tells of its writes."""
        return self.written[source]

    async def before_scrape(self) -> None:
        self.store_up = await self.store.ready()

    def collect(self) -> Iterable[Metric]:
        yield from signalr_families(self.hubs)
        yield from written_families(self.written)
        yield GaugeMetricFamily("hub_store_up", "1 while the store can take writes (what GET /ready says), else 0.",
                                value=1 if self.store_up else 0)
        limited = CounterMetricFamily("hub_rate_limited", "Requests and invocations refused by --rate-limit.",
                                      labels=["source"])
        by_source = self.limiter.refused if self.limiter is not None else Counter()
        for source in SOURCES:
            limited.add_metric([source], by_source[source])
        yield limited
        refusals = self.refused + Counter({"max_connections": self.slots.refused})
        for hub in self.hubs:
            refusals.update(hub.refusals)
        refused = CounterMetricFamily("hub_refused", "Clients refused or held back by a bound, by which.", labels=["reason"])
        for reason in REFUSALS:
            refused.add_metric([reason], refusals[reason])
        yield refused

    def describe(self) -> Iterable[Metric]:
        return ()  # families vary with the hubs observed; the names are checked by the tests
