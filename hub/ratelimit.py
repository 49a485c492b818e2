"""Rate limiting per token and topic: one token bucket per (user, topic), shared by every entry point.

`--rate-limit N` gives each (user, topic) pair a bucket of N requests (at least 1) that refills at N
per second; an HTTP request or a SignalR invocation naming the topic takes one. No I/O and no
awaits: the clock is a parameter, so the arithmetic is tested with plain numbers. The HTTP routes
turn a Decision into X-RateLimit-* headers (and a 429 with Retry-After), the Writer hub into a
Completion error; both say when to retry.
"""

from __future__ import annotations

import math
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Callable

# Buckets idle long enough to be full again are forgotten every this many takes, so memory follows
# the pairs active in the last second or so, not every pair ever seen.
_SWEEP_EVERY = 1024

#: Buckets kept at most (~200 B each). A new pair at the bound drops the least recently used bucket
#: (usually full again, so nothing is lost; if not, its pair starts again from a full bucket: at most
#: one burst more, for the pair idle longest). Nobody is refused for want of room. O(1).
MAX_BUCKETS = 100_000


@dataclass(slots=True, frozen=True)
class Decision:
    allowed: bool
    limit: int  # requests a full bucket holds
    remaining: int  # whole requests left after this one
    reset: int  # seconds until the bucket is full again (rounded up)
    retry_after: float  # seconds until one request is allowed again; 0 when allowed

    @property
    def retry_after_seconds(self) -> int:
        """Retry-After as HTTP wants it: whole seconds, at least 1."""
        return max(1, math.ceil(self.retry_after))

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_seconds)
        return headers


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by (user, topic). `rate` requests per second, bursts up to `burst`
    (default: one second's worth, at least 1)."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_buckets: int = MAX_BUCKETS,
    ):
        if not rate > 0:
            raise ValueError(f"rate must be positive, not {rate!r}")
        if max_buckets < 1:
            raise ValueError(f"max_buckets must be at least 1, not {max_buckets!r}")
        self.max_buckets = max_buckets
        self.rate = float(rate)
        self.burst = max(1.0, float(burst if burst is not None else rate))
        self.clock = clock
        # least recently used first (OrderedDict: dropping from the front stays O(1))
        self._buckets: OrderedDict[tuple[str, str], _Bucket] = OrderedDict()
        self._takes = 0
        self.refused: Counter[str] = Counter()  # requests refused, by source ("http", "signalr", ...): a metric

    @property
    def limit(self) -> int:
        return int(self.burst)

    def take(self, user: str, topic: str, source: str = "http") -> Decision:
        """Spend one request of (user, topic)'s budget if there is one; say what is left either way.
        `source`: the entry point asking, counted in `refused` when refused."""
        now = self.clock()
        self._takes += 1
        if self._takes % _SWEEP_EVERY == 0:
            self._sweep(now)
        key = (user, topic)
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            while len(buckets) >= self.max_buckets:
                buckets.popitem(last=False)
            bucket = buckets[key] = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            buckets.move_to_end(key)
        allowed = bucket.tokens >= 1.0
        if allowed:
            bucket.tokens -= 1.0
        else:
            self.refused[source] += 1
        missing = 1.0 - bucket.tokens
        return Decision(
            allowed=allowed,
            limit=self.limit,
            remaining=int(bucket.tokens),
            reset=math.ceil((self.burst - bucket.tokens) / self.rate),
            retry_after=0.0 if allowed else missing / self.rate,
        )

    def _sweep(self, now: float) -> None:
        """Forget buckets full again, from the least recently used on, up to the first one that is
        not: every bucket idle a full refill (burst / rate) or longer goes, in O(dropped)."""
        buckets = self._buckets
        while buckets:
            bucket = next(iter(buckets.values()))
            if bucket.tokens + (now - bucket.updated) * self.rate < self.burst:
                return
            buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)
