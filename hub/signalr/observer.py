"""What a hub's dispatcher tells the world about its connections and invocations.

The dispatcher calls its `HubObserver` as connections come and go and as invocations complete; the
connection's work in flight tells it when a bound refused or held back a client. This base class
logs each connection's open and close once, at info, and counts nothing: the app wires a subclass
that counts too (hub/metrics/signalr.py), so this layer never imports the metrics package.
`completed` runs once per invocation, on the hot path: an override must cost little.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from .call import CallContext
from .close_reason import CloseReason
from .protocols.base import HubProtocol
from .transports.base import Transport

log = logging.getLogger("hub.signalr")


class ObservedSession(Protocol):
    close_reason: CloseReason | None

    @property
    def queued(self) -> int:
        """Messages waiting to be written to the client (the outbox)."""
        ...


class ObservedConnection(Protocol):
    """What an observer reads of a connection (connection.HubConnection has it)."""

    log_id: str  # how logs name the connection: never its token
    created: float  # time.monotonic() when it was made
    call: CallContext
    session: ObservedSession

    @property
    def transport(self) -> Transport: ...

    @property
    def protocol(self) -> HubProtocol | None: ...


class HubObserver:
    """One per hub. `hub`: the label and log name of the hub (its class name by default)."""

    def __init__(self, hub: str):
        self.hub = hub

    def connected(self, conn: ObservedConnection) -> None:
        """A connection finished its handshake."""
        protocol = conn.protocol.name if conn.protocol is not None else None
        transport = conn.transport.name
        log.info(
            "connection %s opened: %s, %s, %s", conn.log_id, self.hub, transport, protocol,
            extra={"connection_id": conn.log_id, "user": conn.call.user, "hub": self.hub, "transport": transport},
        )

    def disconnected(self, conn: ObservedConnection) -> None:
        """A connection told `connected` is gone (its close reason is set)."""
        reason = conn.session.close_reason or CloseReason.NORMAL
        duration_ms = round((time.monotonic() - conn.created) * 1000)
        log.info(
            "connection %s closed: %s after %d ms", conn.log_id, reason, duration_ms,
            extra={"connection_id": conn.log_id, "user": conn.call.user, "hub": self.hub,
                   "transport": conn.transport.name, "reason": str(reason), "duration_ms": duration_ms},
        )

    def completed(self, method: str | None, ok: bool, started: float | None) -> None:
        """An invocation's Completion was queued. `method`: the hub method's name, None when the hub
        has none of that name; `started`: time.perf_counter() when it was read (None: a stream, not
        timed)."""

    def refused(self, reason: str) -> None:
        """A bound refused or held back a client: `max_streams` (a stream invocation refused),
        `max_invocations` (the connection stopped reading until a Completion was written)."""
