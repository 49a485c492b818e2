"""What the dispatcher and the groups need of a connection, and nothing more.

dispatcher.py and groups.py type against `ConnectionContext`, never against the concrete
`HubConnection` (connection.py), so that neither imports it and a test may hand them any object of
this shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .call import CallContext
from .close_reason import CloseReason
from .messages import HubMessage
from .protocols.base import HubProtocol
from .streaming import ConnectionStreams


class ConnectionContext(Protocol):
    @property
    def connection_id(self) -> str: ...

    @property
    def call(self) -> CallContext:
        """Who is calling: what a hub method is given."""
        ...

    @property
    def protocol(self) -> HubProtocol | None:
        """The protocol the handshake chose (None before): encode once per protocol for a group."""
        ...

    @property
    def streams(self) -> ConnectionStreams:
        """The stream invocations open on this connection, and their bounds."""
        ...

    async def send(self, message: HubMessage, *, backpressure: bool = False) -> None:
        """Queue a reply (Completion, StreamItem). `backpressure`: the caller may wait (a stream
        producer), while the connection's outbox is over half full."""
        ...

    def send_now(self, message: HubMessage) -> None:
        """`send` without waiting (a reply queued from a callback): the bounded outbox closes a client
        that lets too much pile up."""
        ...

    def post(self, message: HubMessage, data: str | bytes | None = None) -> bool:
        """Queue a server-to-client message without waiting; False when it was not queued."""
        ...

    def post_batch(self, messages: Sequence[HubMessage], encoded: Sequence[str | bytes], joined: str | bytes) -> bool:
        """`post` for several messages encoded with this connection's protocol."""
        ...

    def abort(self, error: str, reason: CloseReason = CloseReason.ERROR) -> None:
        """End the connection now with a Close carrying `error`; what waits for it is dropped."""
        ...
