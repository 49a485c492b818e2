"""One hub at one path: `POST {path}/negotiate` and the transports at `{path}`, as ASP.NET's
HttpConnectionDispatcher.

This is the SignalR layer's face to the ASGI app. It knows nothing of what the hub does; it is given a
Hub, the timers and limits, and a function saying who a request is (None = not allowed). It answers
each request with its status and text, and starts or resumes the hub connection on the transport the
request names; the connections themselves (their ids, owners, slots and expiry) are connections.py's.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from .close_reason import CloseReason
from .connection import HubConnection
from .keepalive import KeepAlive
from .options import SignalROptions
from .connections import ConnectionRegistry, ConnectionSlots, NegotiatedConnection
from .dispatcher import HubDispatcher
from .hub import Hub
from .transports import TRANSPORTS
from .transports.base import Transport
from .transports.long_polling import ENDED, LongPollingTransport
from .transports.sse import ServerSentEventsTransport
from .transports.websocket import WebSocketTransport
from .user import Authenticator, User

log = logging.getLogger("hub.signalr")

SHUTTING_DOWN = {"error": "The server is shutting down: connect again in a moment."}
NOT_YOURS = {"error": "Forbidden: this connection was negotiated by another user."}
UNAUTHORIZED = {"error": "Unauthorized: a valid token is required (Authorization: Bearer <token> or ?access_token=<token>)."}


def too_many_connections(slots: ConnectionSlots) -> dict:
    return {"error": f"The server has reached its limit of {slots.limit} connections (--max-connections); retry later."}


def not_offered(transport: type[Transport]) -> str:
    return f"{transport.name} transport not supported by this end point type"


class HubEndpoint:
    def __init__(
        self,
        path: str,
        hub: Hub,
        options: SignalROptions,
        authenticate: Authenticator,
        *,
        transports: tuple[str, ...] = (WebSocketTransport.name,),
        slots: ConnectionSlots | None = None,
    ):
        self.path = path.rstrip("/")
        self.options = options
        self.authenticate = authenticate
        # Offered in negotiate: what the operator allows (by name) and this endpoint implements.
        self.transports = tuple(t for t in TRANSPORTS if t.name in transports)
        self.dispatcher = HubDispatcher(hub)
        self.keepalive = KeepAlive(options)
        # The keep-alive ticks the connections the registry starts, until it forgets them.
        self.registry = ConnectionRegistry(options.disconnect_timeout, slots, live=self.keepalive.connections)
        self.stopping = False

    @property
    def routes(self) -> list[BaseRoute]:
        return [
            Route(f"{self.path}/negotiate", self.negotiate, methods=["POST"]),
            Route(self.path, self.http_transport, methods=["GET", "POST", "DELETE"]),
            WebSocketRoute(self.path, self.websocket),
        ]

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self.keepalive.start()
        self.registry.start()

    async def shutdown(self, timeout: float, goodbye_timeout: float = 0.3) -> None:
        """Finish in-flight invocations (for at most `timeout` s), then tell every client it may
        reconnect (for at most `goodbye_timeout` s more: a client that does not read its socket
        cannot hold the shutdown; its Close is abandoned)."""
        self.stopping = True  # from now on new connections are refused: clients retry, and find the next server
        connections = list(self.registry.live)
        await asyncio.gather(*(c.drain(timeout) for c in connections), return_exceptions=True)
        goodbyes = [asyncio.ensure_future(c.close(allow_reconnect=True)) for c in connections]
        if goodbyes:
            done, late = await asyncio.wait(goodbyes, timeout=goodbye_timeout)
            for task in late:
                task.cancel()
            for task in done:
                task.exception()  # retrieved: a client gone meanwhile is no error here
        await self.keepalive.stop()
        self.registry.stop()

    def close_connections(self, which: Callable[[User | None], bool], error: str, reason: CloseReason) -> int:
        """Close (no reconnect) every connection whose user `which` picks, e.g. those of a revoked
        token; returns how many. The Closes are written in the background."""
        return self.registry.close_where(which, error, reason)

    # --- negotiate -----------------------------------------------------------------------------------

    async def negotiate(self, request: Request) -> Response:
        if self.stopping:
            return JSONResponse(SHUTTING_DOWN, status_code=503, headers={"Retry-After": "2"})
        user = self.authenticate(request)
        if user is None:
            return JSONResponse(UNAUTHORIZED, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        try:
            requested = int(request.query_params.get("negotiateVersion", "0"))
        except ValueError:
            requested = 0
        version = 1 if requested >= 1 else 0
        record = self.registry.create(user.name, version)
        if record is None:
            return JSONResponse(too_many_connections(self.registry.slots), status_code=503, headers={"Retry-After": "5"})
        body: dict = {"negotiateVersion": version, "connectionId": record.connection_id}
        if version >= 1:
            body["connectionToken"] = record.token
        body["availableTransports"] = [
            {"transport": t.name, "transferFormats": [f.value for f in t.transfer_formats]} for t in self.transports
        ]
        # Only when the client asked (a client that did not ask fails on it) and WebSockets is offered.
        if (
            self.options.stateful_reconnect
            and request.query_params.get("useStatefulReconnect", "").lower() == "true"
            and WebSocketTransport in self.transports
        ):
            record.stateful = True
            body["useStatefulReconnect"] = True
        return JSONResponse(body)

    # --- WebSockets -----------------------------------------------------------------------------------

    async def websocket(self, ws: WebSocket) -> None:
        if self.stopping:
            await _deny(ws, 503, SHUTTING_DOWN)
            return
        user = self.authenticate(ws)
        if user is None:
            await _deny(ws, 401, UNAUTHORIZED)
            return
        if WebSocketTransport not in self.transports:
            await _deny(ws, 404, {"error": not_offered(WebSocketTransport)})
            return
        token = ws.query_params.get("id")
        if token:
            record = self.registry.get(token)
            if record is None:
                await _deny(ws, 404, {"error": "No Connection with that ID"})
                return
            if not record.belongs_to(user.name):
                log.info("connection %s: WebSocket refused: another user's connection", record.log_id)
                await _deny(ws, 403, NOT_YOURS)
                return
            if record.transport not in (None, WebSocketTransport):
                await _deny(ws, 400, {"error": "Cannot change transports mid-connection"})
                return
            resumable = record.hub_connection is not None and record.hub_connection.pipe is not None
            if record.transport is not None and not (resumable and not record.hub_connection.closed.is_set()):
                await _deny(ws, 409, {"error": "Another transport is already attached to this connection."})
                return
        else:  # skipNegotiation: the connection is made on the fly
            made = self.registry.create(user.name, 1)
            if made is None:
                await _deny(ws, 503, too_many_connections(self.registry.slots))
                return
            record = made
        record.attach(WebSocketTransport)
        await ws.accept()
        transport = WebSocketTransport(ws, reader=asyncio.current_task())
        if record.hub_connection is not None:  # a stateful reconnect: the same connection, a new socket
            conn = record.hub_connection
            await conn.resume(transport)
        else:
            conn = HubConnection(record.connection_id, transport, self.dispatcher, self.options, user, record.log_id)
            conn.allow_stateful = record.stateful
            self.registry.started(record, conn)
        try:
            while True:
                transport.reading = True
                message = await ws.receive()
                transport.reading = False
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                await conn.receive(text if text is not None else message.get("bytes") or b"", via=transport)
                if conn.closed.is_set() or conn.transport is not transport:
                    break
        except asyncio.CancelledError:
            if not transport.abandoned:
                raise
            # Closed on a client that does not read (websocket.py): the close could not be written;
            # returning lets the server drop the socket.
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
        except Exception:  # noqa: BLE001 - one connection's failure must not reach the server
            log.exception("connection %s failed", record.log_id)
            await conn.close(error="Connection closed with an error.")
        finally:
            # A Close the hub is still writing (a client closed for falling behind) goes out first.
            await conn.goodbye_written()
            if conn.transport_lost(transport):
                record.detach()  # kept: the sweeper ends it after the disconnect timeout unless it resumes
            else:
                conn.gone()
                self.registry.forget(record)

    # --- Server-Sent Events and long polling: GET, POST and DELETE on the hub path ------------------
    # Status codes and texts as ASP.NET's HttpConnectionDispatcher; see protocol-notes/transports.md.

    async def http_transport(self, request: Request) -> Response | _EventStream:
        user = self.authenticate(request)
        if user is None:
            return JSONResponse(UNAUTHORIZED, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        token = request.query_params.get("id")
        if not token:
            return PlainTextResponse("Connection ID required", status_code=400)
        record = self.registry.get(token)
        if record is None:
            return PlainTextResponse("No Connection with that ID", status_code=404)
        if not record.belongs_to(user.name):  # ASP.NET only logs this; here nothing happens to the connection
            log.info("connection %s: %s refused: another user's connection", record.log_id, request.method)
            return JSONResponse(NOT_YOURS, status_code=403)
        if self.stopping and record.hub_connection is None:  # no new connections while draining
            return JSONResponse(SHUTTING_DOWN, status_code=503, headers={"Retry-After": "2"})
        if request.method == "POST":
            return await self._post(request, record)
        if request.method == "DELETE":
            return await self._delete(record)
        sse = "text/event-stream" in request.headers.get("accept", "")
        wanted = ServerSentEventsTransport if sse else LongPollingTransport
        if wanted not in self.transports:
            return PlainTextResponse(not_offered(wanted), status_code=404)
        if record.transport not in (None, wanted):
            return PlainTextResponse("Cannot change transports mid-connection", status_code=400)
        if sse:
            if record.transport is not None:
                return PlainTextResponse("Another transport is already attached to this connection.", status_code=409)
            record.attach(wanted)
            return _EventStream(self, record, user)
        return await self._poll(request, record, user)

    async def _poll(self, request: Request, record: NegotiatedConnection, user: User) -> Response:
        if record.hub_connection is None:  # the first poll starts the connection and returns at once
            record.attach(LongPollingTransport)
            try:
                await self.start_connection(record, LongPollingTransport(), user)
            finally:
                record.detach()
            return Response(b"", media_type="application/octet-stream", headers=_NO_CACHE)
        transport = record.hub_connection.transport
        assert isinstance(transport, LongPollingTransport)
        record.attach(LongPollingTransport)
        poll = asyncio.ensure_future(transport.poll(self.options.poll_timeout))
        left = asyncio.ensure_future(_disconnected(request.receive))
        try:
            await asyncio.wait((poll, left), return_when=asyncio.FIRST_COMPLETED)
        finally:
            poll.cancel()
            left.cancel()
            record.detach()
        data = poll.result() if poll.done() and not poll.cancelled() else ENDED
        if data is ENDED:
            if transport.drained:
                await self.registry.dispose(record, "closed by the server")
            return Response(status_code=204, media_type="text/plain", headers=_NO_CACHE)
        return Response(data, media_type="application/octet-stream" if data else "text/plain", headers=_NO_CACHE)

    async def _post(self, request: Request, record: NegotiatedConnection) -> Response:
        """Client to server: the body is hub-protocol bytes, any number of records (a record may
        continue in the next POST), applied in arrival order."""
        if record.transport is WebSocketTransport:
            return PlainTextResponse("POST requests are not allowed for WebSocket connections.", status_code=405)
        async with record.post_lock:
            try:
                async for chunk in request.stream():
                    if record.hub_connection is not None and not record.early:
                        await record.hub_connection.receive(chunk)
                    elif len(record.early) + len(chunk) <= self.options.max_message_size:
                        # Kept until a transport is attached (signalrcore POSTs its handshake first),
                        # then fed by start_connection, in order.
                        record.early += chunk
                    else:
                        return PlainTextResponse(
                            "Too much data sent before a transport was attached to this connection.", status_code=413
                        )
            except ClientDisconnect:
                return PlainTextResponse("The request body was cut short.", status_code=400)
        return Response(b"", media_type="text/plain")

    async def _delete(self, record: NegotiatedConnection) -> Response:
        if record.transport is not LongPollingTransport:
            return PlainTextResponse("Cannot terminate this connection using the DELETE endpoint.", status_code=400)
        await self.registry.dispose(record, "DELETE")
        return Response(b"", status_code=202, media_type="text/plain")

    async def start_connection(self, record: NegotiatedConnection, transport: Transport, user: User) -> HubConnection:
        """The hub connection of an HTTP transport's first request, fed what was POSTed before it."""
        conn = HubConnection(record.connection_id, transport, self.dispatcher, self.options, user, record.log_id)
        self.registry.started(record, conn)
        async with record.post_lock:
            if record.early:
                early, record.early = bytes(record.early), bytearray()
                await conn.receive(early)
        return conn


