"""The connections a hub endpoint has negotiated, as ASP.NET's HttpConnectionManager.

A connection is created at negotiate (or at the upgrade of a WebSocket that skipped negotiate),
found by the id its transport requests carry, and holds a --max-connections slot until it is
removed. Who negotiated it (`user`) is kept so that the endpoint refuses another user's requests.
The sweeper disposes of a connection that had no transport request attached for the disconnect
timeout: never attached, a long-polling client gone, or a stateful WebSocket that did not resume.
A connection whose user's credential expires is closed then (`Expiry`).
What a transport request looks like is the endpoint's business (endpoint.py).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, MutableSet
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .close_reason import CloseReason
from .transports.base import Transport
from .user import EXPIRED
from .transports.websocket import WebSocketTransport

if TYPE_CHECKING:
    from .connection import HubConnection

log = logging.getLogger("hub.signalr")


class Expiry:
    """Closes each connection when its user's credential expires (ASP.NET's
    CloseOnAuthenticationExpiration), with a Close that lets the client reconnect with a fresh one.
    Bound: one timer per live connection whose user expires; each is cancelled when the
    connection is forgotten, so a closed connection is never held until its token's exp."""

    def __init__(self, close: Callable[..., None]):
        self._timers: dict[HubConnection, asyncio.TimerHandle] = {}
        self._close = close  # ConnectionRegistry.close_soon: it skips a connection already gone

    def watch(self, conn: HubConnection) -> None:
        user = conn.call.principal
        expires_at = None if user is None else user.expires_at
        if expires_at is None or conn in self._timers:
            return
        delay = max(0.0, expires_at - time.time())
        self._timers[conn] = asyncio.get_running_loop().call_later(delay, self._expire, conn)

    def __len__(self) -> int:
        """The timers held: one per live connection whose user expires."""
        return len(self._timers)

    def forget(self, conn: HubConnection) -> None:
        timer = self._timers.pop(conn, None)
        if timer is not None:
            timer.cancel()

    def _expire(self, conn: HubConnection) -> None:
        self._timers.pop(conn, None)
        self._close(conn, EXPIRED, allow_reconnect=True, reason=CloseReason.TOKEN_EXPIRED)


class ConnectionSlots:
    """--max-connections: SignalR connections of every hub together. A slot is taken at negotiate
    (or at the upgrade of a WebSocket that skipped negotiate) and given back when the connection is
    forgotten. At the bound new connections are refused with 503 and Retry-After; open connections,
    /health and the HTTP API are not affected."""

    __slots__ = ("limit", "used", "refused")

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self.refused = 0  # connections refused at the bound, ever (a metric)

    def take(self) -> bool:
        if self.used >= self.limit:
            self.refused += 1
            return False
        self.used += 1
        return True

    def give_back(self) -> None:
        self.used -= 1


@dataclass(slots=True)
class NegotiatedConnection:
    connection_id: str
    token: str
    user: str | None  # who negotiated it: the only user whose transport requests may use it
    # How logs name it: never the token (under negotiate v0 the connection id is the token).
    log_id: str = ""
    created: float = field(default_factory=time.monotonic)
    transport: type[Transport] | None = None
    hub_connection: HubConnection | None = None
    # Since when no transport request has been attached (None while one is): the connection is
    # dropped when that lasts `disconnect_timeout` (never attached, or a long-polling client gone).
    idle_since: float | None = field(default_factory=time.monotonic)
    requests: int = 0
    early: bytearray = field(default_factory=bytearray)  # POSTed before a transport was attached
    post_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # POST bodies apply in order
    stateful: bool = False  # negotiated useStatefulReconnect: a new WebSocket may resume the connection

    def belongs_to(self, user: str | None) -> bool:
        return self.user == user

    def attach(self, transport: type[Transport]) -> None:
        self.transport = transport
        self.requests += 1
        self.idle_since = None

    def detach(self) -> None:
        self.requests -= 1
        if not self.requests:
            self.idle_since = time.monotonic()


