"""Server-Sent Events: server to client over one long GET response (text only); the client sends by POST.

Each frame the connection sends becomes one event, `data: <line>\\r\\n` per line then a blank
`\\r\\n` (ASP.NET's ServerSentEventsMessageFormatter). The stream opens with the comment `:\\r\\n`
so that browsers fire `open` without waiting for the first message. See protocol-notes/transports.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ..protocols.base import TransferFormat
from .base import GOODBYE_TIMEOUT, Transport

ASGISend = Callable[[dict[str, Any]], Awaitable[None]]

OPENING = b":\r\n"
HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    # Proxies that buffer responses (nginx does by default) would hold the events back.
    (b"x-accel-buffering", b"no"),
]


def format_event(data: str | bytes) -> bytes:
    """One frame as one SSE event. A line break in the frame starts another `data:` line (a
    `\\r\\n` counts as one break), which EventSource joins back with `\\n`."""
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    out = bytearray()
    if b"\n" not in payload:
        if payload:
            out += b"data: " + payload + b"\r\n"
    else:
        for line in payload.split(b"\n"):
            if len(line) > 1 and line.endswith(b"\r"):
                line = line[:-1]
            out += b"data: " + line + b"\r\n"
    out += b"\r\n"
    return bytes(out)


class ServerSentEventsTransport(Transport):
    name = "ServerSentEvents"
    transfer_formats = (TransferFormat.TEXT,)

    def __init__(self, send: ASGISend, headers: list[tuple[bytes, bytes]] | None = None):
        self._send = send
        self._headers = headers or []
        self._lock = asyncio.Lock()  # the final empty body must not overtake an event being written
        self.ended = asyncio.Event()  # the response is over (closed by the server, or the client left)
        # Called when the server ends the stream, before the client can see the end: the endpoint
        # forgets the connection there, so a request made on seeing the end already finds it gone.
        self.before_end: Callable[[], None] | None = None

    async def open(self) -> None:
        await self._send({"type": "http.response.start", "status": 200, "headers": HEADERS + self._headers})
        await self._send({"type": "http.response.body", "body": OPENING, "more_body": True})

    async def send(self, data: str | bytes) -> None:
        async with self._lock:
            if self.ended.is_set():
                raise ConnectionError("the event stream is closed")
            await self._send({"type": "http.response.body", "body": format_event(data), "more_body": True})

    async def close(self) -> None:
        if self.ended.is_set():
            return
        self.ended.set()
        if self.before_end is not None:
            self.before_end()
        try:
            # Bounded: a client that does not read never lets the end be written; the response is
            # then left unfinished and the server drops the socket.
            async with asyncio.timeout(GOODBYE_TIMEOUT):
                async with self._lock:
                    await self._send({"type": "http.response.body", "body": b"", "more_body": False})
        except (OSError, RuntimeError, TimeoutError):
            pass  # the client is already gone, or does not read

    def client_left(self) -> None:
        """The request was disconnected: nothing more can be written."""
        self.ended.set()
