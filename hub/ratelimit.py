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
from dataclasses import dataclass
from typing import Callable

# Buckets idle long enough to be full again are forgotten every this many takes, so memory follows
# the pairs active in the last second or so, not every pair ever seen.
_SWEEP_EVERY = 1024


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

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic):
        if not rate > 0:
            raise ValueError(f"rate must be positive, not {rate!r}")
        self.rate = float(rate)
        self.burst = max(1.0, float(burst if burst is not None else rate))
        self.clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._takes = 0

    @property
    def limit(self) -> int:
        return int(self.burst)

    def take(self, user: str, topic: str) -> Decision:
        """Spend one request of (user, topic)'s budget if there is one; say what is left either way."""
        now = self.clock()
        self._takes += 1
        if self._takes % _SWEEP_EVERY == 0:
            self._sweep(now)
        key = (user, topic)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        allowed = bucket.tokens >= 1.0
        if allowed:
            bucket.tokens -= 1.0
        missing = 1.0 - bucket.tokens
        return Decision(
            allowed=allowed,
            limit=self.limit,
            remaining=int(bucket.tokens),
            reset=math.ceil((self.burst - bucket.tokens) / self.rate),
            retry_after=0.0 if allowed else missing / self.rate,
        )

    def _sweep(self, now: float) -> None:
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.updated) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)
