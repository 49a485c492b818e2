"""One SignalR connection's state, sans-I/O: bytes in, messages out; messages in, frames out.

No sockets, no awaits, no clocks: the asyncio pump (connection.py) feeds what its transport reads
into `receive`, acts on the messages it returns, queues what the hub sends (`queue`, `post_batch`)
and writes what `data_to_send` returns, calling `written` once it is written. Everything here is
tested with bytes alone (tests/unit/test_session.py), as python-websockets tests its `Protocol`.

The state and its transitions, in one table (`TRANSITIONS`; anything else raises
`InvalidTransition`, as h11's `_state.py` does):

| state     | event           | next      | what happens                                           |
|-----------|-----------------|-----------|--------------------------------------------------------|
| HANDSHAKE | ACCEPTED        | CONNECTED | `receive`: a request naming a protocol we speak; the   |
|           |                 |           | reply `{}` is queued, a frame of its own               |
| HANDSHAKE | ENDING          | CLOSING   | `close`: refused or late; its error reply is queued    |
| CONNECTED | ENDING          | CLOSING   | `close`: a Close is queued after what waits (or alone: |
|           |                 |           | what waits is dropped for a client fallen behind)      |
| HANDSHAKE | TRANSPORT_ENDED | CLOSED    | `transport_ended`: the pump ended the transport, or it |
| CONNECTED |                 |           | went away; nothing more is read or written             |
| CLOSING   |                 |           |                                                        |

Once CLOSING, nothing more is read (`receive` returns nothing) and nothing more is queued (`queue`
and `post_batch` refuse); what was queued and then the goodbye are still handed out by
`data_to_send`. A stateful connection whose transport is lost stays CONNECTED, detached
(`detached`): it numbers and keeps what it sends until the client resumes (`resume`).

It holds the connection's outbox (outbox.py), bounded by --max-send-queue and --max-send-queue-bytes:
past them `queue` and `post_batch` raise `FellBehind`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Mapping, Sequence

from .close_reason import CloseReason
from .handshake import HandshakeReader, handshake_response, select_protocol
from .messages import SEQUENCED_TYPES, Close, HubMessage
from .options import SignalROptions
from .outbox import Outbox, Queued
from .protocols import PROTOCOLS
from .protocols.base import ArgumentBinder, HubProtocol, MessageReader, TransferFormat
from .stateful import MessageBuffer


class State(enum.Enum):
    HANDSHAKE = "handshake"  # waiting for the client's handshake request
    CONNECTED = "connected"  # hub messages flow both ways
    CLOSING = "closing"  # ending: nothing more is read or queued; what waits, then the goodbye, is written
    CLOSED = "closed"  # the transport ended


class SessionEvent(enum.Enum):
    ACCEPTED = "the client's handshake request was accepted"
    ENDING = "the server started ending the connection"
    TRANSPORT_ENDED = "the transport ended"


TRANSITIONS: dict[State, dict[SessionEvent, State]] = {
    State.HANDSHAKE: {
        SessionEvent.ACCEPTED: State.CONNECTED,
        SessionEvent.ENDING: State.CLOSING,
        SessionEvent.TRANSPORT_ENDED: State.CLOSED,
    },
    State.CONNECTED: {SessionEvent.ENDING: State.CLOSING, SessionEvent.TRANSPORT_ENDED: State.CLOSED},
    State.CLOSING: {SessionEvent.TRANSPORT_ENDED: State.CLOSED},
    State.CLOSED: {},
}


class InvalidTransition(RuntimeError):
    """An event the current state does not allow: a bug in the caller, never the client's doing."""


#: A protocol's name -> the hub's argument binders for it, by lower-cased target.
BindersFor = Callable[[str], Mapping[str, ArgumentBinder]]


