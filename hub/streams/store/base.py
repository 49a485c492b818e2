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
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Awaitable, Literal

from ..models import Event, Page, ParameterData, StreamInfo, StreamProperties, TopicSummary

DefinitionKind = Literal["events", "parameters"]


class StoreUnavailable(Exception):
    """The backend cannot take or serve data right now (e.g. Redis is down). Safe to retry."""


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

    # --- reads ------------------------------------------------------------------------------------

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
    async def read_events(
        self,
        topic: str,
        stream_id: str,
        *,
        from_ts: int | None = None,
        to_ts: int | None = None,
        limit: int = 1000,
        after: str | None = None,
    ) -> Page[Event]:
        """Events in arrival order whose own timestamp is in [from_ts, to_ts), at most `limit`,
        starting after the cursor `after` (from a previous Page.next_cursor). next_cursor is set
        when more matching events may remain. Timestamps need not follow arrival order.
        Raises ValueError for a cursor this store did not make."""

    @abstractmethod
    async def read_parameter_data(
        self,
        topic: str,
        stream_id: str,
        *,
        from_ts: int | None = None,
        to_ts: int | None = None,
        limit: int = 1000,
        after: str | None = None,
    ) -> Page[ParameterData]:
        """Rows in arrival order, filtered and paged as read_events; the page holds one
        ParameterData with at most `limit` rows, each section the union of the names written, None
        where a row lacked the value."""

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open files/connections. Called once before use."""

    async def close(self) -> None:
        """Finish pending writes (their awaitables resolve) and release resources."""
