"""One SignalR connection's asyncio pump: bytes between its transport and its session, and the work
its dispatcher hands back.

The state, the handshake, the message reader, the stateful numbering and the bounded outbox are the
session's (session.py, sans-I/O). This module only moves: the transport pushes frames into
`receive`, which feeds the session and hands each message to the dispatcher, running the `Job` it
may return beside the receive loop (inflight.py, with its bounds); what the hub sends is queued on
the session (`send`, `post`, `post_batch`) and written by the write half (writer.py), one writer at
a time, in the session's order. Timers are not here: keepalive.py sweeps every connection.

Ending. A connection ends one way, `end(reason, …)`, whatever the reason (`CloseReason`); `close`,
`abort` and `gone` only say which kind of end. Once it starts ending:
- nothing more is read (arriving frames are dropped), nothing more is queued (`send` does nothing,
  `post` returns False);
- what was queued is still written, then the goodbye (a Close; before the handshake, its error
  reply), within GOODBYE_TIMEOUT; unless the end drops what waits (`abort`: a client that fell
  behind, or that the hub closes): then the goodbye follows the frame being written;
- the transport is ended, and the session is CLOSED;
- the hub is told, once (`on_disconnected`; the connection leaves its groups; `closed` is set), and
  the streams and uploads are cancelled: after the transport ended; first thing when what waits
  was dropped (in a task of its own: the call that ended it may be iterating a group); at once
  when the transport is gone (`gone`). Deferred Completions run to their end, their sends dropped;
- a second `end` changes nothing (the first reason stands), except that a transport gone stops
  the connection's work at once.
A transport that fails a write is over for the session at once (CLOSED, writer.py); the connection
then ends as for any transport gone, when the endpoint sees that transport end (`gone`).
A stateful connection whose transport is lost does not end: it waits, detached, for a `resume`, or
for the endpoint to give up (`gone`) after the disconnect timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Sequence

from .call import CallContext
from .close_reason import CloseReason
from .dispatcher import HubDispatcher
from .handshake import HandshakeError
from .inflight import InFlight
from .messages import CANCEL_INVOCATION, CLOSE, COMPLETION, INVOCATION, STREAM_INVOCATION, STREAM_ITEM, Close, Completion, HubMessage
from .options import SignalROptions
from .outbox import FellBehind
from .protocols.base import HubProtocol, MessageTooLarge, ProtocolError
from .session import Session, State
from .stateful import MessageBuffer
from .streaming import ConnectionStreams
from .transports.base import GOODBYE_TIMEOUT, Transport
from .user import User
from .writer import Writer

log = logging.getLogger("hub.signalr")


class Flag:
    """asyncio.Event's is_set/set without the deque an Event makes at birth: one per connection,
    and an idle hub holds tens of thousands of connections."""

    __slots__ = ("_value",)

    def __init__(self) -> None:
        self._value = False

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        self._value = True


class HubConnection:
    # Slots: an idle hub holds tens of thousands of these (bench/RESULTS.md, idle connections).
    __slots__ = (
        "connection_id", "log_id", "dispatcher", "options", "call", "session", "writer", "created",
        "last_received", "closed", "accepting", "_receive_lock", "_receiving", "_idle", "_ending", "_told",
        "_inflight",
    )  # fmt: skip

    def __init__(
        self,
        connection_id: str,
        transport: Transport,
        dispatcher: HubDispatcher,
        options: SignalROptions,
        user: User | None = None,
        log_id: str | None = None,
    ):
        self.connection_id = connection_id
        # How logs name the connection: not a secret (under negotiate v0 the connection id is the
        # connection token, which must never be logged).
        self.log_id = log_id or connection_id
        self.dispatcher = dispatcher
        self.options = options
        self.call = CallContext(connection_id, None if user is None else user.name, user)
        self.session = Session(options, transport.transfer_formats, dispatcher.binders)
        self.writer = Writer(self.session, transport, self.log_id)
        self.created = self.writer.last_sent
        self.last_received: float | None = None  # the client timeout is armed by the first message
        self.closed = Flag()  # the hub was told the connection is gone; its work is stopped
        self.accepting = True  # False while the server shuts down: new frames are dropped unanswered
        self._receive_lock = asyncio.Lock()  # frames are applied one at a time, even across a resume
        self._receiving = 0
        self._idle: asyncio.Event | None = None  # made by drain() when it has to wait
        self._ending: asyncio.Task | None = None  # `end`'s work, once it started
        self._told = False  # the hub was told the connection is there (dispatcher.connected)
        # Made when first needed: an idle hub holds tens of thousands of connections.
        self._inflight: InFlight | None = None

    @property
    def transport(self) -> Transport:
        """The transport carrying the connection now (a stateful resume replaces it)."""
        return self.writer.transport

    @property
    def last_sent(self) -> float:
        return self.writer.last_sent

    @property
    def state(self) -> State:
        return self.session.state

    @property
    def protocol(self) -> HubProtocol | None:
        return self.session.protocol

    @property
    def allow_stateful(self) -> bool:
        """Set by the endpoint when the client negotiated stateful reconnect on a transport that
        can carry it; the handshake then makes the session's MessageBuffer if it asks for version 2."""
        return self.session.allow_stateful

    @allow_stateful.setter
    def allow_stateful(self, allowed: bool) -> None:
        self.session.allow_stateful = allowed

    @property
    def pipe(self) -> MessageBuffer | None:
        """The stateful-reconnect buffer; None when this connection cannot be resumed."""
        return self.session.buffer

    @property
    def detached(self) -> bool:
        """Stateful and waiting for the client to come back on a new transport."""
        return self.session.detached

    @property
    def inflight(self) -> InFlight:
        """The work running beside the receive loop (made by the first Job or stream)."""
        if self._inflight is None:
            self._inflight = InFlight(self.options.max_invocations, self.options.max_streams, self.dispatcher.observer)
        return self._inflight

    @property
    def streams(self) -> ConnectionStreams:
        return self.inflight.streams

    @property
    def stalled(self) -> bool:
        """The server stopped reading this client (too many invocations in flight)."""
        return self._inflight is not None and self._inflight.stalled

    # --- incoming ---------------------------------------------------------------------------------

    async def receive(self, data: bytes | str, via: Transport | None = None) -> None:
        """One frame from the transport (`via`: which one; frames from a transport a resume
        replaced are dropped, the client re-sends them). Protocol errors close this connection only."""
        state = self.session.state
        if (state is not State.CONNECTED and state is not State.HANDSHAKE) or not self.accepting:
            return
        self.last_received = time.monotonic()
        self._receiving += 1
        try:
            async with self._receive_lock:
                if via is None or via is self.transport:
                    await self._receive(data)
        finally:
            self._receiving -= 1
            if not self._receiving and self._idle is not None:
                self._idle.set()

    async def _receive(self, data: bytes | str) -> None:
        session = self.session
        handshaking = session.state is State.HANDSHAKE
        try:
            messages = session.receive(data)
        except HandshakeError as exc:
            log.info("connection %s: handshake failed: %s", self.log_id, exc)
            await _ended(self.end(CloseReason.ERROR, Close(error=str(exc))))
            return
        except ProtocolError as exc:
            log.info("connection %s: protocol error: %s", self.log_id, exc)
            # The size error is shown as is (its text is what users search for); others say why.
            text = str(exc) if isinstance(exc, MessageTooLarge) else f"Connection closed with an error. {exc}"
            await _ended(self.end(CloseReason.ERROR, Close(error=text)))
            return
        if handshaking and session.state is State.CONNECTED:
            await self.writer.flush()  # the handshake reply, in a frame of its own
            if session.state is not State.CONNECTED:
                return
            self._told = True
            self.dispatcher.connected(self)
        for message in messages:
            if session.state is not State.CONNECTED:
                return
            if message.type == INVOCATION and self._inflight is not None and self._inflight.full:
                await self._inflight.wait_for_room(self._connected)
                self.last_received = time.monotonic()  # the client timeout restarts from here
                if session.state is not State.CONNECTED:
                    return
            await self._handle(message)
        if session.buffer is not None and session.writable:  # an Ack made room in the replay buffer
            self.writer.flush_soon()

    async def _handle(self, message: HubMessage) -> None:
        kind = message.type
        dispatcher = self.dispatcher
        if kind == INVOCATION:
            job = await dispatcher.invoke(self, message)  # type: ignore[arg-type]
        elif kind == STREAM_ITEM:
            await dispatcher.stream_item(self, message)  # type: ignore[arg-type]
            return
        elif kind == COMPLETION:
            dispatcher.stream_complete(self, message)  # type: ignore[arg-type]
            return
        elif kind == STREAM_INVOCATION:
            job = await dispatcher.stream_invoke(self, message)  # type: ignore[arg-type]
        elif kind == CANCEL_INVOCATION:
            dispatcher.cancel(self, message)  # type: ignore[arg-type]
            return
        elif kind == CLOSE:
            await _ended(self.end(CloseReason.NORMAL))
            return
        else:
            return  # a Ping; Acks and Sequences were applied by the session
        if job is not None:
            self.inflight.run(job)

    def _connected(self) -> bool:
        return self.session.state is State.CONNECTED

    # --- outgoing ---------------------------------------------------------------------------------

    async def send(self, message: HubMessage, *, backpressure: bool = False) -> None:
        """Queue a reply. `backpressure`: the caller can wait (a stream producer, beside the receive
        path): wait while the outbox is over half full, and under stateful reconnect let it be held
        back while the replay buffer is full. Never from the receive path, where the Ack that makes
        room arrives: there the bounded outbox closes a client that lets too much pile up."""
        data = self._encode_reply(message)
        if data is None:
            return
        if backpressure and not self.session.has_room:
            await self.writer.wait_for_room()
            if self.session.state is not State.CONNECTED:
                return
        self._queue_reply(message, data, wait=backpressure)

    def send_now(self, message: HubMessage) -> None:
        """`send` without back-pressure, as a plain call (from a store future's done-callback)."""
        if (data := self._encode_reply(message)) is not None:
            self._queue_reply(message, data, wait=False)

    def _encode_reply(self, message: HubMessage) -> str | bytes | None:
        """The reply's record, None when the connection no longer takes replies."""
        protocol = self.session.protocol
        if self.session.state is not State.CONNECTED or protocol is None:
            return None
        try:
            return protocol.encode(message)
        except (TypeError, ValueError, OverflowError) as exc:
            # A hub result the protocol cannot carry: the caller gets an error, not a dead connection.
            if not isinstance(message, Completion) or message.error is not None:
                raise
            log.error("connection %s: cannot encode result of %s: %s", self.log_id, message.invocation_id, exc)
            return protocol.encode(
                Completion.with_error(message.invocation_id, "An unexpected error occurred: the result could not be serialized.")
            )

    def _queue_reply(self, message: HubMessage, data: str | bytes, *, wait: bool) -> None:
        try:
            self.session.queue(message, data, wait=wait)
        except FellBehind as behind:
            return self.abort(str(behind), CloseReason.FELL_BEHIND)
        self.writer.flush_soon()

    def post(self, message: HubMessage, data: str | bytes | None = None) -> bool:
        """Queue `message` (`data`: already encoded) without waiting, for server-to-client messages:
        a writer's fan-out must never wait for a reader. A client that lets more than the outbox
        holds pile up has fallen behind and is closed (`abort`). False when it was not queued."""
        if data is None:
            protocol = self.session.protocol
            if protocol is None:
                return False
            data = protocol.encode(message)
        return self.post_batch((message,), (data,), data)

    def post_batch(self, messages: Sequence[HubMessage], encoded: Sequence[str | bytes], joined: str | bytes) -> bool:
        """`post` for several messages at once (a fan-out's hot path: one call per connection per
        batch): `encoded` holds each one's record, `joined` all of them in order."""
        try:
            if not self.session.post_batch(messages, encoded, joined):
                return False
        except FellBehind as behind:
            self.abort(str(behind), CloseReason.FELL_BEHIND)
            return False
        self.writer.flush_soon()
        return True

    # --- stateful reconnect -----------------------------------------------------------------------

    def transport_lost(self, transport: Transport) -> bool:
        """The endpoint says `transport` ended. True when the connection lives on (stateful: it waits
        for a resume, or a resume already replaced that transport); False when it is over."""
        session = self.session
        if session.buffer is None or session.state is not State.CONNECTED or self.closed.is_set():
            return False
        if transport is self.transport:
            session.detach()
            log.info("connection %s: transport lost, kept for a stateful reconnect", self.log_id)
        return True

    async def resume(self, transport: Transport) -> None:
        """The client reconnected on `transport` (stateful reconnect): end the previous transport if
        it is still there, then send our Sequence and replay what the client has not acknowledged."""
        writer = self.writer
        previous, writer.transport = writer.transport, transport
        self.last_received = time.monotonic()
        if previous is not transport:
            self.session.detach()
            await previous.close()
        first, replayed = self.session.resume()
        log.debug("stateful reconnect: Sequence %d, replaying %d message(s)", first, replayed)
        await writer.flush()
        writer.last_sent = time.monotonic()
        log.info("connection %s: resumed (stateful reconnect)", self.log_id)

    async def send_ack(self) -> None:
        """Tell the client what was received since the last Ack (the keep-alive ticker asks)."""
        if self.session.acknowledge():
            await self.writer.flush()

    # --- work in flight ---------------------------------------------------------------------------

    async def drain(self, timeout: float) -> None:
        """Stop taking frames and wait (bounded) for in-flight work: the invocation being applied,
        deferred Completions, uploads, streams."""
        self.accepting = False
        deadline = time.monotonic() + timeout
        if self._receiving:
            self._idle = asyncio.Event()
            try:
                await asyncio.wait_for(self._idle.wait(), timeout)
            except asyncio.TimeoutError:
                return
        if self._inflight is not None:
            await self._inflight.drain(deadline)

    # --- ending: one way, `end`; `close`, `abort` and `gone` say which kind --------------------------

    def end(
        self, reason: CloseReason, message: Close | None = None, *, drop_queued: bool = False, transport_gone: bool = False
    ) -> asyncio.Task | None:
        """End this connection (see the module docstring for what may still happen then).
        `message`: what to tell the client last (session.Session.close); None: nothing.
        `drop_queued`: what waits is dropped, `message` follows the frame being written.
        `transport_gone`: nothing can be written any more; the work stops now.
        Returns the task finishing the end (await it to wait until the transport has ended), or
        None when nothing is left to wait for."""
        session = self.session
        ending = self._ending
        if ending is not None or session.state is State.CLOSED:
            if transport_gone:
                if session.state is not State.CLOSED:
                    session.transport_ended()
                self._release()
            return ending
        if transport_gone:
            session.transport_ended(reason)
            self._release()
            return None
        session.close(reason, message, drop_queued=drop_queued)
        self.writer.wake()  # a producer waiting for room finds the connection ending
        if self._inflight is not None:
            self._inflight.wake()  # and so does a receive waiting for a Completion
        if drop_queued:
            self.writer.cancel()  # it may be waiting for a client that does not read
        self._ending = asyncio.get_running_loop().create_task(self._finish(drop_queued))
        return self._ending

    async def _finish(self, drop_queued: bool) -> None:
        if drop_queued:
            self._release()  # a client that does not read: the hub stops sending to it now
        try:
            await asyncio.wait_for(self.writer.flush(), GOODBYE_TIMEOUT)
        except asyncio.TimeoutError:
            if not drop_queued:
                log.info("connection %s: the client does not read; closing without its last messages", self.log_id)
            self.writer.cancel()
        await self.transport.close()
        if self.session.state is not State.CLOSED:
            self.session.transport_ended()
        self._release()

    def _release(self) -> None:
        """Stop this connection's work and tell the hub it is gone, once."""
        if self.closed.is_set():
            return
        self.closed.set()
        self.writer.wake()
        if self._inflight is not None:
            self._inflight.wake()
            self._inflight.cancel_streams()
        if self._told:
            self.dispatcher.disconnected(self)

    async def close(self, error: str | None = None, allow_reconnect: bool = False, *, reason: CloseReason | None = None) -> None:
        """End after what is queued, telling a connected client with a Close carrying `error`;
        returns once the transport has ended. `reason` defaults to shutdown when the client may
        reconnect, else error when there is one, else normal."""
        if reason is None:
            reason = CloseReason.SHUTDOWN if allow_reconnect else CloseReason.ERROR if error else CloseReason.NORMAL
        message = Close(error=error, allow_reconnect=allow_reconnect) if self.session.state is State.CONNECTED else None
        await _ended(self.end(reason, message))

    def abort(self, error: str, reason: CloseReason = CloseReason.ERROR) -> None:
        """End now, without waiting: what is queued is dropped, the connection is gone at once (it
        leaves its groups, its streams stop), and a Close carrying `error` follows the frame being
        written, if any. A client that does not read gets it when it reads again; the transport is
        ended within GOODBYE_TIMEOUT whether or not it could be written."""
        if self.session.state is not State.CONNECTED:
            return
        log.debug("connection %s: closed: %s", self.log_id, error)  # the observer logs the close once, at info
        self.end(reason, Close(error=error), drop_queued=True)

    async def goodbye_written(self) -> None:
        """Returns once the end under way has written its goodbye and ended the transport, or given
        up (bounded: GOODBYE_TIMEOUT, twice)."""
        ending = self._ending
        if ending is not None and not ending.done():
            await asyncio.wait((ending,))  # neither its error nor its cancellation is ours

    def gone(self, reason: CloseReason = CloseReason.NORMAL) -> None:
        """The transport is gone (the endpoint says so): stop this connection's work. Idempotent."""
        self.end(reason, transport_gone=True)


async def _ended(ending: asyncio.Task | None) -> None:
    if ending is not None:
        await ending
