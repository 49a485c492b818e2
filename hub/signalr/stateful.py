"""Stateful reconnect (hub protocol version 2): the pipe between a HubConnection and whichever
transport carries it at the moment.

With stateful reconnect a connection outlives its WebSocket: when the socket drops, the client opens
a new one to the same `?id=` (no negotiate, no handshake) and both sides resume where they were.
What makes that exact is numbering. Invocation, StreamItem, Completion, StreamInvocation and
CancelInvocation (types 1-5) are numbered from 1 in each direction, implicitly (the number is never
on the wire, both sides count); Ping, Close, Ack and Sequence are not numbered.

- Outgoing: every numbered message is kept, already encoded, until the peer acknowledges it
  (`Ack{sequenceId}` = the highest number it received). At most `limit` bytes wait for an Ack;
  past that, senders that can wait (`wait=True`: stream items) do, as ASP.NET's MessageBuffer does.
- On a new transport (`attach`) the server sends `Sequence{first unacknowledged number}` first,
  then everything unacknowledged, in order, before anything new.
- Incoming: the peer's reconnect starts with its own Sequence; until it arrives everything is
  ignored. A numbered message at or below the highest number already processed is a duplicate (the
  peer re-sent it because our Ack had not reached it) and is dropped (`should_process`).
- `ack_due` says when to tell the peer what we received (the keep-alive ticker sends it, about
  once a second, as ASP.NET does).

Mirrors ASP.NET Core's src/SignalR/common/Shared/MessageBuffer.cs and the JS client's
MessageBuffer.ts. See protocol-notes/streaming-and-reconnect.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from .messages import SEQUENCED_TYPES, Ack, HubMessage, Sequence
from .protocols.base import HubProtocol, ProtocolError
from .transports.base import Transport

log = logging.getLogger("hub.signalr")

#: Bytes of unacknowledged messages kept for a replay (ASP.NET's StatefulReconnectBufferSize).
DEFAULT_BUFFER_LIMIT = 100_000

_SEND_ERRORS = (ConnectionError, RuntimeError, OSError)


class StatefulPipe:
    """Numbering, replay buffer and duplicate suppression for one connection, and the transport it
    currently sends through (None while the client is away)."""

    def __init__(self, protocol: HubProtocol, transport: Transport | None, limit: int = DEFAULT_BUFFER_LIMIT):
        self.protocol = protocol
        self.transport = transport
        self.limit = limit
        # outgoing: (sequence id, encoded frame, size) of every numbered message not yet acked
        self._sent = 0  # sequence id of the last numbered message sent
        self._buffer: deque[tuple[int, str | bytes, int]] = deque()
        self.buffered_bytes = 0
        self._room = asyncio.Event()
        self._room.set()
        self._lock = asyncio.Lock()  # frames leave in numbering order; a replay is not interleaved
        # incoming
        self._next_receiving = 1
        self.latest_received = 0
        self._last_acked = 0  # the latest_received we last told the peer about
        self._waiting_for_sequence = False
        self.closed = False

    @property
    def attached(self) -> bool:
        return self.transport is not None

    # --- incoming (sans-I/O) ----------------------------------------------------------------------

    def should_process(self, message: HubMessage) -> bool:
        """False for a message to drop: anything before the peer's Sequence after a reconnect, and
        numbered messages already processed."""
        if self._waiting_for_sequence:
            if isinstance(message, Sequence):
                self._waiting_for_sequence = False
                return True
            return False
        if message.type not in SEQUENCED_TYPES:
            return True
        current = self._next_receiving
        self._next_receiving += 1
        if current <= self.latest_received:
            return False  # a duplicate: re-sent by a peer that had not seen our Ack
        self.latest_received = current
        return True

    def reset_sequence(self, sequence_id: int) -> None:
        """The peer's Sequence: the number of the next numbered message it sends."""
        if sequence_id > self._next_receiving:
            raise ProtocolError("Sequence ID greater than amount of messages we've received.")
        if sequence_id < 1:
            raise ProtocolError("Sequence ID must be at least 1.")
        self._next_receiving = sequence_id

    def ack(self, sequence_id: int) -> None:
        """The peer received every numbered message up to `sequence_id`: forget them."""
        buffer = self._buffer
        while buffer and buffer[0][0] <= sequence_id:
            self.buffered_bytes -= buffer.popleft()[2]
        if self.buffered_bytes <= self.limit:
            self._room.set()

    def ack_due(self) -> Ack | None:
        """The Ack to send now, if we processed numbered messages since the last one."""
        if self.latest_received > self._last_acked and self.transport is not None:
            return Ack(self.latest_received)
        return None

    # --- outgoing -----------------------------------------------------------------------------------

    async def send(self, message: HubMessage, data: str | bytes, *, wait: bool = False) -> None:
        """Send one encoded message. Numbered ones are kept until acked (and replayed after a
        reconnect); others are dropped while no transport is attached. `wait`: first wait while
        more than `limit` bytes are unacknowledged (never from the receive path: the Ack that makes
        room arrives there)."""
        if self.closed:
            return
        if message.type not in SEQUENCED_TYPES:
            async with self._lock:
                await self._transmit(data)
            return
        while wait and self.buffered_bytes > self.limit and not self.closed:
            self._room.clear()
            await self._room.wait()
        if self.closed:
            return
        async with self._lock:
            self._sent += 1
            size = len(data)
            self._buffer.append((self._sent, data, size))
            self.buffered_bytes += size
            await self._transmit(data)

    async def send_ack(self) -> None:
        ack = self.ack_due()
        if ack is None:
            return
        self._last_acked = ack.sequence_id
        async with self._lock:
            await self._transmit(self.protocol.encode(ack))

    async def attach(self, transport: Transport) -> None:
        """A reconnect: from now on send through `transport`, starting with our Sequence and the
        replay of everything unacknowledged; ignore what the peer sends until its Sequence."""
        self._waiting_for_sequence = True
        async with self._lock:
            self.transport = transport
            first = self._buffer[0][0] if self._buffer else self._sent + 1
            replay = [data for _, data, _ in self._buffer]
            log.debug("stateful reconnect: Sequence %d, replaying %d message(s)", first, len(replay))
            await self._transmit(self.protocol.encode(Sequence(first)))
            for data in replay:
                await self._transmit(data)

    def detach(self, transport: Transport) -> None:
        """`transport` is gone; keep numbering and buffering until the next `attach`."""
        if self.transport is transport:
            self.transport = None

    def close(self) -> None:
        """The connection is over: release waiting senders; later sends are dropped."""
        self.closed = True
        self.transport = None
        self._buffer.clear()
        self.buffered_bytes = 0
        self._room.set()

    async def _transmit(self, data: str | bytes) -> None:
        transport = self.transport
        if transport is None:
            return
        try:
            await transport.send(data)
        except _SEND_ERRORS as exc:
            # The socket died under us: stay numbered and buffered; the reconnect replays it.
            log.debug("stateful connection: send failed, waiting for a reconnect: %s", exc)
            self.detach(transport)
