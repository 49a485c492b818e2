"""What waits to be written to one client: a queue bounded by messages and by encoded bytes.

Sans-I/O: the connection puts encoded messages in and takes them out to write; this only counts.
Everything the server sends a client goes through it: Completions, stream items, server-to-client
invocations, pings, the Close. A message counts from when it is queued until its write returned, so
a client that stops reading (its transport's write waits) makes the queue grow.

At the bound (`fits` is False) the client has fallen behind: the connection closes it. One message
larger than the byte bound still fits into an empty queue, so no single message is undeliverable.
Producers that can wait (stream items) wait for `has_room`, below half of either bound, before they
queue more; those that cannot (a Completion on the receive path, a fan-out) queue or trip the bound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import NamedTuple

from .messages import HubMessage


class Queued(NamedTuple):
    message: HubMessage | None  # None: several messages joined (`count` of them), never numbered
    data: str | bytes
    count: int
    wait: bool  # under stateful reconnect: wait for the client's Acks to make room in the replay buffer


class Outbox:
    __slots__ = ("max_messages", "max_bytes", "_items", "messages", "bytes", "_room")

    def __init__(self, max_messages: int, max_bytes: int):
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._items: deque[Queued] = deque()
        self.messages = 0  # queued or being written
        self.bytes = 0
        self._room: asyncio.Event | None = None  # made by the first producer that has to wait

    def __bool__(self) -> bool:
        return bool(self._items)

    def fits(self, count: int, size: int) -> bool:
        if not self.messages:
            return True
        return self.messages + count <= self.max_messages and self.bytes + size <= self.max_bytes

    def put(self, item: Queued) -> None:
        self._items.append(item)
        self.messages += item.count
        self.bytes += len(item.data)

    def take(self) -> list[Queued]:
        """Everything queued, to write in order; it still counts until `written`."""
        items = list(self._items)
        self._items.clear()
        return items

    def written(self, items: list[Queued]) -> None:
        for item in items:
            self.messages -= item.count
            self.bytes -= len(item.data)
        if self._room is not None and self.has_room:
            self._room.set()

    def clear(self) -> None:
        """The connection is over: drop what waits, release waiting producers."""
        self._items.clear()
        self.messages = 0
        self.bytes = 0
        if self._room is not None:
            self._room.set()

    @property
    def has_room(self) -> bool:
        return self.messages < self.max_messages // 2 + 1 and self.bytes < self.max_bytes // 2 + 1

    async def wait_for_room(self) -> None:
        while not self.has_room:
            if self._room is None:
                self._room = asyncio.Event()
            self._room.clear()
            await self._room.wait()
