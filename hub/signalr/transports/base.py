"""What the SignalR connection needs from a transport: a way to send frames and to end.

Incoming frames are pushed by the transport into `HubConnection.receive`, so the connection never
knows whether a WebSocket, an SSE stream or long polling carries it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from ..protocols.base import TransferFormat

#: How long ending a connection may wait to write its last frames to a client that does not read
#: (a transport's `close`, the connection's Close message): Kestrel's grace before it aborts a
#: response read too slowly (MinResponseDataRate) is 5 s too.
GOODBYE_TIMEOUT = 5.0


class Transport(ABC):
    #: What negotiate's `availableTransports` and --transport call it.
    name: ClassVar[str]
    #: What it can carry, in the order negotiate lists them.
    transfer_formats: ClassVar[tuple[TransferFormat, ...]]
    #: True when the transport's own requests show the client is alive (long polling): the
    #: connection then sends no pings and applies no client timeout (ASP.NET's HasInherentKeepAlive).
    inherent_keepalive: ClassVar[bool] = False

    @abstractmethod
    async def send(self, data: str | bytes) -> None:
        """Send one frame (str: text, bytes: binary). Raises ConnectionError once the peer is gone."""

    @abstractmethod
    async def close(self) -> None:
        """End the transport after what was already sent. Idempotent."""
