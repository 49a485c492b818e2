"""The stream service: what every entry point calls to write, read and follow streams.

It validates raw decoded values into models (raising ValidationError before anything reaches the
store) and hands them to the store. Write methods are plain functions returning the store's
awaitable, so the order of calls is the order of writes even when a connection pipelines them.
Reads page through the store; live changes come from the store's change broadcast
(store/broadcast.py), and one stream's live events from an EventFollower (event_follower.py).
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from typing import Any, AsyncIterable, AsyncIterator, Awaitable, Callable, Protocol, TypeVar

from .errors import ValidationError
from .event_follower import follow_events
from .lenient import LenientBatch, LenientRows
from .models import Event, Page, ParameterData, QuarantinedRow, ReadWindow, StreamInfo, TopicSummary
from .store.base import DefinitionKind, StreamStore
from .store.broadcast import DEFAULT_MAX_PENDING, ChangeSubscription
from .validation import check_name, parse_definitions, parse_event_item, parse_event_rows, parse_events
from .validation import parse_parameter_data, parse_parameter_data_item, parse_properties, parse_timestamp

T = TypeVar("T")


class WriteTally(Protocol):
    """Told of every data write as it is handed to the store: each awaitable resolves to the
    events, parameter rows or quarantined rows it wrote (hub/metrics counts them once durable)."""

    def events(self, written: Awaitable[int]) -> None: ...

    def parameter_rows(self, written: Awaitable[int]) -> None: ...

    def quarantined(self, written: Awaitable[int]) -> None: ...


class StreamService:
    """Writes, reads and live changes of the streams in one store, validated at the door.
    `tally`: told of every data write (one service per entry point, see `tallied`)."""

    def __init__(self, store: StreamStore, tally: WriteTally | None = None):
        self.store = store
        self.tally = tally

    def tallied(self, tally: WriteTally) -> StreamService:
        """The same service over the same store, telling `tally` of its writes."""
        return StreamService(self.store, tally)

    # --- writes: validated now, ordered now, durable when awaited ---------------------------------

    def send_events(self, topic: str, stream_id: str, raw_events: Any) -> Awaitable[int]:
        _check_stream(topic, stream_id)
        return self._append_events(topic, stream_id, parse_events(raw_events))

    def send_event_batches(self, topic: str, batches: list[tuple[str, Any]]) -> Awaitable[int]:
        """Events for several streams of one topic, as (stream id, raw events) pairs: every batch is
        validated before any is written (all or nothing), then appended in order. Resolves to the
        number of events once all are durable."""
        check_name(topic, "topic")
        parsed: list[tuple[str, list[Event]]] = []
        for stream_id, raw_events in batches:
            check_name(stream_id, "streamId")
            parsed.append((stream_id, parse_events(raw_events)))
        total = sum(len(events) for _, events in parsed)
        return _then(_all([self._append_events(topic, s, events) for s, events in parsed]), total)

    def send_event_rows(self, topic: str, stream_id: str, rows: LenientRows) -> LenientBatch:
        """A lenient batch: valid rows are appended as events in order; each bad one goes to the
        topic's quarantine with its line and reason instead of failing the batch."""
        _check_stream(topic, stream_id)
        now = time.time()
        events, rejected = parse_event_rows(rows)
        quarantined = [
            QuarantinedRow(stream_id, rows.line_of(index), _utf8(reason), _utf8(rows.raw_of(index)), now)
            for index, reason in rejected
        ]
        writes: list[Awaitable[Any]] = []
        if events:  # a batch of only bad rows creates no stream
            writes.append(self._append_events(topic, stream_id, events))
        if quarantined:
            written = self.store.append_quarantine(topic, quarantined)
            if self.tally is not None:
                self.tally.quarantined(written)
            writes.append(written)
        return LenientBatch(len(events), len(quarantined), _all(writes))

    def send_parameter_data(self, topic: str, stream_id: str, raw: Any) -> Awaitable[int]:
        _check_stream(topic, stream_id)
        return self._append_parameter_data(topic, stream_id, parse_parameter_data(raw))

    # --- streamed writes: one item at a time, each stored as it arrives -----------------------------

    async def send_event_stream(self, topic: str, stream_id: str, items: AsyncIterable[Any]) -> int:
        """Each item is one event or an array of events, appended (all or nothing per item) in
        arrival order as it comes. Returns the number of events stored once `items` ends. A bad
        item raises ValidationError naming it (`items[3].timestamp: …`) once every item before it
        is durable; those stay stored."""
        _check_stream(topic, stream_id)

        def write(raw: Any, path: str) -> Awaitable[int]:
            return self._append_events(topic, stream_id, parse_event_item(raw, path))

        return await _write_each(items, write)

    async def send_parameter_stream(self, topic: str, stream_id: str, items: AsyncIterable[Any]) -> int:
        """As send_event_stream, for parameter data (an item: one parameterData or an array of them);
        returns the number of rows stored."""
        _check_stream(topic, stream_id)

        def write(raw: Any, path: str) -> Awaitable[int]:
            parts = parse_parameter_data_item(raw, path)  # the whole item is valid before any write
            return _sum([self._append_parameter_data(topic, stream_id, data) for data in parts])

        return await _write_each(items, write)

    def _append_events(self, topic: str, stream_id: str, events: list[Event]) -> Awaitable[int]:
        written = self.store.append_events(topic, stream_id, events)
        if self.tally is not None:
            self.tally.events(written)
        return written

    def _append_parameter_data(self, topic: str, stream_id: str, data: ParameterData) -> Awaitable[int]:
        written = self.store.append_parameter_data(topic, stream_id, data)
        if self.tally is not None:
            self.tally.parameter_rows(written)
        return written

    def create_stream(self, topic: str, raw_properties: Any) -> Awaitable[str]:
        """Resolves to the new stream's id (a uuid4)."""
        check_name(topic, "topic")
        properties = parse_properties(raw_properties)
        stream_id = str(uuid.uuid4())
        return _then(self.store.put_properties(topic, stream_id, properties), stream_id)

    def update_stream(self, topic: str, stream_id: str, raw_properties: Any) -> Awaitable[StreamInfo]:
        _check_stream(topic, stream_id)
        return self.store.put_properties(topic, stream_id, parse_properties(raw_properties))

    def close_stream(self, topic: str, stream_id: str) -> Awaitable[StreamInfo]:
        _check_stream(topic, stream_id)
        return self.store.close_stream(topic, stream_id)

    def set_event_definitions(self, topic: str, stream_id: str, raw: Any) -> Awaitable[StreamInfo]:
        _check_stream(topic, stream_id)
        kind = DefinitionKind.EVENTS
        return self.store.set_definitions(topic, stream_id, kind, parse_definitions(raw, kind))

    def set_parameter_definitions(self, topic: str, stream_id: str, raw: Any) -> Awaitable[StreamInfo]:
        _check_stream(topic, stream_id)
        kind = DefinitionKind.PARAMETERS
        return self.store.set_definitions(topic, stream_id, kind, parse_definitions(raw, kind))

    # --- live changes -------------------------------------------------------------------------------

    async def changes(
        self, topic: str | None = None, stream_id: str | None = None, *, max_pending: int = DEFAULT_MAX_PENDING
    ) -> ChangeSubscription:
        """The store's live changes (store/broadcast.py) of the matching streams, None = all: what
        every entry point writes, once durable, in write order."""
        return await self.store.subscribe(topic, stream_id, max_pending=max_pending)

    # --- reads ------------------------------------------------------------------------------------

    async def event_stream(
        self, topic: Any, stream_id: Any, from_ts: Any = None, follow: Any = False
    ) -> AsyncIterator[Event]:
        """The stored events of a stream whose timestamp is >= from_ts (None: all), in arrival
        order; with `follow`, then every event written later, as it is made durable, until the
        caller stops iterating. A follower that lets more than event_follower.MAX_WAITING events wait
        ends with event_follower.FellBehind."""
        _check_stream(topic, stream_id)
        if from_ts is not None:
            from_ts = parse_timestamp(from_ts, "fromTimestamp")
        if type(follow) is not bool:
            raise ValidationError("follow", "expected true or false")
        # Subscribe before reading what is stored: a write made in between is then in one or the
        # other, and skip_through drops what is in both.
        live = await follow_events(self.store, topic, stream_id, from_ts=from_ts) if follow else None
        try:
            after = seen = None
            while True:
                page = await self.store.read_events(topic, stream_id, ReadWindow(from_ts=from_ts, after=after))
                for event in page.items:
                    yield event
                seen = page.last_cursor or seen
                if page.next_cursor is None:
                    break
                after = page.next_cursor
            if live is not None:
                live.skip_through(seen)
                async for event in live:
                    yield event
        finally:
            if live is not None:
                live.close()

    async def read_quarantine(
        self, topic: str, window: ReadWindow = ReadWindow(), newest_first: bool = False
    ) -> Page[QuarantinedRow]:
        check_name(topic, "topic")
        try:
            return await self.store.read_quarantine(topic, window, newest_first)
        except ValueError:
            raise ValidationError("after", "not a cursor from a previous page of this quarantine") from None

    async def list_topics(self) -> list[TopicSummary]:
        return await self.store.list_topics()

    async def list_streams(self, topic: str) -> list[StreamInfo]:
        check_name(topic, "topic")
        return await self.store.list_streams(topic)

    async def get_stream(self, topic: str, stream_id: str) -> StreamInfo | None:
        _check_stream(topic, stream_id)
        return await self.store.get_stream(topic, stream_id)

    async def read_events(self, topic: str, stream_id: str, window: ReadWindow = ReadWindow()) -> Page[Event]:
        _check_stream(topic, stream_id)
        try:
            return await self.store.read_events(topic, stream_id, window)
        except ValueError:  # the store did not make this cursor
            raise ValidationError("after", "not a cursor from a previous page of this stream") from None

    async def read_parameter_data(
        self, topic: str, stream_id: str, window: ReadWindow = ReadWindow()
    ) -> Page[ParameterData]:
        _check_stream(topic, stream_id)
        try:
            return await self.store.read_parameter_data(topic, stream_id, window)
        except ValueError:
            raise ValidationError("after", "not a cursor from a previous page of this stream") from None


