"""Stateful reconnect (hub protocol version 2), sans-I/O: the numbering of one connection's messages,
its replay buffer and its duplicate suppression. The session (session.py) owns one when the client
asked for version 2 on a transport that allows it.

With stateful reconnect a connection outlives its WebSocket: when the socket drops, the client opens
a new one to the same `?id=` (no negotiate, no handshake) and both sides resume where they were.
What makes that exact is numbering. Invocation, StreamItem, Completion, StreamInvocation and
CancelInvocation (types 1-5) are numbered from 1 in each direction, implicitly (the number is never
on the wire, both sides count); Ping, Close, Ack and Sequence are not numbered.

- Outgoing: every numbered message is kept, already encoded, until the peer acknowledges it
  (`Ack{sequenceId}` = the highest number it received). At most `limit` bytes wait for an Ack;
  past that, messages that can wait (stream items, server-to-client invocations) are held back
  (`has_room`), as ASP.NET's MessageBuffer does.
- On a new transport (`attach`) the server sends `Sequence{first unacknowledged number}` first,
  then everything unacknowledged, in order, before anything new.
- Incoming: the peer's reconnect starts with its own Sequence; until it arrives everything is
  ignored. A numbered message at or below the highest number already processed is a duplicate (the
  peer re-sent it because our Ack had not reached it) and is dropped (`should_process`).
- `ack_due` says when to tell the peer what we received (the keep-alive ticker asks about once a
  second, as ASP.NET does).

Mirrors ASP.NET Core's src/SignalR/common/Shared/MessageBuffer.cs and the JS client's
MessageBuffer.ts. See protocol-notes/streaming-and-reconnect.md.
"""

from __future__ import annotations

from collections import deque

from .messages import ACK, SEQUENCE, SEQUENCED_TYPES, Ack, HubMessage, Sequence
from .protocols.base import ProtocolError

#: Bytes of unacknowledged messages kept for a replay (ASP.NET's StatefulReconnectBufferSize).
DEFAULT_BUFFER_LIMIT = 100_000


class MessageBuffer:
    """Numbering, replay buffer and duplicate suppression for one connection, and whether a
    transport carries it at the moment (`attached`)."""

    __slots__ = (
        "limit",
        "attached",
        "buffered_bytes",
        "latest_received",
        "_sent",
        "_kept",
        "_next_receiving",
        "_last_acked",
        "_waiting_for_sequence",
    )

    def __init__(self, limit: int = DEFAULT_BUFFER_LIMIT):
        self.limit = limit
        self.attached = True  # made on the transport that carried the handshake
        # outgoing: (sequence id, encoded frame, size) of every numbered message not yet acked
        self._sent = 0  # sequence id of the last numbered message kept
        self._kept: deque[tuple[int, str | bytes, int]] = deque()
        self.buffered_bytes = 0
        # incoming
        self._next_receiving = 1
        self.latest_received = 0
        self._last_acked = 0  # the latest_received we last told the peer about
        self._waiting_for_sequence = False

    # --- incoming -------------------------------------------------------------------------------

    def receive(self, messages: list[HubMessage]) -> list[HubMessage]:
        """The messages to act on, in order: duplicates and anything before the peer's Sequence
        dropped, Acks and Sequences applied here. Raises ProtocolError for a Sequence that cannot
        be (then nothing of `messages` is to be acted on)."""
        kept = []
        for message in messages:
            if not self.should_process(message):
                continue
            kind = message.type
            if kind == ACK:
                self.ack(message.sequence_id)  # type: ignore[union-attr]
            elif kind == SEQUENCE:
                self.reset_sequence(message.sequence_id)  # type: ignore[union-attr]
            else:
                kept.append(message)
        return kept

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
        kept = self._kept
        while kept and kept[0][0] <= sequence_id:
            self.buffered_bytes -= kept.popleft()[2]

    def ack_due(self) -> Ack | None:
        """The Ack to send now, if we processed numbered messages since the last one."""
        if self.latest_received > self._last_acked and self.attached:
            return Ack(self.latest_received)
        return None

    def take_ack(self) -> Ack | None:
        """`ack_due`, counted as told."""
        ack = self.ack_due()
        if ack is not None:
            self._last_acked = ack.sequence_id
        return ack

    # --- outgoing -------------------------------------------------------------------------------

    @property
    def has_room(self) -> bool:
        """Messages that can wait for Acks may be numbered now (at most `limit` bytes wait)."""
        return self.buffered_bytes <= self.limit

    def keep(self, data: str | bytes) -> None:
        """Number one encoded message and keep it until it is acknowledged."""
        self._sent += 1
        size = len(data)
        self._kept.append((self._sent, data, size))
        self.buffered_bytes += size

    def kept(self) -> list[int]:
        """The sequence ids kept for a replay, oldest first."""
        return [sequence_id for sequence_id, _, _ in self._kept]

    def attach(self) -> tuple[Sequence, list[str | bytes]]:
        """A reconnect: our Sequence and the replay of everything unacknowledged, to send before
        anything new; what the peer sends is ignored until its own Sequence."""
        self._waiting_for_sequence = True
        self.attached = True
        first = self._kept[0][0] if self._kept else self._sent + 1
        return Sequence(first), [data for _, data, _ in self._kept]

    def detach(self) -> None:
        """The transport is gone: keep numbering and keeping until the next `attach`."""
        self.attached = False
