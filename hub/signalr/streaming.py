"""One connection's stream invocations, both directions, and their bounds.

- `ConnectionStreams`: the stream invocations open on one connection (uploads and downloads
  together, at most `--max-streams-per-connection`; the next is refused with a Completion error by
  the dispatcher), the upload streams by id, and the running server-to-client streams by invocation
  id (a CancelInvocation names one). Made when the connection's first stream is.
- `UploadStream`: a client-to-server stream, as the AsyncIterator a hub method reads; bounded per
  stream, and per connection by one `UploadBudget` shared by its streams.

Protocol texts and the message flow: dispatcher.py and protocol-notes/streaming-and-reconnect.md.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, AsyncIterator

from .call import HubError

# An upload stream holds at most this many unread items; past that the connection stops reading
# its transport until the hub method catches up (ASP.NET's StreamBufferCapacity, which is 10 there).
UPLOAD_QUEUE_SIZE = 1000


class UploadBudget:
    """Unread upload items of one connection, all its streams together: at most `limit` (so 100
    open streams do not hold 100 times one stream's buffer). Items are taken one at a time by the
    receive loop, so `room` has at most one waiter."""

    __slots__ = ("limit", "used", "room")

    def __init__(self, limit: int = UPLOAD_QUEUE_SIZE):
        self.limit = limit
        self.used = 0
        self.room = asyncio.Event()
        self.room.set()

    def release(self, count: int) -> None:
        if count:
            self.used -= count
            self.room.set()


class UploadStream:
    """A client-to-server stream, as the AsyncIterator a hub method reads.

    Bounded: `put` waits while `capacity` items of this stream, or the connection's `budget` of
    items of all its streams, are unread, which holds up the connection's receive loop
    (back-pressure on the client through its transport). `close` (the method is done) drops what is
    left and releases a waiting `put`."""

    __slots__ = ("stream_id", "_items", "_capacity", "_budget", "_ended", "_error", "_closed", "_readable")

    def __init__(self, stream_id: str, capacity: int = UPLOAD_QUEUE_SIZE, budget: UploadBudget | None = None):
        self.stream_id = stream_id
        self._items: deque[Any] = deque()
        self._capacity = capacity
        self._budget = budget if budget is not None else UploadBudget(capacity)
        self._ended = False
        self._error: str | None = None
        self._closed = False
        self._readable = asyncio.Event()

    async def put(self, item: Any) -> None:
        budget = self._budget
        while (len(self._items) >= self._capacity or budget.used >= budget.limit) and not self._closed:
            budget.room.clear()
            await budget.room.wait()
        if self._closed or self._ended:
            return
        self._items.append(item)
        budget.used += 1
        self._readable.set()

    def finish(self, error: str | None = None) -> None:
        """The client completed the stream (with `error`: it failed it)."""
        self._ended = True
        self._error = error
        self._readable.set()

    def close(self) -> None:
        self._closed = True
        self._budget.release(len(self._items))
        self._items.clear()
        self._budget.room.set()
        self._readable.set()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        while not self._items:
            if self._ended or self._closed:
                if self._error is not None and not self._closed:
                    raise HubError(f"The client ended stream '{self.stream_id}' with an error: {self._error}")
                raise StopAsyncIteration
            self._readable.clear()
            await self._readable.wait()
        item = self._items.popleft()
        self._budget.release(1)
        return item


class ConnectionStreams:
    """The stream invocations open on one connection; see the module docstring."""

    __slots__ = ("limit", "open", "uploads", "running", "_budget")

    def __init__(self, limit: int):
        self.limit = limit  # --max-streams-per-connection
        self.open = 0  # stream invocations running, uploads and downloads
        self.uploads: dict[str, UploadStream] = {}  # by stream id, until the method reading them returns
        self.running: dict[str, asyncio.Future] = {}  # server-to-client streams, by invocation id
        self._budget: UploadBudget | None = None

    @property
    def full(self) -> bool:
        return self.open >= self.limit

    @property
    def budget(self) -> UploadBudget:
        """Unread items of all this connection's upload streams (made by the first upload)."""
        if self._budget is None:
            self._budget = UploadBudget()
        return self._budget

    def opened(self, task: asyncio.Future, invocation_id: str | None = None) -> None:
        """`task` runs a stream invocation until it ends (`invocation_id`: a server-to-client one,
        which a CancelInvocation may name)."""
        self.open += 1
        task.add_done_callback(self._closed)
        if invocation_id is not None:
            self.running[invocation_id] = task
            task.add_done_callback(lambda _task: self.running.pop(invocation_id, None))

    def _closed(self, _task: asyncio.Future) -> None:
        self.open -= 1
