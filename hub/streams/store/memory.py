"""The in-memory store: for tests and throwaway runs. Nothing survives the process.

Writes are applied when called and return an already-resolved awaitable, which gives call-order
ordering for free. Streams keep their events and parameter rows in plain lists (arrival order),
so an append is O(batch) and a page read touches only the items it scans.

Changes are published to the broadcast at call time too (applied = durable here). Retention drops
items from the front of the lists; `dropped` keeps positions (cursors) stable.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Generic, Iterable, Sequence, TypeVar

from ..models import Event, Page, ParameterData, QuarantinedRow, StreamInfo, StreamProperties, StreamStatus
from ..models import ReadWindow, TopicSummary
from .base import DefinitionKind, IdempotencyRecord, StreamStore
from .broadcast import DEFAULT_MAX_PENDING, Change, ChangeBroadcast, ChangeKind, ChangeSubscription
from .cursor import decode_cursor, encode_cursor
from .parameter_rows import RowValues, join_rows, split_rows
from .resolved import Resolved
from .retention import KEEP_EVERYTHING, Retention, trim_every

#: Idempotency records kept at most (a few hundred bytes each plus the recorded reply); see
#: MemoryStore._idempotency for what happens at the bound.
MAX_IDEMPOTENCY_RECORDS = 100_000

T = TypeVar("T")
Item = TypeVar("Item")


@dataclass(slots=True)
class _Kept(Generic[Item]):
    """Items in arrival order; position of items[i] = dropped + i (the cursor survives trimming)."""

    items: list[Item] = field(default_factory=list)
    dropped: int = 0
    batches: deque[tuple[int, float]] = field(default_factory=deque)  # (end position, arrival time)

    def extend(self, new: Iterable[Item], now: float, retention: Retention) -> int:
        first = self.dropped + len(self.items)
        self.items.extend(new)
        if retention.max_age is not None:
            self.batches.append((self.dropped + len(self.items), now))
        if retention.max_count is not None and len(self.items) > retention.max_count + max(1, retention.max_count // 10):
            self.drop(len(self.items) - retention.max_count)
        return first

    def drop(self, count: int) -> None:
        count = min(count, len(self.items))
        if count > 0:
            del self.items[:count]
            self.dropped += count
        while self.batches and self.batches[0][0] <= self.dropped:
            self.batches.popleft()

    def trim(self, now: float, retention: Retention) -> None:
        if retention.max_count is not None and len(self.items) > retention.max_count:
            self.drop(len(self.items) - retention.max_count)
        if retention.max_age is not None:
            end = None
            while self.batches and self.batches[0][1] < now - retention.max_age:
                end = self.batches.popleft()[0]
            if end is not None:
                self.drop(end - self.dropped)


@dataclass(slots=True)
class _Stream:
    info: StreamInfo
    events: _Kept[Event] = field(default_factory=_Kept)
    parameter_rows: _Kept[tuple[int, RowValues]] = field(default_factory=_Kept)

    def touch(self, timestamps: Sequence[int], *, reopen: bool, now: float | None = None) -> bool:
        """Counters after a write; True when it reopened a closed stream."""
        info = self.info
        info.last_activity = time.time() if now is None else now
        reopened = reopen and info.status == "closed"
        if reopen:
            info.status = "open"
        if timestamps:
            low, high = min(timestamps), max(timestamps)
            info.first_timestamp = low if info.first_timestamp is None else min(info.first_timestamp, low)
            info.last_timestamp = high if info.last_timestamp is None else max(info.last_timestamp, high)
        return reopened


def _page(
    items: list[Item], timestamp_of: Callable[[Item], int], window: ReadWindow, dropped: int = 0
) -> Page[Item]:
    """Up to `window.limit` items after the cursor whose timestamp is in the window, in arrival
    order; the cursor is set only when one more matching item exists (so the last page says None).
    items[i] is at position dropped + i."""
    limit = window.limit
    start = max(decode_cursor(window.after) + 1 - dropped, 0)
    if not window.filtered:  # a slice, no scan
        page = items[start : start + limit]
        last = encode_cursor(dropped + start + len(page) - 1) if page else None
        return Page(page, last if start + limit < len(items) else None, last)
    found: list[Item] = []
    last_index = -1
    admits = window.admits
    for index in range(start, len(items)):
        item = items[index]
        if not admits(timestamp_of(item)):
            continue
        if len(found) == limit:
            return Page(found, encode_cursor(dropped + last_index), encode_cursor(dropped + last_index))
        found.append(item)
        last_index = index
    return Page(found, None, encode_cursor(dropped + last_index) if found else None)


class MemoryStore(StreamStore):
    def __init__(
        self,
        retention: Retention = KEEP_EVERYTHING,
        trim_interval: float = 60.0,
        *,
        max_idempotency_records: int = MAX_IDEMPOTENCY_RECORDS,
    ) -> None:
        if max_idempotency_records < 1:
            raise ValueError(f"max_idempotency_records must be at least 1, not {max_idempotency_records!r}")
        # dicts keep insertion order: the streams of a topic list in creation order.
        self._topics: dict[str, dict[str, _Stream]] = {}
        self._quarantine: dict[str, list[QuarantinedRow]] = {}
        # (scope, key) -> (record, expiry), oldest write first. Expired records go at each trim pass.
        # Bound: max_idempotency_records; one record past it drops the oldest written (a retry of
        # that operation then runs again, as after its expiry).
        self._idempotency: OrderedDict[tuple[str, str], tuple[IdempotencyRecord, float]] = OrderedDict()
        self.max_idempotency_records = max_idempotency_records
        self.retention = retention
        self.trim_interval = trim_interval
        self.changes = ChangeBroadcast()
        self._trimmer: asyncio.Task[None] | None = None

    def _stream(self, topic: str, stream_id: str, status: StreamStatus = "open") -> tuple[_Stream, bool]:
        """The stream and whether it was created now."""
        streams = self._topics.setdefault(topic, {})
        stream = streams.get(stream_id)
        if stream is None:
            stream = streams[stream_id] = _Stream(StreamInfo(topic, stream_id, status=status))
            return stream, True
        return stream, False

    def _publish_stream(self, stream: _Stream) -> None:
        info = stream.info
        if self.changes.wants(info.topic, info.stream_id):
            self.changes.publish(Change(ChangeKind.STREAM, info.topic, info.stream_id, info=info.copy()))

    # --- writes -----------------------------------------------------------------------------------

    def append_events(self, topic: str, stream_id: str, events: list[Event]) -> Awaitable[int]:
        stream, created = self._stream(topic, stream_id)
        now = time.time()
        first = stream.events.extend(events, now, self.retention)
        stream.info.events += len(events)
        reopened = stream.touch([e.timestamp for e in events], reopen=True, now=now)
        if self.changes.count and self.changes.wants(topic, stream_id):
            if created or reopened:
                self._publish_stream(stream)
            if events:
                cursors = [encode_cursor(first + i) for i in range(len(events))]
                self.changes.publish(Change(ChangeKind.EVENTS, topic, stream_id, events=list(events), cursors=cursors))
        return Resolved(len(events))

    def append_parameter_data(self, topic: str, stream_id: str, data: ParameterData) -> Awaitable[int]:
        stream, created = self._stream(topic, stream_id)
        now = time.time()
        first = stream.parameter_rows.extend(split_rows(data), now, self.retention)
        stream.info.parameter_rows += data.rows
        reopened = stream.touch(data.timestamps, reopen=True, now=now)
        if self.changes.count and self.changes.wants(topic, stream_id):
            if created or reopened:
                self._publish_stream(stream)
            if data.rows:
                cursors = [encode_cursor(first + i) for i in range(data.rows)]
                change = Change(ChangeKind.PARAMETERS, topic, stream_id, parameter_data=data, cursors=cursors)
                self.changes.publish(change)
        return Resolved(data.rows)

    def put_properties(
        self, topic: str, stream_id: str, properties: StreamProperties, *, reopen: bool = True
    ) -> Awaitable[StreamInfo]:
        stream, _ = self._stream(topic, stream_id)
        stream.info.properties = properties.copy()
        stream.touch((), reopen=reopen)
        self._publish_stream(stream)
        return Resolved(stream.info.copy())

    def close_stream(self, topic: str, stream_id: str) -> Awaitable[StreamInfo]:
        stream, _ = self._stream(topic, stream_id, status="closed")
        stream.info.status = "closed"
        stream.touch((), reopen=False)
        self._publish_stream(stream)
        return Resolved(stream.info.copy())

    def set_definitions(
        self, topic: str, stream_id: str, kind: DefinitionKind, definitions: list[dict[str, Any]]
    ) -> Awaitable[StreamInfo]:
        stream, _ = self._stream(topic, stream_id)
        copied = [dict(d) for d in definitions]
        if kind == DefinitionKind.EVENTS:
            stream.info.event_definitions = copied
        elif kind == DefinitionKind.PARAMETERS:
            stream.info.parameter_definitions = copied
        else:
            return Resolved.failed(ValueError(f"unknown definition kind {kind!r}"))
        stream.touch((), reopen=False)
        self._publish_stream(stream)
        return Resolved(stream.info.copy())

    def append_quarantine(self, topic: str, rows: list[QuarantinedRow]) -> Awaitable[int]:
        self._quarantine.setdefault(topic, []).extend(rows)
        return Resolved(len(rows))

    # --- reads ------------------------------------------------------------------------------------

    async def read_quarantine(
        self, topic: str, window: ReadWindow = ReadWindow(), newest_first: bool = False
    ) -> Page[QuarantinedRow]:
        rows = self._quarantine.get(topic, [])
        if not newest_first:
            return _page(rows, _no_timestamp, window.positions_only())
        # rows[i] is at position i (the quarantine is never trimmed); a cursor continues before it.
        end = len(rows) if window.after is None else min(decode_cursor(window.after), len(rows))
        start = max(end - window.limit, 0)
        last = encode_cursor(start) if start < end else None
        return Page(rows[start:end][::-1], last if start > 0 else None, last)

    async def list_topics(self) -> list[TopicSummary]:
        return [TopicSummary(topic, len(streams)) for topic, streams in sorted(self._topics.items())]

    async def list_streams(self, topic: str) -> list[StreamInfo]:
        return [s.info.copy() for s in self._topics.get(topic, {}).values()]

    async def get_stream(self, topic: str, stream_id: str) -> StreamInfo | None:
        stream = self._topics.get(topic, {}).get(stream_id)
        return None if stream is None else stream.info.copy()

    async def read_events(self, topic: str, stream_id: str, window: ReadWindow = ReadWindow()) -> Page[Event]:
        stream = self._topics.get(topic, {}).get(stream_id)
        kept = stream.events if stream is not None else _Kept()
        return _page(kept.items, _event_timestamp, window, kept.dropped)

    async def read_parameter_data(
        self, topic: str, stream_id: str, window: ReadWindow = ReadWindow()
    ) -> Page[ParameterData]:
        stream = self._topics.get(topic, {}).get(stream_id)
        kept = stream.parameter_rows if stream is not None else _Kept()
        page = _page(kept.items, _row_timestamp, window, kept.dropped)
        return Page([join_rows(page.items)], page.next_cursor, page.last_cursor)

    # --- live changes -----------------------------------------------------------------------------

    async def subscribe(
        self, topic: str | None = None, stream_id: str | None = None, *, max_pending: int = DEFAULT_MAX_PENDING
    ) -> ChangeSubscription:
        return self.changes.subscribe(topic, stream_id, max_pending)

    # --- idempotency ------------------------------------------------------------------------------

    def claim_idempotency(
        self, scope: str, key: str, fingerprint: str, lease: float, attempt: str = ""
    ) -> Awaitable[IdempotencyRecord | None]:
        now = time.time()
        found = self._idempotency.get((scope, key))
        if found is not None and found[1] > now:
            return Resolved(found[0])
        self._keep_record((scope, key), IdempotencyRecord(fingerprint, None, attempt.encode()), now + lease)
        return Resolved(None)

    def finish_idempotency(
        self, scope: str, key: str, fingerprint: str, status: int, body: bytes, ttl: float
    ) -> Awaitable[None]:
        self._keep_record((scope, key), IdempotencyRecord(fingerprint, status, body), time.time() + ttl)
        return Resolved(None)

    def _keep_record(self, at: tuple[str, str], record: IdempotencyRecord, expires: float) -> None:
        records = self._idempotency
        if at in records:
            records.move_to_end(at)  # the order stays the order of writing
        else:
            while len(records) >= self.max_idempotency_records:
                records.popitem(last=False)  # O(1); expired ones elsewhere go at the next trim pass
        records[at] = (record, expires)

    def _drop_expired(self, now: float) -> None:
        expired = [k for k, (_, expires) in self._idempotency.items() if expires <= now]
        for k in expired:
            del self._idempotency[k]

    def cache_sizes(self) -> dict[str, int]:
        return {"idempotency records": len(self._idempotency)}

    def release_idempotency(self, scope: str, key: str, fingerprint: str, attempt: str = "") -> Awaitable[None]:
        found = self._idempotency.get((scope, key))
        if found is not None and found[0] == IdempotencyRecord(fingerprint, None, attempt.encode()):
            del self._idempotency[(scope, key)]
        return Resolved(None)

    # --- retention and lifecycle ------------------------------------------------------------------

    async def trim(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if self.retention.enabled:
            for streams in self._topics.values():
                for stream in streams.values():
                    stream.events.trim(now, self.retention)
                    stream.parameter_rows.trim(now, self.retention)
        self._drop_expired(now)

    async def start(self) -> None:
        self._trimmer = asyncio.create_task(trim_every(self, self.trim_interval))

    async def close(self) -> None:
        if self._trimmer is not None:
            self._trimmer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._trimmer
            self._trimmer = None
        self.changes.close()


def _no_timestamp(row: QuarantinedRow) -> int:  # never called: quarantine reads are unfiltered
    return 0


def _event_timestamp(event: Event) -> int:
    return event.timestamp


def _row_timestamp(row: tuple[int, RowValues]) -> int:
    return row[0]