class _EventStream:
    """The SSE response, open for as long as the connection lives."""

    def __init__(self, endpoint: HubEndpoint, record: NegotiatedConnection, user: User):
        self.endpoint, self.record, self.user = endpoint, record, user

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = ServerSentEventsTransport(send)
        transport.before_end = lambda: self.endpoint.registry.remove(self.record)
        left = asyncio.ensure_future(_disconnected(receive))
        try:
            await transport.open()
            await self.endpoint.start_connection(self.record, transport, self.user)
            ended = asyncio.ensure_future(transport.ended.wait())
            try:
                await asyncio.wait((ended, left), return_when=asyncio.FIRST_COMPLETED)
            finally:
                ended.cancel()
        finally:
            left.cancel()
            await self.endpoint.registry.dispose(self.record, "closed by the server" if transport.ended.is_set() else "client gone")
            await transport.close()


async def _disconnected(receive: Receive) -> None:
    """Returns when the client has gone (its request body, if any, is not read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


# ASP.NET's no-cache headers on every poll: no proxy may answer a poll from a cache.
_NO_CACHE = {"Cache-Control": "no-cache, no-store", "Pragma": "no-cache", "Expires": "Thu, 01 Jan 1970 00:00:00 GMT"}


async def _deny(ws: WebSocket, status: int, body: dict) -> None:
    """Refuse an upgrade with a real HTTP status where the server supports it (uvicorn does)."""
    try:
        await ws.send_denial_response(JSONResponse(body, status_code=status))
    except RuntimeError:
        await ws.close(code=1008)
