"""A histogram of durations that costs one bisect and two additions to fill.

prometheus_client's Histogram takes a lock and walks its buckets on every observation (about 0.7 µs);
an invocation of one event costs about 18 µs in all (bench/RESULTS.md), so the hot path keeps plain
counts here, on the event loop's thread only, and a collector turns them into a family when scraped.
"""

from __future__ import annotations

from bisect import bisect_left

from prometheus_client.core import HistogramMetricFamily

#: Upper bounds in seconds: from a write applied at call time (well under a millisecond) to a store
#: that stalls for its timeout (--store-timeout, 10 s by default).
BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Durations:
    """Counts per bucket (the last: above every bound) and their sum. Not thread-safe: fill it from
    one thread."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BUCKETS, seconds)] += 1  # le: a value on a bound falls in that bucket
        self.total += seconds

    def add_to(self, family: HistogramMetricFamily, labels: list[str]) -> None:
        """One labelled histogram of `family`: cumulative buckets, +Inf, sum."""
        running = 0
        buckets: list[tuple[str, float]] = []
        for bound, count in zip((*map(repr, BUCKETS), "+Inf"), self.counts):
            running += count
            buckets.append((bound, running))
        family.add_metric(labels, buckets, self.total)