class ConnectionRegistry:
    """Connections by the id their transport requests carry (the connectionToken under negotiate
    v1, the connectionId under v0). A negotiated connection with no transport attached within
    `disconnect_timeout` is dropped.

    `live` holds the hub connections started on these records (the keep-alive ticker's set): a
    connection enters it when its transport starts it and leaves it when it is forgotten."""

    def __init__(
        self,
        disconnect_timeout: float,
        slots: ConnectionSlots | None = None,
        live: MutableSet[HubConnection] | None = None,
    ):
        self.disconnect_timeout = disconnect_timeout
        self.by_token: dict[str, NegotiatedConnection] = {}
        self.slots = slots if slots is not None else ConnectionSlots(2**31)
        self.live: MutableSet[HubConnection] = live if live is not None else set()
        self._sweeper: asyncio.Task | None = None
        self.expiry = Expiry(self.close_soon)
        self._closing: set[asyncio.Task] = set()  # the Closes close_soon started, until written

    def create(self, user: str | None, version: int) -> NegotiatedConnection | None:
        """A new connection, holding a slot until it is removed; None when no slot is free."""
        if not self.slots.take():
            return None
        connection_id = secrets.token_urlsafe(16)
        token = secrets.token_urlsafe(16) if version >= 1 else connection_id
        log_id = connection_id if version >= 1 else "v0-" + secrets.token_hex(6)
        record = NegotiatedConnection(connection_id, token, user, log_id)
        self.by_token[token] = record
        return record

    def get(self, token: str) -> NegotiatedConnection | None:
        return self.by_token.get(token)

    def started(self, record: NegotiatedConnection, conn: HubConnection) -> None:
        """`conn` now runs on `record`: the keep-alive ticks it until it is forgotten."""
        record.hub_connection = conn
        self.live.add(conn)
        self.expiry.watch(conn)

    def remove(self, record: NegotiatedConnection) -> None:
        """No transport request finds it any more; its slot is given back. Idempotent."""
        if self.by_token.pop(record.token, None) is not None:
            self.slots.give_back()

    def forget(self, record: NegotiatedConnection) -> None:
        """Removed, and its hub connection no longer ticked."""
        self.remove(record)
        if record.hub_connection is not None:
            self.live.discard(record.hub_connection)
            self.expiry.forget(record.hub_connection)

    def close_soon(self, conn: HubConnection, error: str, *, allow_reconnect: bool, reason: CloseReason) -> None:
        """Close a live connection with a Close carrying `error`, written in the background (one
        still open, not one already gone)."""
        if conn.closed.is_set():
            return
        task = asyncio.ensure_future(conn.close(error, allow_reconnect=allow_reconnect, reason=reason))
        self._closing.add(task)  # referenced until done, or the loop may collect it
        task.add_done_callback(self._closing.discard)

    def close_where(self, which: Callable[[Any], bool], error: str, reason: CloseReason) -> int:
        """close_soon (no reconnect) every live connection whose user `which` picks; how many."""
        chosen = [c for c in self.live if not c.closed.is_set() and which(c.call.principal)]
        for conn in chosen:
            self.close_soon(conn, error, allow_reconnect=False, reason=reason)
        return len(chosen)

    def expire(self, now: float) -> list[NegotiatedConnection]:
        """Remove and return the connections idle (no transport request) for the disconnect timeout."""
        stale = [r for r in self.by_token.values() if r.idle_since is not None and now - r.idle_since >= self.disconnect_timeout]
        for record in stale:
            self.remove(record)
        return stale

    async def dispose(self, record: NegotiatedConnection, why: str, reason: CloseReason = CloseReason.NORMAL) -> None:
        """Forget a connection: its transport ends (a pending poll gets 204) and its hub is told."""
        self.forget(record)
        conn = record.hub_connection
        if record.transport is not WebSocketTransport:
            transport = record.transport.name if record.transport is not None else "no transport"
            # Past its handshake, the hub's observer logs the close once at info (reason, duration):
            # this line, why at the transport's level, is then debug; before it, it is the only trace.
            level = logging.DEBUG if conn is not None and conn.protocol is not None else logging.INFO
            log.log(level, "connection %s (%s) closed: %s", record.log_id, transport, why)
        if conn is not None:
            await conn.transport.close()
            conn.gone(reason)

    # --- the sweeper ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(max(0.1, min(1.0, self.disconnect_timeout / 4)))
            for record in self.expire(time.monotonic()):
                try:
                    await self.dispose(record, f"no transport request for {self.disconnect_timeout:g} s", CloseReason.TIMEOUT)
                except Exception:  # noqa: BLE001 - the sweeper must survive one connection's failure
                    log.exception("disposing connection %s failed", record.log_id)
