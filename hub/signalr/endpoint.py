"""One hub at one path: `POST {path}/negotiate` and the transports at `{path}`.

This is the SignalR layer's face to the ASGI app. It knows nothing of what the hub does; it is given a
Hub, the timers and limits, and a function saying who a request is (None = not allowed).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from .connection import HubConnection, KeepAlive, SignalROptions
from .dispatcher import HubDispatcher
from .hub import Hub
from .transports.websocket import WebSocketTransport

log = logging.getLogger("hub.signalr")

#: Who a request is: a user name, or None when it must be refused with 401.
Authenticator = Callable[[HTTPConnection], "str | None"]

UNAUTHORIZED = {"error": "Unauthorized: a valid token is required (Authorization: Bearer <token> or ?access_token=<token>)."}


@dataclass(slots=True)
class NegotiatedConnection:
    connection_id: str
    token: str
    user: str | None
    created: float = field(default_factory=time.monotonic)
    transport: str | None = None
    hub_connection: HubConnection | None = None


class ConnectionRegistry:
    """Connections by the id their transport requests carry (the connectionToken under negotiate
    v1, the connectionId under v0). A negotiated connection with no transport attached within
    `disconnect_timeout` is dropped."""

    def __init__(self, disconnect_timeout: float):
        self.disconnect_timeout = disconnect_timeout
        self.by_token: dict[str, NegotiatedConnection] = {}

    def create(self, user: str | None, version: int) -> NegotiatedConnection:
        connection_id = secrets.token_urlsafe(16)
        token = secrets.token_urlsafe(16) if version >= 1 else connection_id
        record = NegotiatedConnection(connection_id, token, user)
        self.by_token[token] = record
        return record

    def get(self, token: str) -> NegotiatedConnection | None:
        return self.by_token.get(token)

    def remove(self, token: str) -> None:
        self.by_token.pop(token, None)

    def expire(self, now: float) -> None:
        stale = [t for t, r in self.by_token.items() if r.transport is None and now - r.created >= self.disconnect_timeout]
        for token in stale:
            del self.by_token[token]


class HubEndpoint:
    def __init__(
        self,
        path: str,
        hub: Hub,
        options: SignalROptions,
        authenticate: Authenticator,
        *,
        transports: tuple[str, ...] = ("WebSockets",),
    ):
        self.path = path.rstrip("/")
        self.options = options
        self.authenticate = authenticate
        # Offered in negotiate: what the operator allows and this endpoint implements.
        self.transports = tuple(t for t in transports if t in IMPLEMENTED_TRANSPORTS)
        self.dispatcher = HubDispatcher(hub)
        self.registry = ConnectionRegistry(options.disconnect_timeout)
        self.keepalive = KeepAlive(options)
        self._sweeper: asyncio.Task | None = None

    @property
    def routes(self) -> list[BaseRoute]:
        return [
            Route(f"{self.path}/negotiate", self.negotiate, methods=["POST"]),
            WebSocketRoute(self.path, self.websocket),
        ]

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self.keepalive.start()
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def shutdown(self, timeout: float) -> None:
        """Finish in-flight invocations (bounded), then tell every client it may reconnect."""
        connections = list(self.keepalive.connections)
        await asyncio.gather(*(c.drain(timeout) for c in connections), return_exceptions=True)
        await asyncio.gather(*(c.close(allow_reconnect=True) for c in connections), return_exceptions=True)
        await self.keepalive.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(max(0.1, min(1.0, self.options.disconnect_timeout / 4)))
            self.registry.expire(time.monotonic())

    # --- negotiate -----------------------------------------------------------------------------------

    async def negotiate(self, request: Request) -> Response:
        user = self.authenticate(request)
        if user is None:
            return JSONResponse(UNAUTHORIZED, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        try:
            requested = int(request.query_params.get("negotiateVersion", "0"))
        except ValueError:
            requested = 0
        version = 1 if requested >= 1 else 0
        record = self.registry.create(user, version)
        body: dict = {"negotiateVersion": version, "connectionId": record.connection_id}
        if version >= 1:
            body["connectionToken"] = record.token
        body["availableTransports"] = [
            {"transport": name, "transferFormats": list(TRANSFER_FORMATS[name])} for name in self.transports
        ]
        return JSONResponse(body)

    # --- WebSockets -----------------------------------------------------------------------------------

    async def websocket(self, ws: WebSocket) -> None:
        user = self.authenticate(ws)
        if user is None:
            await _deny(ws, 401, UNAUTHORIZED)
            return
        token = ws.query_params.get("id")
        if token:
            record = self.registry.get(token)
            if record is None:
                await _deny(ws, 404, {"error": "No Connection with that ID"})
                return
            if record.transport is not None:
                await _deny(ws, 409, {"error": "Another transport is already attached to this connection."})
                return
        else:  # skipNegotiation: the connection is made on the fly
            record = self.registry.create(user, 1)
        record.transport = "WebSockets"
        await ws.accept()
        conn = HubConnection(record.connection_id, WebSocketTransport(ws), self.dispatcher, self.options, user)
        record.hub_connection = conn
        self.keepalive.connections.add(conn)
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                await conn.receive(text if text is not None else message.get("bytes") or b"")
                if conn.closed.is_set():
                    break
        except Exception:  # noqa: BLE001 - one connection's failure must not reach the server
            log.exception("connection %s failed", record.connection_id)
            await conn.close(error="Connection closed with an error.")
        finally:
            conn.gone()
            self.keepalive.connections.discard(conn)
            self.registry.remove(record.token)


IMPLEMENTED_TRANSPORTS = ("WebSockets",)

TRANSFER_FORMATS = {
    "WebSockets": ("Text", "Binary"),
    "ServerSentEvents": ("Text",),
    "LongPolling": ("Text", "Binary"),
}


async def _deny(ws: WebSocket, status: int, body: dict) -> None:
    """Refuse an upgrade with a real HTTP status where the server supports it (uvicorn does)."""
    try:
        await ws.send_denial_response(JSONResponse(body, status_code=status))
    except RuntimeError:
        await ws.close(code=1008)
