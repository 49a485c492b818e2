"""The store's live change broadcast: what a store publishes once a write is durable, to every
subscriber.

A `Change` is one write as readers see it: new events, new parameter rows, or a stream's new state
(created, properties replaced, closed, reopened, definitions replaced). Changes of one store reach
every subscriber in the order the writes were made durable (= their call order).

`ChangeBroadcast` is the in-process broadcast every backend uses (memory and sqlite publish into it
directly; redis publishes what its change log reader fetched from Redis). Each subscriber has a
bounded queue: publishing never blocks and never waits for a reader. A subscriber more than
`max_pending` changes behind is ended: its next read raises `SubscriptionOverflow` (it should catch
up from the store with a cursor, then subscribe again).

Subscriptions match on topic and stream id; None matches every topic / every stream (the reader
hub's `*`); `ChangeSubscription.where`, when set, narrows that with a predicate.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Callable

from ..models import Event, ParameterData, StreamInfo
from .cursor import cursor_key

DEFAULT_MAX_PENDING = 10_000


class ChangeKind(StrEnum):
    EVENTS = "events"  # new events of a stream
    PARAMETERS = "parameters"  # new parameter rows of a stream
    STREAM = "stream"  # a stream's new state


@dataclass(slots=True, frozen=True)
class Change:
    kind: ChangeKind
    topic: str
    stream_id: str
    events: list[Event] = field(default_factory=list)  # EVENTS, in arrival order
    parameter_data: ParameterData | None = None  # PARAMETERS
    info: StreamInfo | None = None  # STREAM: the stream after the change
    # EVENTS/PARAMETERS: each item's position, comparable (cursor_key) with Page.last_cursor
    # of the same stream, so a reader that read stored data first can skip what it already has.
    cursors: list[str] = field(default_factory=list)

    def after(self, cursor: str | None) -> "Change":
        """This change without the items at or before `cursor` (a Page.last_cursor); self if none."""
        if cursor is None or not self.cursors:
            return self
        limit = cursor_key(cursor)
        skip = 0
        while skip < len(self.cursors) and cursor_key(self.cursors[skip]) <= limit:
            skip += 1
        if skip == 0:
            return self
        if self.kind == ChangeKind.EVENTS:
            events = self.events[skip:]
            return Change(ChangeKind.EVENTS, self.topic, self.stream_id, events=events, cursors=self.cursors[skip:])
        data = self.parameter_data
        assert data is not None
        sliced = ParameterData(
            data.timestamps[skip:],
            {k: v[skip:] for k, v in data.numeric_values.items()},
            {k: v[skip:] for k, v in data.string_values.items()},
            {k: v[skip:] for k, v in data.binary_values.items()},
            {k: v[skip:] for k, v in data.tag_values.items()},
        )
        cursors = self.cursors[skip:]
        return Change(ChangeKind.PARAMETERS, self.topic, self.stream_id, parameter_data=sliced, cursors=cursors)

    @property
    def empty(self) -> bool:
        return self.kind != ChangeKind.STREAM and not self.cursors


class SubscriptionOverflow(Exception):
    """The subscriber fell too far behind the writers; its subscription has ended."""


class ChangeSubscription:
    """An async iterator of Changes. `close()` ends it (iteration stops)."""

    def __init__(self, broadcast: "ChangeBroadcast", topic: str | None, stream_id: str | None, max_pending: int):
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.topic = topic
        self.stream_id = stream_id
        self.max_pending = max_pending
        self._broadcast = broadcast
        self._queue: deque[Change] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self.closed = False
        # Narrows the match further when set (topic, stream_id) -> bool: one subscription standing for
        # many readers (the Reader hub) says which streams any of them wants, so the store publishes
        # (redis: fetches) nothing else. Called on every write: keep it a few dict lookups.
        self.where: Callable[[str, str], bool] | None = None

    def matches(self, topic: str, stream_id: str) -> bool:
        return (
            (self.topic is None or self.topic == topic)
            and (self.stream_id is None or self.stream_id == stream_id)
            and (self.where is None or self.where(topic, stream_id))
        )

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _push(self, change: Change) -> None:
        if self.closed:
            return
        if len(self._queue) >= self.max_pending:
            self._end(SubscriptionOverflow(f"fell more than {self.max_pending} changes behind the writers"))
            return
        self._queue.append(change)
        self._wake()

    def _end(self, error: BaseException | None) -> None:
        if self.closed:
            return
        self.closed = True
        self._error = error
        self._queue.clear()
        self._broadcast._remove(self)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self) -> None:
        self._end(None)

    def __aiter__(self) -> "ChangeSubscription":
        return self

    async def __anext__(self) -> Change:
        while not self._queue:
            if self.closed:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    async def get(self, timeout: float | None = None) -> Change:
        """The next change; raises StopAsyncIteration once closed, TimeoutError after `timeout` s."""
        if timeout is None:
            return await self.__anext__()
        return await asyncio.wait_for(self.__anext__(), timeout)

    async def __aenter__(self) -> "ChangeSubscription":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class ChangeBroadcast:
    """In-process broadcast, indexed by topic so a publish touches only interested subscribers."""

    def __init__(self) -> None:
        self._by_topic: dict[str, set[ChangeSubscription]] = {}
        self._all_topics: set[ChangeSubscription] = set()
        self.count = 0

    def subscribe(
        self, topic: str | None = None, stream_id: str | None = None, max_pending: int = DEFAULT_MAX_PENDING
    ) -> ChangeSubscription:
        sub = ChangeSubscription(self, topic, stream_id, max_pending)
        if topic is None:
            self._all_topics.add(sub)
        else:
            self._by_topic.setdefault(topic, set()).add(sub)
        self.count += 1
        return sub

    def _remove(self, sub: ChangeSubscription) -> None:
        if sub.topic is None:
            found = sub in self._all_topics
            self._all_topics.discard(sub)
        else:
            subs = self._by_topic.get(sub.topic)
            found = subs is not None and sub in subs
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_topic[sub.topic]
        if found:
            self.count -= 1

    def wants(self, topic: str, stream_id: str) -> bool:
        """Whether any subscriber would receive a change of this stream (cheap: checked per write)."""
        if self.count == 0:
            return False
        if self._all_topics and any(s.matches(topic, stream_id) for s in self._all_topics):
            return True
        subs = self._by_topic.get(topic)
        return subs is not None and any(s.matches(topic, stream_id) for s in subs)

    def publish(self, change: Change) -> None:
        if self.count == 0:
            return
        for group in (self._by_topic.get(change.topic), self._all_topics):
            if group:
                for sub in list(group):
                    if sub.matches(change.topic, change.stream_id):
                        sub._push(change)

    def close(self, error: BaseException | None = None) -> None:
        """End every subscription (the store is closing)."""
        for sub in [*self._all_topics, *(s for subs in self._by_topic.values() for s in subs)]:
            sub._end(error)
