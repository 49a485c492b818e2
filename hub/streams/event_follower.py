"""One stream's live events, for a reader that follows the stream (StreamService.event_stream).

`follow_events(store, topic, stream_id)` returns an `EventFollower`: an async iterator of the events
made durable after the call, one event at a time, in arrival order. It sits on the store's change
broadcast (store/broadcast.py: one `Change` per write, with each item's position) and adds two
things a reader of events needs:

- **an exact hand-over from stored to live events.** Subscribe first, then read the stored events
  (store.read_events, any filter), then call `skip_through(last cursor read)`: live events at or
  before that position were in the stored pages and are skipped, so nothing is delivered twice and
  nothing written in between is lost.
- **bounded memory for a slow reader.** A pump task moves changes off the store subscription as
  they come (so the store never holds them for us) into a queue of at most `max_waiting` events.
  Past that the reader has fallen behind: the queue is dropped and its next read raises
  `FellBehind`. Writers never wait for a reader.

Nothing here knows of SignalR or HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import AsyncIterator

from .models import Event
from .store.base import StreamStore
from .store.broadcast import Change, ChangeKind, ChangeSubscription, SubscriptionOverflow
from .store.cursor import cursor_key

#: Events that may wait for one slow reader before it is cut off.
MAX_WAITING = 10_000


class FellBehind(Exception):
    """A live reader did not keep up with the writers; its subscription has ended."""


class EventFollower:
    """See the module docstring. Use `async with`, or call `close()`, when done."""

    def __init__(
        self,
        subscription: ChangeSubscription,
        topic: str,
        stream_id: str,
        *,
        from_ts: int | None = None,
        max_waiting: int = MAX_WAITING,
    ):
        self.topic = topic
        self.stream_id = stream_id
        self.from_ts = from_ts
        self.max_waiting = max_waiting
        self._subscription = subscription
        self._events: deque[tuple[Event, str | None]] = deque()
        self._error: BaseException | None = None
        self._ended = False
        self._skip_key: tuple[int, ...] | None = None
        self._ready = asyncio.Event()
        self._pump = asyncio.ensure_future(self._run())

    @property
    def waiting(self) -> int:
        return len(self._events)

    def skip_through(self, cursor: str | None) -> None:
        """Drop live events at or before `cursor` (a Page.last_cursor of this stream): the reader
        has them from the store already."""
        if cursor is not None:
            self._skip_key = cursor_key(cursor)

    async def _run(self) -> None:
        try:
            async for change in self._subscription:
                if change.kind == ChangeKind.EVENTS:
                    self._take(change)
                    if self._ended:
                        return
        except SubscriptionOverflow:
            self._fail(self._behind())
        except Exception as exc:  # noqa: BLE001 - the store's subscription ended with an error: the reader sees it
            self._fail(exc)
        else:
            self._ended = True
            self._ready.set()

    def _take(self, change: Change) -> None:
        cursors = change.cursors or [None] * len(change.events)  # type: ignore[list-item]
        from_ts = self.from_ts
        for event, cursor in zip(change.events, cursors):
            if from_ts is not None and event.timestamp < from_ts:
                continue
            if len(self._events) >= self.max_waiting:
                self._fail(self._behind())
                return
            self._events.append((event, cursor))
        self._ready.set()

    def _behind(self) -> FellBehind:
        return FellBehind(
            f"{self.topic}/{self.stream_id}: the reader fell behind: more than {self.max_waiting} events "
            "were waiting to be sent to it; read again from the timestamp of the last event received"
        )

    def _fail(self, error: BaseException) -> None:
        self._error = error
        self._ended = True
        self._events.clear()
        self._subscription.close()
        self._ready.set()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        while True:
            while self._events:
                event, cursor = self._events.popleft()
                if self._skip_key is not None and cursor is not None and cursor_key(cursor) <= self._skip_key:
                    continue
                return event
            if self._ended:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()

    def close(self) -> None:
        self._ended = True
        self._subscription.close()
        self._pump.cancel()

    async def __aenter__(self) -> "EventFollower":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump


async def follow_events(
    store: StreamStore, topic: str, stream_id: str, *, from_ts: int | None = None, max_waiting: int = MAX_WAITING
) -> EventFollower:
    """Events of (topic, stream_id) made durable from now on whose timestamp is >= from_ts."""
    # The store may hold up to max_waiting changes for us; the pump keeps that queue near empty.
    subscription = await store.subscribe(topic, stream_id, max_pending=max_waiting)
    return EventFollower(subscription, topic, stream_id, from_ts=from_ts, max_waiting=max_waiting)
