"""The SignalR metrics: a `HubObserver` per hub that counts as well as logs, and their families.

- `signalr_connections{hub,transport,protocol}`: connections past their handshake, read when scraped;
- `signalr_connections_opened_total{hub,transport}`, `signalr_connections_closed_total{hub,reason}`
  (reason: a CloseReason);
- `signalr_invocations_total{hub,method,outcome}` (ok, error; a name the hub has no method of is
  `method="unknown"`), `signalr_invocation_duration_seconds{hub,method}` from the invocation read to
  its Completion queued (server-to-client streams are not timed: they last as long as the reader);
- `hub_send_queue_messages`: messages waiting to be written to clients, all connections, when scraped.
Every label value comes from a closed set: method names, transports, protocols, close reasons.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter
from typing import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from ..signalr.close_reason import CloseReason
from ..signalr.observer import HubObserver, ObservedConnection
from ..signalr.protocols import PROTOCOLS
from ..signalr.transports import TRANSPORTS
from .durations import BUCKETS, Durations

UNKNOWN = "unknown"
_TRANSPORTS = tuple(t.name for t in TRANSPORTS)


class MethodCounts:
    """One hub method's invocations: answered ok, answered with an error, and their durations."""

    __slots__ = ("ok", "error", "durations")

    def __init__(self) -> None:
        self.ok = 0
        self.error = 0
        self.durations = Durations()


class SignalRMetrics(HubObserver):
    """Logs as HubObserver does, and counts. `methods`: the names of the hub's methods."""

    def __init__(self, hub: str, methods: Iterable[str]):
        super().__init__(hub)
        # By method name, and by a target as clients send it (the name, or lower-cased: SignalR
        # matches names case-insensitively); other spellings are looked up lower-cased, never kept.
        self.methods: dict[str, MethodCounts] = {name: MethodCounts() for name in sorted({*methods, UNKNOWN})}
        self.by_target: dict[str, MethodCounts] = {}
        for name, counts in self.methods.items():
            if name != UNKNOWN:
                self.by_target[name] = self.by_target[name.lower()] = counts
        self.opened: Counter[str] = Counter({t: 0 for t in _TRANSPORTS})
        self.closed: Counter[str] = Counter({str(r): 0 for r in CloseReason})
        self.refusals: Counter[str] = Counter()
        self.live: set[ObservedConnection] = set()

    def connected(self, conn: ObservedConnection) -> None:
        super().connected(conn)
        self.live.add(conn)
        self.opened[conn.transport.name] += 1

    def disconnected(self, conn: ObservedConnection) -> None:
        super().disconnected(conn)
        self.live.discard(conn)
        self.closed[str(conn.session.close_reason or CloseReason.NORMAL)] += 1

    def completed(self, method: str | None, ok: bool, started: float | None) -> None:
        # The hot path: one lookup, two additions, one bisect (Durations.observe, inlined).
        counts = self.by_target.get(method) if method else None
        if counts is None:
            counts = self.by_target.get(method.lower()) if method else None
            counts = counts or self.methods[UNKNOWN]
        if ok:
            counts.ok += 1
        else:
            counts.error += 1
        if started is not None:
            seconds = time.perf_counter() - started
            durations = counts.durations
            durations.counts[bisect_left(BUCKETS, seconds)] += 1
            durations.total += seconds

    def refused(self, reason: str) -> None:
        self.refusals[reason] += 1


def signalr_families(hubs: list[SignalRMetrics]) -> Iterable[Metric]:
    connections = GaugeMetricFamily(
        "signalr_connections", "SignalR connections past their handshake.", labels=["hub", "transport", "protocol"]
    )
    opened = CounterMetricFamily("signalr_connections_opened", "SignalR connections that finished their handshake.",
                                 labels=["hub", "transport"])
    closed = CounterMetricFamily("signalr_connections_closed", "SignalR connections ended, by why.", labels=["hub", "reason"])
    invocations = CounterMetricFamily("signalr_invocations", "Hub method invocations answered, by outcome.",
                                      labels=["hub", "method", "outcome"])
    durations = HistogramMetricFamily(
        "signalr_invocation_duration_seconds", "From an invocation read to its Completion queued (streams excluded).",
        labels=["hub", "method"],
    )
    queued = 0
    for hub in hubs:
        now: Counter[tuple[str, str]] = Counter({(t, p): 0 for t in _TRANSPORTS for p in PROTOCOLS})
        for conn in hub.live:
            protocol = conn.protocol
            now[conn.transport.name, protocol.name if protocol is not None else UNKNOWN] += 1
            queued += conn.session.queued
        for (transport, protocol), count in sorted(now.items()):
            connections.add_metric([hub.hub, transport, protocol], count)
        for transport, count in sorted(hub.opened.items()):
            opened.add_metric([hub.hub, transport], count)
        for reason, count in sorted(hub.closed.items()):
            closed.add_metric([hub.hub, reason], count)
        for method, counts in hub.methods.items():
            invocations.add_metric([hub.hub, method, "ok"], counts.ok)
            invocations.add_metric([hub.hub, method, "error"], counts.error)
            counts.durations.add_to(durations, [hub.hub, method])
    yield from (connections, opened, closed, invocations, durations)
    yield GaugeMetricFamily("hub_send_queue_messages", "Server-to-client messages waiting to be written, all connections.",
                            value=queued)
