"""One SignalR connection above its transport: handshake, message loop, keep-alive, close.

States: HANDSHAKE -> CONNECTED -> CLOSED. The transport pushes frames into `receive`; everything
sent goes through `send` (serialised, so frames from Completions, stream items and pings never
interleave). Timers are not per-connection tasks: `KeepAlive` (below) sweeps every connection on one
ticker, which keeps an idle connection cheap.

Stateful reconnect (handshake version 2 on a transport that allows it): sends go through a
`StatefulPipe` (stateful.py), which numbers and keeps them; when the transport is lost the
connection stays CONNECTED without one (`transport_lost`) until the client comes back (`resume`)
or the endpoint gives up after the disconnect timeout (`gone`).

Everything sent waits in one bounded outbox (outbox.py): Completions and stream items (`send`),
server-initiated messages (`post`, a hub calling client methods, groups.py), pings. A client that
lets more than `max_send_queue` messages or `max_send_queue_bytes` pile up (it does not read) has
fallen behind and is closed (`abort`) with a Close saying so; its streams end with it.

Per-connection limits: at most `max_streams` stream invocations open at once (the next is refused
with a Completion error, the connection stays open), and at most `max_invocations` invocations whose
Completion is not queued yet: past that the connection stops reading its client until one completes
(back-pressure through the transport; nothing is dropped, and the client timeout does not run while
the server is the one not reading).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from dataclasses import dataclass
from typing import Sequence

from .dispatcher import HubDispatcher, UploadBudget, UploadStream
from .hub import CallContext
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
    Completion,
    HubMessage,
)
from .protocols import PROTOCOLS
from .protocols.base import HubProtocol, MessageReader, MessageTooLarge, ProtocolError, TransferFormat
from .outbox import Outbox, Queued
from .stateful import DEFAULT_BUFFER_LIMIT, StatefulPipe
from .transports.base import GOODBYE_TIMEOUT, Transport

log = logging.getLogger("hub.signalr")


@dataclass(slots=True)
class SignalROptions:
    keepalive_interval: float = 15.0
    client_timeout: float = 30.0
    handshake_timeout: float = 15.0
    disconnect_timeout: float = 15.0
    max_message_size: int = 1_048_576
    shutdown_timeout: float = 10.0
    poll_timeout: float = 90.0  # how long a long poll waits for data before answering 200 empty
    stateful_reconnect: bool = True  # offered in negotiate to clients that ask (WebSockets only)
    stateful_buffer_size: int = DEFAULT_BUFFER_LIMIT  # unacknowledged bytes kept for a replay
    max_send_queue: int = 10_000  # messages waiting to be written to one client before it is closed as fallen behind
    max_send_queue_bytes: int = 16 * 1024 * 1024  # the same, in encoded bytes
    max_streams: int = 100  # stream invocations (uploads and downloads) open at once on one connection
    max_invocations: int = 100  # invocations whose Completion is not queued yet, before reading stops


class Flag:
    """asyncio.Event's is_set/set/wait without the deque an Event makes at birth: one per connection,
    and an idle hub holds tens of thousands of connections."""

    __slots__ = ("_value", "_event")

    def __init__(self) -> None:
        self._value = False
        self._event: asyncio.Event | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        self._value = True
        if self._event is not None:
            self._event.set()

    async def wait(self) -> bool:
        if not self._value:
            if self._event is None:
                self._event = asyncio.Event()
            await self._event.wait()
        return True


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
        log_id: str | None = None,
    ):
        self.connection_id = connection_id
        # How logs name the connection: not a secret (under negotiate v0 the connection id is the
        # connection token, which must never be logged).
        self.log_id = log_id or connection_id
        self.transport = transport
        self.dispatcher = dispatcher
        self.options = options
        self.call = CallContext(connection_id=connection_id, user=user)
        self.state = State.HANDSHAKE
        self.protocol: HubProtocol | None = None
        self._handshake = HandshakeReader()
        self._reader: MessageReader | None = None
        now = time.monotonic()
        self.created = now
        self.last_sent = now
        self.last_received: float | None = None  # the client timeout is armed by the first message
        self._send_lock = asyncio.Lock()
        # What `send` queued, written by one flush on the next loop iteration: the Completions of
        # every frame read in one go leave in one frame (as ASP.NET's pipe does), not a write each.
        self._outbox = Outbox(options.max_send_queue, options.max_send_queue_bytes)
        self._flushing: asyncio.Task | None = None
        self._goodbye: asyncio.Task | None = None  # `abort`'s Close, written after the frame in flight
        self.uploads: dict[str, UploadStream] = {}
        self.streams: dict[str, asyncio.Task] = {}
        # Made when first needed: an idle hub holds tens of thousands of connections.
        self._tasks: set[asyncio.Task] | None = None
        self._cancel_on_close: set[asyncio.Task] | None = None
        self.closed = Flag()
        self.accepting = True  # False while the server shuts down: new frames are dropped unanswered
        self._receiving = 0
        self._idle: asyncio.Event | None = None  # made by drain() when it has to wait: idle connections stay small
        # Stateful reconnect: set by the endpoint when the client negotiated it on a transport that
        # can carry it; the pipe exists once the handshake asked for version 2.
        self.allow_stateful = False
        self.pipe: StatefulPipe | None = None
        self._receive_lock = asyncio.Lock()  # frames are applied one at a time, even across a resume
        self.open_streams = 0  # stream invocations running (the dispatcher counts them)
        self._upload_budget: UploadBudget | None = None
        self.pending = 0  # invocations whose Completion is not queued yet (deferred ones)
        self._completed: asyncio.Event | None = None  # made when reading has to wait for `pending` to fall
        self.stalled = False  # the server stopped reading this client (too many pending invocations)

    # --- incoming ------------------------------------------------------------------------------

    async def receive(self, data: bytes | str, via: Transport | None = None) -> None:
        """One frame from the transport (`via`: which one; frames from a transport a resume
        replaced are dropped, the client re-sends them). Protocol errors close this connection only."""
        if self.state is State.CLOSED or not self.accepting:
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
        if self.state is State.HANDSHAKE:
            data = await self._receive_handshake(data)
            if not data:
                return
        assert self._reader is not None
        try:
            messages = self._reader.feed(data)
        except ProtocolError as exc:
            log.info("connection %s: protocol error: %s", self.log_id, exc)
            # The size error is shown as is (its text is what users search for); others say why.
            text = str(exc) if isinstance(exc, MessageTooLarge) else f"Connection closed with an error. {exc}"
            await self.close(error=text)
            return
        pipe = self.pipe
        for message in messages:
            if self.state is State.CLOSED:
                return
            if pipe is not None and not pipe.should_process(message):
                continue  # a duplicate, or anything before the client's Sequence after a resume
            if message.type == INVOCATION and self.pending >= self.options.max_invocations:
                await self._wait_for_completions()
                if self.state is State.CLOSED:
                    return
            await self._handle(message)

    async def _wait_for_completions(self) -> None:
        """Back-pressure: read nothing more until an invocation in flight completes. The client
        timeout does not run meanwhile (the server is the one not reading)."""
        self.stalled = True
        try:
            while self.pending >= self.options.max_invocations and self.state is not State.CLOSED:
                if self._completed is None:
                    self._completed = asyncio.Event()
                self._completed.clear()
                await self._completed.wait()
        finally:
            self.stalled = False
            self.last_received = time.monotonic()

    @property
    def upload_budget(self) -> UploadBudget:
        """Unread items of all this connection's upload streams (made by the first upload)."""
        if self._upload_budget is None:
            self._upload_budget = UploadBudget()
        return self._upload_budget

    def invocation_pending(self, task: asyncio.Task) -> None:
        """The dispatcher deferred an invocation's Completion to `task`."""
        self.pending += 1
        task.add_done_callback(self._invocation_settled)

    def _invocation_settled(self, _task: asyncio.Task) -> None:
        self.pending -= 1
        if self._completed is not None:
            self._completed.set()

    async def _receive_handshake(self, data: bytes | str) -> bytes:
        try:
            request = self._handshake.feed(data)
            if request is None:
                return b""
            self.protocol = select_protocol(request, PROTOCOLS, self.transport.transfer_formats)
        except HandshakeError as exc:
            log.info("connection %s: handshake failed: %s", self.log_id, exc)
            await self._send_raw(handshake_response(str(exc)))
            await self._terminate()
            return b""
        self._reader = self.protocol.reader(self.options.max_message_size, self.dispatcher.binders(self.protocol.name))
        if request.version >= 2 and self.allow_stateful:
            self.pipe = StatefulPipe(self.protocol, self.transport, self.options.stateful_buffer_size)
        self.state = State.CONNECTED
        # Its own frame: several clients broke on a handshake reply glued to the next message. In a
        # binary frame once a binary protocol is chosen, as ASP.NET: a MessagePack client may read
        # binary frames only.
        reply = handshake_response()
        await self._send_raw(reply.encode() if self.protocol.transfer_format is TransferFormat.BINARY else reply)
        self.dispatcher.connected(self)
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
        elif kind == ACK:
            if self.pipe is not None:  # only meaningful under stateful reconnect
                self.pipe.ack(message.sequence_id)  # type: ignore[union-attr]
        elif kind == SEQUENCE:
            if self.pipe is not None:
                try:
                    self.pipe.reset_sequence(message.sequence_id)  # type: ignore[union-attr]
                except ProtocolError as exc:
                    await self.close(error=f"Connection closed with an error. {exc}")

    # --- outgoing ------------------------------------------------------------------------------

    async def send(self, message: HubMessage, *, backpressure: bool = False) -> None:
        """Queue `message` for the client (outbox.py). `backpressure`: the caller can wait (a stream
        producer, running beside the receive path): wait while the queue is over half full, and
        under stateful reconnect while the replay buffer is full. Never from the receive path,
        where the client's Ack that makes room arrives: there the bounded queue closes a client
        that lets too much pile up."""
        if self.state is not State.CONNECTED:
            return
        assert self.protocol is not None
        try:
            data = self.protocol.encode(message)
        except (TypeError, ValueError, OverflowError) as exc:
            # A hub result the protocol cannot carry: the caller gets an error, not a dead connection.
            if not isinstance(message, Completion) or message.error is not None:
                raise
            log.error("connection %s: cannot encode result of %s: %s", self.log_id, message.invocation_id, exc)
            data = self.protocol.encode(
                Completion.with_error(message.invocation_id, "An unexpected error occurred: the result could not be serialized.")
            )
        if backpressure and not self._outbox.has_room:
            await self._outbox.wait_for_room()
            if self.state is not State.CONNECTED:
                return
        self._queue(Queued(message, data, 1, backpressure))

    def _queue(self, item: Queued) -> bool:
        """Into the outbox, or, past its bounds, the client has fallen behind and is closed."""
        pipe = self.pipe
        # Under stateful reconnect, what was sent but not yet acknowledged is kept for a replay:
        # it counts against the byte bound too (a client that reads but never acks).
        if not self._outbox.fits(item.count, len(item.data)) or (
            pipe is not None and pipe.buffered_bytes > self._outbox.max_bytes
        ):
            self.abort(_fell_behind(self.options))
            return False
        self._outbox.put(item)
        if self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush_soon())
        return True

    async def _flush_soon(self) -> None:
        try:
            await self._flush()
        finally:
            self._flushing = None

    async def _flush(self) -> None:
        """Write what was queued, in order: without stateful reconnect in as few frames as it takes
        (the Completions of every frame read in one go leave in one frame, as ASP.NET's pipe does);
        with it, one numbered message at a time through the pipe."""
        while self._outbox and self.state is not State.CLOSED:
            batch = self._outbox.take()
            try:
                if self.pipe is None:
                    first = batch[0].data
                    await self._send_raw(first if len(batch) == 1 else first[:0].join(item.data for item in batch))
                else:
                    for item in batch:
                        assert item.message is not None
                        await self.pipe.send(item.message, item.data, wait=item.wait)
                        self.last_sent = time.monotonic()
            finally:
                self._outbox.written(batch)

    async def _flush_all(self) -> None:
        """What the running flush is writing, then the rest: one writer at a time keeps the order."""
        flushing = self._flushing
        if flushing is not None:
            await asyncio.wait((flushing,))  # neither its error nor its cancellation is ours
        await self._flush()

    async def _send_raw(self, data: str | bytes) -> None:
        async with self._send_lock:
            try:
                await self.transport.send(data)
            except (ConnectionError, RuntimeError, OSError) as exc:
                log.debug("connection %s: send failed: %s", self.log_id, exc)
                self.state = State.CLOSED
                return
            self.last_sent = time.monotonic()

    async def ping(self) -> None:
        await self.send(PING_MESSAGE)

    # --- server-initiated messages: queued, never awaited ----------------------------------------

    def post(self, message: HubMessage, data: str | bytes | None = None) -> bool:
        """Queue `message` (`data`: already encoded with this connection's protocol) without waiting,
        for server-to-client invocations (groups.py): a writer's fan-out must never wait for a
        reader. The outbox is bounded (`--max-send-queue`, `--max-send-queue-bytes`); a client that
        lets more pile up has fallen behind and is closed with a Close saying so. False when the
        message was not queued (not connected, or closed now)."""
        if data is None:
            if self.protocol is None:
                return False
            data = self.protocol.encode(message)
        return self.post_batch((message,), (data,), data)

    def post_batch(
        self, messages: Sequence[HubMessage], encoded: Sequence[str | bytes], joined: str | bytes
    ) -> bool:
        """`post` for several messages at once (a fan-out's hot path: one call per connection per
        batch): `encoded` holds each one's record, `joined` all of them in order."""
        if self.state is not State.CONNECTED or self.protocol is None:
            return False
        if self.pipe is None:
            return self._queue(Queued(None, joined, len(messages), False))
        # Stateful: each message on its own, numbered by the pipe and kept for a replay; they wait
        # for the client's Acks when the replay buffer is full (and so fill the outbox).
        for message, data in zip(messages, encoded):
            if not self._queue(Queued(message, data, 1, True)):
                return False
        return True

    def abort(self, error: str) -> None:
        """Close now, without waiting: what is queued is dropped, the connection is gone at once (it
        leaves its groups, its streams stop), and a Close carrying `error` follows the frame being
        written, if any. A client that does not read gets it when it reads again; the transport is
        ended within GOODBYE_TIMEOUT whether or not it could be written."""
        if self.state is State.CLOSED or self.protocol is None:
            return
        log.info("connection %s: closed: %s", self.log_id, error)
        close = self.protocol.encode(Close(error=error))
        self._outbox.clear()
        self.state = State.CLOSED  # from now on nothing is queued; the caller may be iterating a group
        if self._flushing is not None:
            self._flushing.cancel()  # it may be waiting for a client that does not read
        self._goodbye = asyncio.get_running_loop().create_task(self._say_goodbye(self.transport, close))

    async def goodbye_written(self) -> None:
        """Returns once `abort`'s Close is written or given up (bounded: GOODBYE_TIMEOUT, twice)."""
        if self._goodbye is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._goodbye)

    async def _say_goodbye(self, transport: Transport, close: str | bytes) -> None:
        self.gone(True)
        async with self._send_lock:
            with contextlib.suppress(ConnectionError, RuntimeError, OSError, asyncio.TimeoutError):
                await asyncio.wait_for(transport.send(close), GOODBYE_TIMEOUT)
        await transport.close()

    # --- stateful reconnect ---------------------------------------------------------------------

    @property
    def detached(self) -> bool:
        """Stateful and waiting for the client to come back on a new transport."""
        return self.pipe is not None and not self.pipe.attached

    def transport_lost(self, transport: Transport) -> bool:
        """The endpoint says `transport` ended. True when the connection lives on (stateful: it waits
        for a resume, or a resume already replaced that transport); False when it is over."""
        if self.pipe is None or self.state is not State.CONNECTED or self.closed.is_set():
            return False
        if transport is self.transport:
            self.pipe.detach(transport)
            log.info("connection %s: transport lost, kept for a stateful reconnect", self.log_id)
        return True

    async def resume(self, transport: Transport) -> None:
        """The client reconnected on `transport` (stateful reconnect): end the previous transport if
        it is still there, then send our Sequence and replay what the client has not acknowledged."""
        assert self.pipe is not None and self.protocol is not None
        previous, self.transport = self.transport, transport
        # A record cut short on the old socket is re-sent whole by the client: start a fresh parser.
        self._reader = self.protocol.reader(self.options.max_message_size, self.dispatcher.binders(self.protocol.name))
        self.last_received = time.monotonic()
        if previous is not transport:
            self.pipe.detach(previous)
            await previous.close()
        await self.pipe.attach(transport)
        self.last_sent = time.monotonic()
        log.info("connection %s: resumed (stateful reconnect)", self.log_id)

    async def send_ack(self) -> None:
        if self.pipe is not None and self.state is State.CONNECTED:
            await self.pipe.send_ack()

    # --- bookkeeping for the dispatcher --------------------------------------------------------

    def track(
        self, task: asyncio.Task, stream_invocation_id: str | None = None, *, cancel_on_close: bool = False
    ) -> None:
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if cancel_on_close or stream_invocation_id is not None:
            if self._cancel_on_close is None:
                self._cancel_on_close = set()
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
        if self._receiving:
            self._idle = asyncio.Event()
            try:
                await asyncio.wait_for(self._idle.wait(), timeout)
            except asyncio.TimeoutError:
                return
        pending = [t for t in self._tasks or () if not t.done()]
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
        # What was queued (a Close among it) goes out before the transport ends, unless the client
        # does not read: then it is given up after GOODBYE_TIMEOUT.
        try:
            await asyncio.wait_for(self._flush_all(), GOODBYE_TIMEOUT)
        except asyncio.TimeoutError:
            log.info("connection %s: the client does not read; closing without its last messages", self.log_id)
            if self._flushing is not None:
                self._flushing.cancel()
        self._outbox.clear()
        self.state = State.CLOSED
        await self.transport.close()
        self.gone(was_connected)

    def gone(self, was_connected: bool | None = None) -> None:
        """The transport is gone: stop this connection's work. Idempotent."""
        if self.closed.is_set():
            return
        self.state = State.CLOSED
        self.closed.set()
        if self.pipe is not None:
            self.pipe.close()
        # Streams and uploads end with their connection; deferred Completions finish on their own
        # (what they wrote stays written) and their sends are dropped.
        for task in list(self._cancel_on_close or ()):
            task.cancel()
        if was_connected if was_connected is not None else self.protocol is not None:
            self.dispatcher.disconnected(self)


