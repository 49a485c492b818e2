"""The stream store interface. Every backend (memory, sqlite, redis) keeps these promises, and
tests/contract runs one suite against all of them.

Promises common to every method:
- Writes (the methods that return an Awaitable without being `async def`) are *ordered at call
  time*: the store applies writes in the order the calls were made in this process, whatever order
  their awaitables are awaited in. This is what lets a connection pipeline invocations and still find
  batch 1 stored before batch 2.
- The awaitable of a write resolves once the write is as durable as the backend promises
  (memory: applied; sqlite: the transaction holding it is committed; redis: the server replied).
  It raises StoreUnavailable when the write could not be made durable: such a write must never be
  acknowledged to a client.
- A write to a stream that does not exist creates it (status open). A data write to a closed stream
  reopens it.
- Reads see every write whose awaitable has resolved.
- Live changes (subscribe) are published once a write is durable, in write order, to every
  subscriber of any process sharing the data (redis); a slow subscriber is ended, never waited for.

Every backend implements every method here, the quarantine (append_quarantine/read_quarantine:
per topic, in arrival order, paged by an opaque cursor like the data reads) included; a new backend
must too, and tests/contract covers them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Awaitable, Callable

from ..models import Event, Page, ParameterData, QuarantinedRow, ReadWindow, StreamInfo, StreamProperties, TopicSummary
from .broadcast import DEFAULT_MAX_PENDING, ChangeSubscription



class DefinitionKind(StrEnum):
    """Which definitions of a stream a write replaces."""

    EVENTS = "events"
    PARAMETERS = "parameters"


class StoreUnavailable(Exception):
    """The backend cannot take or serve data right now (e.g. Redis is down). Safe to retry."""


@dataclass(slots=True, frozen=True)
class IdempotencyRecord:
    """What a store keeps for an idempotency key, so that an operation retried under the same key
    runs once: the fingerprint of the operation that claimed the key and, once it finished, its
    outcome as the caller gave it (`status` a code, None while the operation still runs; `body`
    opaque bytes). The store gives neither a meaning (hub/http_api/idempotency.py does)."""

    fingerprint: str
    status: int | None = None
    body: bytes = b""


class StreamStore(ABC):
    # --- writes: ordered at call time, durable when awaited -----------------------------------

    @abstractmethod
    def append_events(self, topic: str, stream_id: str, events: list[Event]) -> Awaitable[int]:
        """Append events in list order after everything already in the stream. All or nothing.
        Resolves to the number appended. O(len(events))."""

    @abstractmethod
    def append_parameter_data(self, topic: str, stream_id: str, data: ParameterData) -> Awaitable[int]:
        """Append the rows of `data` in order. All or nothing. Resolves to the number of rows."""

    @abstractmethod
    def put_properties(
        self, topic: str, stream_id: str, properties: StreamProperties, *, reopen: bool = True
    ) -> Awaitable[StreamInfo]:
        """Create the stream if new, and replace its properties. Resolves to its info."""

    @abstractmethod
    def close_stream(self, topic: str, stream_id: str) -> Awaitable[StreamInfo]:
        """Mark the stream closed (creating it, closed, if new). Idempotent."""

    @abstractmethod
    def set_definitions(
        self, topic: str, stream_id: str, kind: DefinitionKind, definitions: list[dict[str, Any]]
    ) -> Awaitable[StreamInfo]:
        """Replace the event or parameter definitions of the stream (creating it if new)."""

    @abstractmethod
    def append_quarantine(self, topic: str, rows: list[QuarantinedRow]) -> Awaitable[int]:
        """Append rows to the topic's quarantine (one per topic, whatever stream each row names),
        in list order after everything already there. All or nothing. Ordered at call time and
        durable when awaited like every write. Does not create a stream or a topic listing.
        Resolves to the number appended. O(len(rows))."""

    # --- reads ------------------------------------------------------------------------------------

    @abstractmethod
    async def read_quarantine(
        self, topic: str, window: ReadWindow = ReadWindow(), newest_first: bool = False
    ) -> Page[QuarantinedRow]:
        """The topic's quarantined rows in arrival order, at most `window.limit`, after the cursor
        `window.after` (its timestamp bounds do not apply). next_cursor is set when more may remain.
        With `newest_first` the order is reversed: the newest row first, and a cursor continues with
        the rows that arrived before it. Empty for an unknown topic. Raises ValueError for a cursor
        this store did not make."""

    @abstractmethod
    async def list_topics(self) -> list[TopicSummary]:
        """Every topic with at least one stream, sorted by name."""

    @abstractmethod
    async def list_streams(self, topic: str) -> list[StreamInfo]:
        """The streams of a topic in creation order (empty for an unknown topic)."""

    @abstractmethod
    async def get_stream(self, topic: str, stream_id: str) -> StreamInfo | None:
        """One stream's info, None when unknown."""

    @abstractmethod
    async def read_events(self, topic: str, stream_id: str, window: ReadWindow = ReadWindow()) -> Page[Event]:
        """Events in arrival order whose own timestamp is in the window, at most `window.limit`,
        starting after the cursor `window.after`. next_cursor is set when more matching events may
        remain. Timestamps need not follow arrival order. Raises ValueError for a cursor this store
        did not make."""

    @abstractmethod
    async def read_parameter_data(
        self, topic: str, stream_id: str, window: ReadWindow = ReadWindow()
    ) -> Page[ParameterData]:
        """Rows in arrival order, filtered and paged as read_events; the page holds one
        ParameterData with at most `window.limit` rows, each section the union of the names written, None
        where a row lacked the value."""

    # --- live changes ---------------------------------------------------------------------------

    @abstractmethod
    async def subscribe(
        self, topic: str | None = None, stream_id: str | None = None, *, max_pending: int = DEFAULT_MAX_PENDING
    ) -> ChangeSubscription:
        """Changes of the matching streams (None = every topic / every stream) made durable after
        this call returns, in write order. At most `max_pending` wait unread: past that the
        subscription ends with SubscriptionOverflow. Close it when done."""

    # --- idempotency records (ordered at call time and durable when awaited, like writes) -----------

    @abstractmethod
    def claim_idempotency(
        self, scope: str, key: str, fingerprint: str, lease: float, attempt: str = ""
    ) -> Awaitable[IdempotencyRecord | None]:
        """Resolves None when no live record exists for (scope, key): a pending record is stored,
        which lives `lease` seconds unless finished (the caller goes on and runs the operation); its
        body is `attempt` (names this try, so that only its own release drops it).
        Otherwise resolves the existing record (pending or finished), unchanged."""

    @abstractmethod
    def finish_idempotency(
        self, scope: str, key: str, fingerprint: str, status: int, body: bytes, ttl: float
    ) -> Awaitable[None]:
        """Store the outcome of the operation that claimed the key; the record lives `ttl` seconds."""

    @abstractmethod
    def release_idempotency(self, scope: str, key: str, fingerprint: str, attempt: str = "") -> Awaitable[None]:
        """Drop the pending claim of this fingerprint and attempt (the operation failed in a way worth
        retrying); a finished record, or another attempt's claim, stays."""

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open files/connections. Called once before use."""

    async def trim(self, now: float | None = None) -> None:
        """Apply retention now (as if the clock read `now`) and drop expired idempotency records.
        Stores also do this on their own, in passes."""

    def cache_sizes(self) -> dict[str, int]:
        """Entries now in each in-process cache the store keeps per stream or per key (name ->
        size). Each has a bound stated where it is declared; the data itself is not a cache."""
        return {}

    async def ready(self) -> bool:
        """Whether the store can take writes now (GET /ready). Never raises."""
        return True

    def observe_commits(self, observe: Callable[[float], None]) -> None:
        """Call `observe(seconds)` for each commit of a group of writes (a sqlite transaction, a Redis
        pipeline), maybe from another thread. A store that commits nothing (memory) never calls it."""

    async def close(self) -> None:
        """Finish pending writes (their awaitables resolve) and release resources."""
