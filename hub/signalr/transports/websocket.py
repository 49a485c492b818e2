"""The WebSocket transport: one hub-protocol frame per WebSocket message, text or binary."""

from __future__ import annotations

from starlette.websockets import WebSocket, WebSocketDisconnect

from ..protocols.base import TransferFormat
from .base import Transport


class WebSocketTransport(Transport):
    name = "WebSockets"
    transfer_formats = frozenset({TransferFormat.TEXT, TransferFormat.BINARY})

    __slots__ = ("ws", "_closed")

    def __init__(self, ws: WebSocket):
        self.ws = ws
        self._closed = False

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
            await self.ws.close(1000)
        except (RuntimeError, OSError, WebSocketDisconnect):
            pass  # already gone