class Session:
    __slots__ = (
        "state",
        "close_reason",
        "protocol",
        "allow_stateful",
        "buffer",
        "_options",
        "_formats",
        "_binders_for",
        "_handshake",
        "_reader",
        "_outbox",
        "_control",
        "_in_flight",
    )

    def __init__(
        self,
        options: SignalROptions,
        transfer_formats: Collection[TransferFormat],
        binders: BindersFor,
        *,
        allow_stateful: bool = False,
    ):
        self.state = State.HANDSHAKE
        self.close_reason: CloseReason | None = None
        self.protocol: HubProtocol | None = None  # chosen by the handshake
        # Stateful reconnect: whether the transport can carry it (the endpoint says so); the buffer
        # exists once the handshake asked for version 2.
        self.allow_stateful = allow_stateful
        self.buffer: MessageBuffer | None = None
        self._options = options
        self._formats = transfer_formats
        self._binders_for = binders
        self._handshake: HandshakeReader | None = HandshakeReader()
        self._reader: MessageReader | None = None
        self._outbox = Outbox(options.max_send_queue, options.max_send_queue_bytes)
        self._control: list[str | bytes] | None = None  # frames that go before the outbox: handshake reply, Ack, Sequence and replay
        self._in_flight: list[Queued] = []

    def _transition(self, event: SessionEvent) -> None:
        try:
            self.state = TRANSITIONS[self.state][event]
        except KeyError:
            raise InvalidTransition(f"{event.name} is not allowed in state {self.state.name}") from None

    # --- incoming ---------------------------------------------------------------------------------

    def receive(self, data: bytes | str) -> list[HubMessage]:
        """One frame's data: the messages it completes, in order. Before the handshake, the
        handshake request (raises HandshakeError: the client is to get its text); after it, hub
        messages (raises ProtocolError: nothing of the frame is to be acted on). Under stateful
        reconnect, duplicates and anything before the client's Sequence are dropped and Acks and
        Sequences applied here; Pings (and, without stateful reconnect, Acks and Sequences) are
        returned for the caller to ignore. Nothing once CLOSING."""
        state = self.state
        if state is not State.CONNECTED:
            if state is not State.HANDSHAKE:
                return []
            data = self._receive_handshake(data)
            if not data:
                return []
        assert self._reader is not None
        messages = self._reader.feed(data)
        buffer = self.buffer
        return messages if buffer is None else buffer.receive(messages)

    def _receive_handshake(self, data: bytes | str) -> bytes:
        assert self._handshake is not None
        request = self._handshake.feed(data)
        if request is None:
            return b""
        protocol = self.protocol = select_protocol(request, PROTOCOLS, self._formats)
        self._reader = protocol.reader(self._options.max_message_size, self._binders_for(protocol.name))
        if request.version >= 2 and self.allow_stateful:
            self.buffer = MessageBuffer(self._options.stateful_buffer_size)
        self._transition(SessionEvent.ACCEPTED)
        # Its own frame: several clients broke on a handshake reply glued to the next message. In a
        # binary frame once a binary protocol is chosen, as ASP.NET: a MessagePack client may read
        # binary frames only.
        reply = handshake_response()
        self._queue_control(reply.encode() if protocol.transfer_format is TransferFormat.BINARY else reply)
        remaining = self._handshake.remaining
        self._handshake = None
        return remaining

    # --- outgoing ---------------------------------------------------------------------------------

    def queue(self, message: HubMessage, data: str | bytes, *, wait: bool = False) -> bool:
        """Queue one message, `data` its encoding. `wait`: under stateful reconnect it may be held
        back while the replay buffer is full. False when not connected; raises FellBehind past the
        outbox's bounds (a client that neither reads nor, under stateful reconnect, acknowledges)."""
        if self.state is not State.CONNECTED:
            return False
        if self.buffer is not None:
            self._check_replay()
        self._outbox.put(Queued(message, data, 1, wait))
        return True

    def post_batch(self, messages: Sequence[HubMessage], encoded: Sequence[str | bytes], joined: str | bytes) -> bool:
        """Queue server-to-client messages (`encoded`: each one's record, `joined`: all of them in
        order): one entry without stateful reconnect; else one each, numbered and kept for a replay,
        held back while the replay buffer is full. Like `queue` otherwise."""
        if self.state is not State.CONNECTED:
            return False
        if self.buffer is None:
            self._outbox.put(Queued(None, joined, len(messages), False))
            return True
        for message, data in zip(messages, encoded):
            self._check_replay()
            self._outbox.put(Queued(message, data, 1, True))
        return True

    def _check_replay(self) -> None:
        # Under stateful reconnect, what was sent but not yet acknowledged is kept for a replay: it
        # counts against the byte bound too (a client that reads but never acks).
        assert self.buffer is not None
        if self.buffer.buffered_bytes > self._outbox.max_bytes:
            raise self._outbox.fell_behind()

    @property
    def queued(self) -> int:
        """Messages waiting to be written to the client, or being written (the outbox)."""
        return self._outbox.messages

    @property
    def has_room(self) -> bool:
        """Below half of the outbox's bounds: producers that can wait may queue more."""
        return self._outbox.has_room

    @property
    def writable(self) -> bool:
        """`data_to_send` has something (or, detached, something to number and keep)."""
        if self._control:
            return True
        outbox = self._outbox
        if not outbox:
            return False
        buffer = self.buffer
        if buffer is None or buffer.has_room or self.state is not State.CONNECTED:
            return True
        head = outbox.first()
        return not head.wait or head.message is None or head.message.type not in SEQUENCED_TYPES

    def data_to_send(self) -> list[str | bytes]:
        """The frames to write now, in order, each in a write of its own: the handshake reply, Acks,
        a resume's Sequence and replay; then the outbox (without stateful reconnect all of it in one
        frame, as ASP.NET's pipe writes it; with it one frame a message, numbered), the goodbye
        last once CLOSING. What they hold of the outbox counts against its bounds until `written`."""
        if self.state is State.CLOSED:
            return []
        frames = self._control or []
        self._control = None
        outbox = self._outbox
        if outbox:
            buffer = self.buffer
            if buffer is None:
                batch = outbox.take()
                first = batch[0].data
                frames.append(first if len(batch) == 1 else first[:0].join(item.data for item in batch))
                self._in_flight += batch
            else:
                self._take_numbered(buffer, frames)
        return frames

    def _take_numbered(self, buffer: MessageBuffer, frames: list[str | bytes]) -> None:
        outbox = self._outbox
        # Once CLOSING no resume follows: nothing is held back for Acks any more.
        hold = self.state is State.CONNECTED
        while outbox:
            item = outbox.first()
            if item.message is not None and item.message.type in SEQUENCED_TYPES:
                if hold and item.wait and not buffer.has_room:
                    break  # until an Ack makes room
                buffer.keep(item.data)
            outbox.take_first()
            if buffer.attached:
                frames.append(item.data)
                self._in_flight.append(item)
            else:  # numbered and kept for the replay, or (not numbered) dropped: done with
                outbox.written([item])

    def written(self) -> None:
        """What `data_to_send` handed out is written (or given up): it no longer counts."""
        if self._in_flight:
            self._outbox.written(self._in_flight)
            self._in_flight = []

    def _queue_control(self, frame: str | bytes) -> None:
        if self._control is None:
            self._control = []
        self._control.append(frame)

    # --- stateful reconnect -----------------------------------------------------------------------

    @property
    def detached(self) -> bool:
        """Stateful, and waiting for the client to come back on a new transport."""
        return self.buffer is not None and not self.buffer.attached

    def detach(self) -> None:
        """The transport is lost; the connection waits for a resume (stateful reconnect only)."""
        assert self.buffer is not None
        self.buffer.detach()

    def resume(self) -> tuple[int, int]:
        """The client is back on a new transport: a fresh reader (a record cut short on the old one
        is re-sent whole), and our Sequence then the replay queued before anything else. Returns
        the Sequence's id and how many messages are replayed."""
        assert self.buffer is not None and self.protocol is not None
        protocol = self.protocol
        self._reader = protocol.reader(self._options.max_message_size, self._binders_for(protocol.name))
        sequence, replay = self.buffer.attach()
        self._control = [protocol.encode(sequence), *replay, *(self._control or ())]
        return sequence.sequence_id, len(replay)

    def acknowledge(self) -> bool:
        """Queue an Ack of what was received since the last one; False when none is due."""
        if self.buffer is None or self.state is not State.CONNECTED:
            return False
        ack = self.buffer.take_ack()
        if ack is None:
            return False
        assert self.protocol is not None
        self._queue_control(self.protocol.encode(ack))
        return True

    # --- ending -----------------------------------------------------------------------------------

    def close(self, reason: CloseReason, message: Close | None = None, *, drop_queued: bool = False) -> None:
        """Start ending (CLOSING). `message`: what to tell the client, queued last whatever the
        outbox's bounds: once connected that Close; before, a handshake reply carrying its error
        (none without one); None: nothing. `drop_queued`: what waits is dropped first (a client
        that fell behind, or that the hub closes)."""
        state = self.state
        self._transition(SessionEvent.ENDING)
        self.close_reason = reason
        if drop_queued:
            self._outbox.clear()
            self._in_flight = []
        if message is None:
            return
        if state is State.CONNECTED:
            assert self.protocol is not None
            self._outbox.put_last(Queued(message, self.protocol.encode(message), 1, False))
        elif message.error is not None:
            self._outbox.put_last(Queued(None, handshake_response(message.error), 1, False))

    def transport_ended(self, reason: CloseReason | None = None) -> None:
        """The transport ended (the pump ended it, or it went away): CLOSED, nothing left to write.
        `reason`: why, when the connection was not already ending."""
        self._transition(SessionEvent.TRANSPORT_ENDED)
        if self.close_reason is None:
            self.close_reason = reason
        self._outbox.clear()
        self._in_flight = []
        self._control = None
