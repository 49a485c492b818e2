"""Long polling: the client GETs what the server has for it, one poll after another; it sends by POST.

This is the buffer between the two. The connection's frames wait here until a poll takes them all
at once (whole frames only, so a body never ends mid-record); a poll finds one of three answers
(ASP.NET's LongPollingServerTransport): data, nothing before the poll timeout, or the end — the
transport closed with nothing left, or a newer poll took over. What the HTTP requests look like is
hub/signalr/endpoint.py's business; see protocol-notes/transports.md.
"""

from __future__ import annotations

import asyncio

from ..protocols.base import TransferFormat
from .base import Transport

#: What `poll` returns when the poll must end with 204 No Content.
ENDED = None


class LongPollingTransport(Transport):
    name = "LongPolling"
    transfer_formats = (TransferFormat.TEXT, TransferFormat.BINARY)
    # The polls themselves show the client is there: no pings, no client timeout (ASP.NET's
    # HasInherentKeepAlive); a client that stops polling is dropped after the disconnect timeout.
    inherent_keepalive = True

    def __init__(self, max_buffered: int = 1_048_576):
        self._max_buffered = max_buffered
        self._frames: list[bytes] = []
        self._buffered = 0
        self.closed = False
        self._poll: object | None = None  # the newest poll; older ones end with 204
        self._wakeup: asyncio.Future[None] | None = None
        self._room = asyncio.Event()
        self._room.set()

    # --- the connection's side ----------------------------------------------------------------------

    async def send(self, data: str | bytes) -> None:
        # Back-pressure: a client that does not poll makes its connection wait, not the server grow.
        while self._buffered >= self._max_buffered and not self.closed:
            self._room.clear()
            await self._room.wait()
        if self.closed:
            raise ConnectionError("the long-polling connection is closed")
        frame = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        self._frames.append(frame)
        self._buffered += len(frame)
        self._wake()

    async def close(self) -> None:
        """What is buffered is still handed to the next poll; the poll after that gets 204."""
        self.closed = True
        self._room.set()
        self._wake()

    # --- the polls' side ----------------------------------------------------------------------------

    async def poll(self, timeout: float) -> bytes | None:
        """Everything buffered, as soon as there is something; b"" when `timeout` passes first;
        ENDED (None) when the transport is closed and drained, or a newer poll took over."""
        me = self._poll = object()
        self._wake()  # a poll still pending sees it is superseded and ends
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._poll is not me:
                return ENDED
            if self._frames:
                return self._take()
            if self.closed:
                return ENDED
            remaining = deadline - loop.time()
            if remaining <= 0:
                return b""
            self._wakeup = waiter = loop.create_future()
            try:
                await asyncio.wait((waiter,), timeout=remaining)
            finally:
                waiter.cancel()

    @property
    def drained(self) -> bool:
        """Closed and nothing left for a poll: the connection is over."""
        return self.closed and not self._frames

    def _take(self) -> bytes:
        data = b"".join(self._frames)
        self._frames.clear()
        self._buffered = 0
        self._room.set()
        return data

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)
