"""The WebSocket transport: one hub-protocol frame per WebSocket message, text or binary."""

from __future__ import annotations

import asyncio

from starlette.websockets import WebSocket, WebSocketDisconnect

from ..protocols.base import TransferFormat
from .base import GOODBYE_TIMEOUT, Transport


class WebSocketTransport(Transport):
    name = "WebSockets"
    transfer_formats = (TransferFormat.TEXT, TransferFormat.BINARY)

    __slots__ = ("ws", "_closed", "reader", "reading", "abandoned")

    def __init__(self, ws: WebSocket, reader: asyncio.Task | None = None):
        self.ws = ws
        self._closed = False
        self.reader = reader  # the task reading this socket (the endpoint's), ended by an abandoning close
        self.reading = False  # True while the reader waits for the client's next frame
        self.abandoned = False  # the close frame could not be written: the reader was cancelled

    async def send(self, data: str | bytes) -> None:
        if self._closed:
            raise ConnectionError("the WebSocket is closed")
        try:
            if isinstance(data, str):
                await self.ws.send({"type": "websocket.send", "text": data})
            else:
                await self.ws.send({"type": "websocket.send", "bytes": data})
        except WebSocketDisconnect as exc:  # the peer is gone: the Transport contract's ConnectionError
            self._closed = True
            raise ConnectionError(f"the WebSocket is closed ({exc.code})") from None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.wait_for(self.ws.close(1000), GOODBYE_TIMEOUT)
        except asyncio.TimeoutError:
            # The client does not read, so no frame can be written: stop reading it too, and the
            # server drops the socket once the endpoint returns.
            self.abandoned = True
            if self.reading and self.reader is not None:
                self.reader.cancel()
        except (RuntimeError, OSError, WebSocketDisconnect):
            pass  # already gone