def _fell_behind(options: SignalROptions) -> str:
    return (
        f"Connection closed with an error. The client fell behind: more than {options.max_send_queue} messages "
        f"or {options.max_send_queue_bytes} bytes were waiting to be sent to it (--max-send-queue, "
        "--max-send-queue-bytes). Reconnect and subscribe again."
    )


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
                if conn.pipe is not None:
                    if conn.detached:
                        continue  # no pings, no client timeout: the endpoint's disconnect timeout applies
                    if conn.pipe.ack_due() is not None:  # about once a second, as ASP.NET
                        asyncio.ensure_future(conn.send_ack())
                if conn.state is State.HANDSHAKE and now - conn.created >= o.handshake_timeout:
                    asyncio.ensure_future(_fail_handshake(conn))
                elif conn.state is State.CONNECTED and not conn.transport.inherent_keepalive:
                    if conn.stalled:
                        pass  # the server is the one not reading: no client timeout
                    elif conn.last_received is not None and now - conn.last_received >= o.client_timeout:
                        asyncio.ensure_future(
                            conn.close(error="Connection closed with an error. The client timed out: nothing "
                                       f"received for {o.client_timeout:g} s.")
                        )
                    elif now - conn.last_sent >= o.keepalive_interval:
                        conn.post(PING_MESSAGE)  # queued: no task a ping (thousands of idle connections)


async def _fail_handshake(conn: HubConnection) -> None:
    if conn.state is not State.HANDSHAKE:
        return
    log.info("connection %s: handshake timed out", conn.log_id)
    conn.state = State.CLOSED
    await conn._send_raw(handshake_response("Handshake was canceled."))
    await conn._terminate()
