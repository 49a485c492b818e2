"""The write half of a connection's pump: what its session has to send, written to its transport.

One writer at a time (a lock), in the session's order: `flush` takes `Session.data_to_send()` until
it is empty, writes each frame, then `Session.written()`. What is queued is flushed on the next
event-loop turn (`flush_soon`), so that the Completions of every frame read in one go leave in one
frame (as ASP.NET's pipe writes them). Frames go to the transport the connection has now; frames
taken for a transport a resume replaced are not written (the replay carries them). A frame that
cannot be written: under stateful reconnect the session waits, detached, for a resume; otherwise
its transport has ended for the session (CLOSED: nothing more is read or written), and the
connection ends when the endpoint sees that transport end (`HubConnection.gone`). Producers that
can wait (stream items) wait here for room in the outbox (`wait_for_room`).
"""

from __future__ import annotations

import asyncio
import logging
import time

from .close_reason import CloseReason
from .session import Session, State
from .transports.base import Transport

log = logging.getLogger("hub.signalr")

_SEND_ERRORS = (ConnectionError, RuntimeError, OSError)


class Writer:
    __slots__ = ("session", "transport", "last_sent", "_log_id", "_lock", "_flushing", "_room")

    def __init__(self, session: Session, transport: Transport, log_id: str):
        self.session = session
        self.transport = transport  # the one the connection has now (a resume replaces it)
        self.last_sent = time.monotonic()
        self._log_id = log_id
        self._lock = asyncio.Lock()
        self._flushing: asyncio.Task | None = None  # the flush `flush_soon` started
        self._room: asyncio.Event | None = None  # made when a producer waits for room in the outbox

    def flush_soon(self) -> None:
        if self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self.flush(background=True))

    def cancel(self) -> None:
        """Stop the flush `flush_soon` started: it may be waiting for a client that does not read."""
        if self._flushing is not None:
            self._flushing.cancel()

    async def flush(self, *, background: bool = False) -> None:
        """Write what the session has to send, in its order, until it has nothing writable."""
        session = self.session
        try:
            async with self._lock:
                while frames := session.data_to_send():
                    transport = self.transport
                    try:
                        for frame in frames:
                            if not await self._write(transport, frame):
                                break
                    finally:
                        session.written()
                    if self._room is not None and session.has_room:
                        self._room.set()
                if self._room is not None and session.has_room:
                    self._room.set()  # detached, what was taken was numbered, not written
        finally:
            if background:
                self._flushing = None

    async def _write(self, transport: Transport, frame: str | bytes) -> bool:
        """False when `frame` is not written; the rest of its batch is not written either."""
        if transport is not self.transport:
            return False  # a resume replaced it: the replay carries what it held
        try:
            await transport.send(frame)
        except _SEND_ERRORS as exc:
            session = self.session
            if session.buffer is not None:
                # The socket died under us: stay numbered and kept; the reconnect replays it.
                log.debug("stateful connection: send failed, waiting for a reconnect: %s", exc)
                if transport is self.transport and session.state is State.CONNECTED:
                    session.detach()
            else:
                log.debug("connection %s: send failed: %s", self._log_id, exc)
                if session.state is not State.CLOSED:
                    session.transport_ended(CloseReason.ERROR)
            return False
        self.last_sent = time.monotonic()
        return True

    async def wait_for_room(self) -> None:
        """While the outbox is at least half full and the connection is connected."""
        session = self.session
        while not session.has_room and session.state is State.CONNECTED:
            if self._room is None:
                self._room = asyncio.Event()
            self._room.clear()
            await self._room.wait()

    def wake(self) -> None:
        """The connection is ending: producers waiting for room go on (and find it ending)."""
        if self._room is not None:
            self._room.set()
