"""The SignalR hub messages, as plain values shared by every protocol.

A codec (JSON, MessagePack) turns bytes into these and back; the connection and the dispatcher
only ever see these. Field names follow the HubProtocol spec; see protocol-notes/hub-protocols.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

INVOCATION = 1
STREAM_ITEM = 2
COMPLETION = 3
STREAM_INVOCATION = 4
CANCEL_INVOCATION = 5
PING = 6
CLOSE = 7
ACK = 8
SEQUENCE = 9


@dataclass(slots=True)
class Invocation:
    """type 1. invocation_id None = fire-and-forget: never answered."""

    target: str
    arguments: list[Any]
    invocation_id: str | None = None
    stream_ids: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    type = INVOCATION


@dataclass(slots=True)
class StreamItem:
    """type 2. One item of a stream, in either direction."""

    invocation_id: str
    item: Any
    headers: dict[str, str] = field(default_factory=dict)
    type = STREAM_ITEM


@dataclass(slots=True)
class Completion:
    """type 3. error set = failed; has_result = a value (None allowed, that is JSON null / void
    Completion with result); neither = a stream's end or a void completion without result."""

    invocation_id: str
    error: str | None = None
    result: Any = None
    has_result: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    type = COMPLETION

    @classmethod
    def with_result(cls, invocation_id: str, result: Any) -> "Completion":
        return cls(invocation_id, None, result, True)  # positional: the hot path of every write's answer

    @classmethod
    def with_error(cls, invocation_id: str, error: str) -> "Completion":
        return cls(invocation_id, error)


@dataclass(slots=True)
class StreamInvocation:
    """type 4. The server answers with StreamItems then a Completion."""

    invocation_id: str
    target: str
    arguments: list[Any]
    stream_ids: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    type = STREAM_INVOCATION


@dataclass(slots=True)
class CancelInvocation:
    """type 5. The client no longer wants the stream it started."""

    invocation_id: str
    headers: dict[str, str] = field(default_factory=dict)
    type = CANCEL_INVOCATION


@dataclass(slots=True)
class Ping:
    type = PING


@dataclass(slots=True)
class Close:
    """type 7. allow_reconnect tells the client's automatic reconnect it may run."""

    error: str | None = None
    allow_reconnect: bool = False
    type = CLOSE


@dataclass(slots=True)
class Ack:
    """type 8 (stateful reconnect): the highest sequence id received."""

    sequence_id: int
    type = ACK


@dataclass(slots=True)
class Sequence:
    """type 9 (stateful reconnect): the sequence id of the next numbered message."""

    sequence_id: int
    type = SEQUENCE


HubMessage = Union[
    Invocation, StreamItem, Completion, StreamInvocation, CancelInvocation, Ping, Close, Ack, Sequence
]

# Messages that carry a sequence number under stateful reconnect (types 1-5).
SEQUENCED_TYPES = frozenset({INVOCATION, STREAM_ITEM, COMPLETION, STREAM_INVOCATION, CANCEL_INVOCATION})

PING_MESSAGE = Ping()
