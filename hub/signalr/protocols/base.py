"""The one interface every hub protocol codec implements (sans-I/O: bytes in, messages out).

A transport never knows which protocol runs over it: it hands frames to a MessageReader and sends
what `encode` returns (str goes out as a text frame, bytes as a binary frame).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ..messages import HubMessage

#: A hub's decode-time binder for one method and protocol (ASP.NET's IInvocationBinder; declared
#: with `hub_method(binders=…)`, hub.py): the encoded arguments array (this protocol's bytes) -> the
#: argument list, or None: decode them the usual way.
ArgumentBinder = Callable[[bytes], "list[Any] | None"]


@dataclass(frozen=True)
class TypedArguments:
    """What a binder binds, as one type, for a protocol that can decode a whole record at once: the
    binder's `typed` attribute, if it has one. MessagePack decodes the usual Invocation of the
    binder's target straight into `type` (a msgspec type for the arguments array, e.g.
    `tuple[str, str, list[Event]]`) and passes the value to `finish` for the argument list, or None
    to decline. A record `type` does not read, or `finish` declines, is read with `alternative` if
    there is one (e.g. JavaScript's float64 timestamps); a reader then tries first whichever read its
    last record. What neither reads goes to the binder as usual. So a binder with `typed` must accept
    (and make) exactly what each `finish` makes for any value of its type, and decline the rest."""

    type: Any
    finish: Callable[[Any], list[Any] | None]
    alternative: TypedArguments | None = None


class TransferFormat(str, enum.Enum):
    TEXT = "Text"
    BINARY = "Binary"


class ProtocolError(Exception):
    """Bytes that are not a valid hub message. Closes only the connection they came on, with a
    Close message carrying str(self)."""


class MessageTooLarge(ProtocolError):
    def __init__(self, limit: int):
        super().__init__(f"The maximum message size of {limit}B was exceeded.")
        self.limit = limit


class MessageReader(ABC):
    """Per-connection parser state: records may be split across frames, and one frame may hold
    several records."""

    @abstractmethod
    def feed(self, data: bytes | str) -> list[HubMessage]:
        """Take one frame's data; return every message completed by it, in order.
        Raises ProtocolError (MessageTooLarge when one record, or an unfinished one, passes the
        limit). After an error the reader must not be used again."""


class HubProtocol(ABC):
    name: ClassVar[str]
    transfer_format: ClassVar[TransferFormat]
    #: Highest handshake version accepted (ASP.NET accepts any version up to its own).
    max_version: ClassVar[int] = 2

    @abstractmethod
    def reader(self, max_message_size: int, binders: Mapping[str, ArgumentBinder] | None = None) -> MessageReader:
        """A fresh parser for one connection. `binders`: by lower-cased target, the hub's argument
        binders for this protocol (hub.py); a protocol may use them or ignore them."""

    @abstractmethod
    def encode(self, message: HubMessage) -> bytes | str:
        """One framed record (JSON: text ending in 0x1E; MessagePack: VarInt length + body)."""
