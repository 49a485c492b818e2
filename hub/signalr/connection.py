"""One SignalR connection above its transport: handshake, message loop, keep-alive, close.

States: HANDSHAKE -> CONNECTED -> CLOSED. The transport pushes frames into `receive`; everything
sent goes through `send` (serialised, so frames from Completions, stream items and pings never
interleave). Timers are not per-connection tasks: `KeepAlive` (below) sweeps every connection on one
ticker, which keeps an idle connection cheap.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .dispatcher import HubDispatcher, UploadStream, new_call_context
from .handshake import HandshakeError, HandshakeReader, handshake_response, select_protocol
from .messages import (
    ACK,
    CANCEL_INVOCATION,
    CLOSE,
    COMPLETION,
    INVOCATION,
    PING,
    PING_MESSAGE,
    SEQUENCE,
    STREAM_INVOCATION,
    STREAM_ITEM,
    Close,
    HubMessage,
)
from .protocols import PROTOCOLS
from .protocols.base import HubProtocol, MessageReader, MessageTooLarge, ProtocolError
from .transports.base import Transport

if TYPE_CHECKING:
    from .hub import CallContext

log = logging.getLogger("hub.signalr")


@dataclass(slots=True)
class SignalROptions:
    keepalive_interval: float = 15.0
    client_timeout: float = 30.0
    handshake_timeout: float = 15.0
    disconnect_timeout: float = 15.0
    max_message_size: int = 1_048_576
    shutdown_timeout: float = 10.0


class State(enum.Enum):
    HANDSHAKE = 1
    CONNECTED = 2
    CLOSED = 3


class HubConnection:
    def __init__(
        self,
        connection_id: str,
        transport: Transport,
        dispatcher: HubDispatcher,
        options: SignalROptions,
        user: str | None = None,
    ):
        self.connection_id = connection_id
        self.transport = transport
        self.dispatcher = dispatcher
        self.options = options
        self.call: CallContext = new_call_context(connection_id, user)
        self.state = State.HANDSHAKE
        self.protocol: HubProtocol | None = None
        self._handshake = HandshakeReader()
        self._reader: MessageReader | None = None
        now = time.monotonic()
        self.created = now
        self.last_sent = now
        self.last_received: float | None = None  # the client timeout is armed by the first message
        self._send_lock = asyncio.Lock()
        self.uploads: dict[str, UploadStream] = {}
        self.streams: dict[str, asyncio.Task] = {}
        self._tasks: set[asyncio.Task] = set()
        self._cancel_on_close: set[asyncio.Task] = set()
        self.closed = asyncio.Event()
        self.accepting = True  # False while the server shuts down: new frames are dropped unanswered
        self._receiving = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # --- incoming ------------------------------------------------------------------------------

    async def receive(self, data: bytes | str) -> None:
        """One frame from the transport. Protocol errors close this connection only."""
        if self.state is State.CLOSED or not self.accepting:
            return
        self.last_received = time.monotonic()
        self._receiving += 1
        self._idle.clear()
        try:
            await self._receive(data)
        finally:
            self._receiving -= 1
            if not self._receiving:
                self._idle.set()

    async def _receive(self, data: bytes | str) -> None:
        if self.state is State.HANDSHAKE:
            data = await self._receive_handshake(data)
            if not data:
                return
        assert self._reader is not None
        try:
            messages = self._reader.feed(data)
        except ProtocolError as exc:
            log.info("connection %s: protocol error: %s", self.connection_id, exc)
            # The size error is shown as is (its text is what users search for); others say why.
            text = str(exc) if isinstance(exc, MessageTooLarge) else f"Connection closed with an error. {exc}"
            await self.close(error=text)
            return
        for message in messages:
            if self.state is State.CLOSED:
                return
            await self._handle(message)

    async def _receive_handshake(self, data: bytes | str) -> bytes:
        try:
            request = self._handshake.feed(data)
            if request is None:
                return b""
            self.protocol = select_protocol(request, PROTOCOLS, self.transport.transfer_formats)
        except HandshakeError as exc:
            log.info("connection %s: handshake failed: %s", self.connection_id, exc)
            await self._send_raw(handshake_response(str(exc)))
            await self._terminate()
            return b""
        self._reader = self.protocol.reader(self.options.max_message_size)
        self.state = State.CONNECTED
        # Its own frame: several clients broke on a handshake reply glued to the next message.
        await self._send_raw(handshake_response())
        self.dispatcher.hub.on_connected(self.call)
        return self._handshake.remaining

    async def _handle(self, message: HubMessage) -> None:
        kind = message.type
        if kind == INVOCATION:
            await self.dispatcher.invoke(self, message)  # type: ignore[arg-type]
        elif kind == STREAM_ITEM:
            await self.dispatcher.stream_item(self, message)  # type: ignore[arg-type]
        elif kind == COMPLETION:
            await self.dispatcher.stream_complete(self, message)  # type: ignore[arg-type]
        elif kind == STREAM_INVOCATION:
            await self.dispatcher.stream_invoke(self, message)  # type: ignore[arg-type]
        elif kind == CANCEL_INVOCATION:
            self.dispatcher.cancel(self, message)  # type: ignore[arg-type]
        elif kind == PING:
            pass
        elif kind == CLOSE:
            await self._terminate()
        elif kind in (ACK, SEQUENCE):
            pass  # only meaningful under stateful reconnect

    # --- outgoing ------------------------------------------------------------------------------

    async def send(self, message: HubMessage) -> None:
        if self.state is not State.CONNECTED:
            return
        assert self.protocol is not None
        await self._send_raw(self.protocol.encode(message))

    async def _send_raw(self, data: str | bytes) -> None:
        async with self._send_lock:
            try:
                await self.transport.send(data)
            except (ConnectionError, RuntimeError, OSError) as exc:
                log.debug("connection %s: send failed: %s", self.connection_id, exc)
                self.state = State.CLOSED
                return
            self.last_sent = time.monotonic()

    async def ping(self) -> None:
        await self.send(PING_MESSAGE)

    # --- bookkeeping for the dispatcher --------------------------------------------------------

    def open_upload(self, stream_id: str) -> UploadStream:
        upload = UploadStream()
        self.uploads[stream_id] = upload
        return upload

    def track(
        self, task: asyncio.Task, stream_invocation_id: str | None = None, *, cancel_on_close: bool = False
    ) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if cancel_on_close or stream_invocation_id is not None:
            self._cancel_on_close.add(task)
            task.add_done_callback(self._cancel_on_close.discard)
        if stream_invocation_id is not None:
            self.streams[stream_invocation_id] = task
            task.add_done_callback(lambda _t: self.streams.pop(stream_invocation_id, None))

    async def drain(self, timeout: float) -> None:
        """Stop taking frames and wait (bounded) for in-flight work: the invocation being applied,
        deferred Completions, uploads, streams."""
        self.accepting = False
        deadline = time.monotonic() + timeout
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=max(0.0, deadline - time.monotonic()))

    # --- ending ---------------------------------------------------------------------------------

    async def close(self, error: str | None = None, allow_reconnect: bool = False) -> None:
        """Say goodbye with a Close message, then end the transport."""
        if self.state is State.CONNECTED:
            await self.send(Close(error=error, allow_reconnect=allow_reconnect))
        await self._terminate()

    async def _terminate(self) -> None:
        if self.state is State.CLOSED and self.closed.is_set():
            return
        was_connected = self.state is State.CONNECTED or self.protocol is not None
        self.state = State.CLOSED
        await self.transport.close()
        self.gone(was_connected)

    def gone(self, was_connected: bool | None = None) -> None:
        """The transport is gone: stop this connection's work. Idempotent."""
        if self.closed.is_set():
            return
        self.state = State.CLOSED
        self.closed.set()
        # Streams and uploads end with their connection; deferred Completions finish on their own
        # (what they wrote stays written) and their sends are dropped.
        for task in list(self._cancel_on_close):
            task.cancel()
        if was_connected if was_connected is not None else self.protocol is not None:
            self.dispatcher.hub.on_disconnected(self.call)