def _check_stream(topic: Any, stream_id: Any) -> None:
    check_name(topic, "topic")
    check_name(stream_id, "streamId")


def _utf8(text: str) -> str:
    """Text every store can hold: lone surrogates (possible in JSON text) replaced."""
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


async def _all(writes: list[Awaitable[Any]]) -> None:
    """Await every write (none is left unobserved), then raise the first failure."""
    failure: Exception | None = None
    for written in writes:
        try:
            await written
        except Exception as exc:  # noqa: BLE001 - re-raised below
            failure = failure or exc
    if failure is not None:
        raise failure


# Streamed writes keep at most this many store writes in flight (a durable store acknowledges in
# group commits: waiting for each item alone would cap a stream at one item per commit).
STREAM_WRITE_WINDOW = 64


async def _write_each(items: AsyncIterable[Any], write: Callable[[Any, str], Awaitable[int]]) -> int:
    """write(item, "items[k]") for each item in order; the total of what they resolve to. On any
    failure the writes already made are awaited first (they stay stored), then it is raised."""
    pending: deque[Awaitable[int]] = deque()
    total = 0
    k = 0
    try:
        async for raw in items:
            pending.append(write(raw, f"items[{k}]"))
            k += 1
            if len(pending) > STREAM_WRITE_WINDOW:
                total += await pending.popleft()
    except BaseException:
        await _all(list(pending))  # durable (or failed) before the error is reported
        raise
    while pending:
        total += await pending.popleft()
    return total


async def _sum(writes: list[Awaitable[int]]) -> int:
    """The total of writes that all succeeded; every write is awaited, the first failure raised."""
    total = 0
    failure: Exception | None = None
    for written in writes:
        try:
            total += await written
        except Exception as exc:  # noqa: BLE001 - re-raised below
            failure = failure or exc
    if failure is not None:
        raise failure
    return total


async def _then(written: Awaitable[Any], value: T) -> T:
    await written
    return value
