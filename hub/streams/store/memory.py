"""The in-memory store: for tests and throwaway runs. Nothing survives the process.

Writes are applied when called and return an already-resolved awaitable, which gives call-order
ordering for free. Streams keep their events and parameter rows in plain lists (arrival order),
so an append is O(batch) and a page read touches only the items it scans.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Awaitable, Callable, Sequence, TypeVar

from ..models import Event, Page, ParameterData, StreamInfo, StreamProperties, StreamStatus, TopicSummary
from .base import DefinitionKind, StreamStore
from .cursor import check_limit, decode_cursor, encode_cursor
from .parameter_rows import RowValues, join_rows, split_rows
from .resolved import Resolved

T = TypeVar("T")
Item = TypeVar("Item")


@dataclass(slots=True)
class _Stream:
    info: StreamInfo
    events: list[Event] = field(default_factory=list)
    parameter_rows: list[tuple[int, RowValues]] = field(default_factory=list)

    def touch(self, timestamps: Sequence[int], *, reopen: bool) -> None:
        info = self.info
        info.last_activity = time.time()
        if reopen:
            info.status = "open"
        if timestamps:
            low, high = min(timestamps), max(timestamps)
            info.first_timestamp = low if info.first_timestamp is None else min(info.first_timestamp, low)
            info.last_timestamp = high if info.last_timestamp is None else max(info.last_timestamp, high)


def _snapshot(info: StreamInfo) -> StreamInfo:
    """A copy the caller may keep or change without touching the store."""
    return replace(
        info,
        properties=_snapshot_properties(info.properties),
        event_definitions=list(info.event_definitions),
        parameter_definitions=list(info.parameter_definitions),
    )


def _page(
    items: list[Item],
    timestamp_of: Callable[[Item], int],
    from_ts: int | None,
    to_ts: int | None,
    limit: int,
    after: str | None,
) -> tuple[list[Item], str | None]:
    """Up to `limit` items after the cursor whose timestamp is in [from_ts, to_ts), in arrival order;
    the cursor is set only when one more matching item exists (so the last page says None)."""
    check_limit(limit)
    start = decode_cursor(after) + 1
    if from_ts is None and to_ts is None:  # unfiltered: a slice, no scan
        more = start + limit < len(items)
        return items[start : start + limit], encode_cursor(start + limit - 1) if more else None
    page: list[Item] = []
    last = -1
    for index in range(start, len(items)):
        item = items[index]
        timestamp = timestamp_of(item)
        if (from_ts is not None and timestamp < from_ts) or (to_ts is not None and timestamp >= to_ts):
            continue
        if len(page) == limit:
            return page, encode_cursor(last)
        page.append(item)
        last = index
    return page, None


class MemoryStore(StreamStore):
    def __init__(self) -> None:
        # dicts keep insertion order: the streams of a topic list in creation order.
        self._topics: dict[str, dict[str, _Stream]] = {}

    def _stream(self, topic: str, stream_id: str, status: StreamStatus = "open") -> _Stream:
        streams = self._topics.setdefault(topic, {})
        stream = streams.get(stream_id)
        if stream is None:
            stream = streams[stream_id] = _Stream(StreamInfo(topic, stream_id, status=status))
        return stream

    # --- writes -----------------------------------------------------------------------------------

    def append_events(self, topic: str, stream_id: str, events: list[Event]) -> Awaitable[int]:
        stream = self._stream(topic, stream_id)
        stream.events.extend(events)
        stream.info.events += len(events)
        stream.touch([e.timestamp for e in events], reopen=True)
        return Resolved(len(events))

    def append_parameter_data(self, topic: str, stream_id: str, data: ParameterData) -> Awaitable[int]:
        stream = self._stream(topic, stream_id)
        stream.parameter_rows.extend(split_rows(data))
        stream.info.parameter_rows += data.rows
        stream.touch(data.timestamps, reopen=True)
        return Resolved(data.rows)

    def put_properties(
        self, topic: str, stream_id: str, properties: StreamProperties, *, reopen: bool = True
    ) -> Awaitable[StreamInfo]:
        stream = self._stream(topic, stream_id)
        stream.info.properties = _snapshot_properties(properties)
        stream.touch((), reopen=reopen)
        return Resolved(_snapshot(stream.info))

    def close_stream(self, topic: str, stream_id: str) -> Awaitable[StreamInfo]:
        stream = self._stream(topic, stream_id, status="closed")
        stream.info.status = "closed"
        stream.touch((), reopen=False)
        return Resolved(_snapshot(stream.info))

    def set_definitions(
        self, topic: str, stream_id: str, kind: DefinitionKind, definitions: list[dict[str, Any]]
    ) -> Awaitable[StreamInfo]:
        stream = self._stream(topic, stream_id)
        copied = [dict(d) for d in definitions]
        if kind == "events":
            stream.info.event_definitions = copied
        elif kind == "parameters":
            stream.info.parameter_definitions = copied
        else:
            return Resolved.failed(ValueError(f"unknown definition kind {kind!r}"))
        stream.touch((), reopen=False)
        return Resolved(_snapshot(stream.info))

    # --- reads ------------------------------------------------------------------------------------

    async def list_topics(self) -> list[TopicSummary]:
        return [TopicSummary(topic, len(streams)) for topic, streams in sorted(self._topics.items())]

    async def list_streams(self, topic: str) -> list[StreamInfo]:
        return [_snapshot(s.info) for s in self._topics.get(topic, {}).values()]

    async def get_stream(self, topic: str, stream_id: str) -> StreamInfo | None:
        stream = self._topics.get(topic, {}).get(stream_id)
        return None if stream is None else _snapshot(stream.info)

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
        stream = self._topics.get(topic, {}).get(stream_id)
        events = stream.events if stream is not None else []
        items, cursor = _page(events, _event_timestamp, from_ts, to_ts, limit, after)
        return Page(items, cursor)

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
        stream = self._topics.get(topic, {}).get(stream_id)
        rows = stream.parameter_rows if stream is not None else []
        items, cursor = _page(rows, _row_timestamp, from_ts, to_ts, limit, after)
        return Page([join_rows(items)], cursor)


def _event_timestamp(event: Event) -> int:
    return event.timestamp


def _row_timestamp(row: tuple[int, RowValues]) -> int:
    return row[0]


def _snapshot_properties(properties: StreamProperties) -> StreamProperties:
    return replace(properties, metadata=dict(properties.metadata), parents=list(properties.parents))
