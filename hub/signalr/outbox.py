"""What waits to be written to one client: a queue bounded by messages and by encoded bytes.

Sans-I/O: the session (session.py) puts encoded messages in and takes them out to be written; this
only counts. Everything the server sends a client goes through it: Completions, stream items,
server-to-client invocations, pings. A message counts from when it is queued until its write
returned (`written`), so a client that stops reading (its transport's write waits) makes the queue
grow.

At the bound (`fits` is False) the client has fallen behind: putting more raises `FellBehind`,
carrying the text of the Close the connection ends with (what waits is dropped, the Close follows
the frame being written). One message larger than the byte bound still fits into an empty queue,
so no single message is undeliverable. Producers that can wait (stream items) wait while the queue
is at least half full (`has_room`); those that cannot (a Completion on the receive path, a fan-out)
queue or trip the bound.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from .messages import HubMessage


class Queued(NamedTuple):
    message: HubMessage | None  # None: several messages joined (`count` of them), never numbered
    data: str | bytes
    count: int
    wait: bool  # under stateful reconnect: held back while the replay buffer is full


class FellBehind(Exception):
    """More waited for the client than the outbox holds; str(self) is the Close message's error."""


class Outbox:
    __slots__ = ("max_messages", "max_bytes", "_items", "messages", "bytes")

    def __init__(self, max_messages: int, max_bytes: int):
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._items: deque[Queued] = deque()
        self.messages = 0  # queued or being written
        self.bytes = 0

    def __bool__(self) -> bool:
        return bool(self._items)

    def fits(self, count: int, size: int) -> bool:
        if not self.messages:
            return True
        return self.messages + count <= self.max_messages and self.bytes + size <= self.max_bytes

    def put(self, item: Queued) -> None:
        """Queue `item`; raises FellBehind when it does not fit."""
        size = len(item.data)
        messages = self.messages
        if messages and (messages + item.count > self.max_messages or self.bytes + size > self.max_bytes):
            raise self.fell_behind()  # `fits`, inlined: this runs for every message sent
        self._items.append(item)
        self.messages += item.count
        self.bytes += size

    def put_last(self, item: Queued) -> None:
        """Queue the connection's goodbye, whatever the bounds: nothing is queued after it."""
        self._items.append(item)
        self.messages += item.count
        self.bytes += len(item.data)

    def fell_behind(self) -> FellBehind:
        return FellBehind(
            f"Connection closed with an error. The client fell behind: more than {self.max_messages} messages "
            f"or {self.max_bytes} bytes were waiting to be sent to it (--max-send-queue, "
            "--max-send-queue-bytes). Reconnect and subscribe again."
        )

    def take(self) -> list[Queued]:
        """Everything queued, to write in order; it still counts until `written`."""
        items = list(self._items)
        self._items.clear()
        return items

    def first(self) -> Queued:
        return self._items[0]

    def take_first(self) -> Queued:
        """The oldest item, to write; it still counts until `written`."""
        return self._items.popleft()

    def written(self, items: list[Queued]) -> None:
        for item in items:
            self.messages -= item.count
            self.bytes -= len(item.data)

    def clear(self) -> None:
        """The connection is over, or its client fell behind: drop what waits."""
        self._items.clear()
        self.messages = 0
        self.bytes = 0

    @property
    def has_room(self) -> bool:
        return self.messages < self.max_messages // 2 + 1 and self.bytes < self.max_bytes // 2 + 1