class KeepAlive:
    """One ticker for every connection: pings after `keepalive_interval` of silence, closes a
    connection whose client said nothing for `client_timeout`, and fails a handshake that did not
    arrive within `handshake_timeout`."""

    def __init__(self, options: SignalROptions):
        self.options = options
        self.connections: set[HubConnection] = set()
        self._task: asyncio.Task | None = None
        intervals = [options.keepalive_interval, options.client_timeout, options.handshake_timeout]
        self.period = max(0.05, min(1.0, min(intervals) / 4))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._tick())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _tick(self) -> None:
        o = self.options
        while True:
            await asyncio.sleep(self.period)
            now = time.monotonic()
            for conn in list(self.connections):
                if conn.state is State.HANDSHAKE and now - conn.created >= o.handshake_timeout:
                    asyncio.ensure_future(_fail_handshake(conn))
                elif conn.state is State.CONNECTED:
                    if conn.last_received is not None and now - conn.last_received >= o.client_timeout:
                        asyncio.ensure_future(
                            conn.close(error="Connection closed with an error. The client timed out: nothing "
                                       f"received for {o.client_timeout:g} s.")
                        )
                    elif now - conn.last_sent >= o.keepalive_interval:
                        asyncio.ensure_future(conn.ping())


async def _fail_handshake(conn: HubConnection) -> None:
    if conn.state is not State.HANDSHAKE:
        return
    log.info("connection %s: handshake timed out", conn.connection_id)
    conn.state = State.CLOSED
    await conn._send_raw(handshake_response("Handshake was canceled."))
    await conn._terminate()
