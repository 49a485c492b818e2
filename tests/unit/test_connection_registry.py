"""The connection registry without a server: ids, --max-connections slots, ownership, expiry after
the disconnect timeout, and what disposing of a connection does (fake hub connections)."""

from __future__ import annotations

import asyncio
import logging
import time

from hub.signalr.call import CallContext
from hub.signalr.close_reason import CloseReason
from hub.signalr.connections import ConnectionRegistry, ConnectionSlots
from hub.signalr.transports.long_polling import LongPollingTransport
from hub.signalr.transports.websocket import WebSocketTransport
from hub.signalr.user import NamedUser


class FakeTransport:
    def __init__(self, fails: bool = False) -> None:
        self.closed = False
        self.fails = fails

    async def close(self) -> None:
        if self.fails:
            raise RuntimeError("close failed")
        self.closed = True


class FakeHubConnection:
    """What the registry uses of a HubConnection: its transport, its user (`call`), and `gone()`."""

    def __init__(self, fails: bool = False) -> None:
        self.transport = FakeTransport(fails)
        self.call = CallContext("fake")
        self.protocol = None  # not past its handshake: the registry's close line is its only trace
        self.is_gone = False
        self.reason: CloseReason | None = None

    def gone(self, reason: CloseReason = CloseReason.NORMAL) -> None:
        self.is_gone = True
        self.reason = reason


def test_negotiate_v1_gives_a_token_apart_from_the_id_and_v0_uses_the_id() -> None:
    registry = ConnectionRegistry(15.0)
    v1 = registry.create("alice", 1)
    v0 = registry.create("alice", 0)
    assert v1 is not None and v0 is not None
    assert v1.token != v1.connection_id and v1.log_id == v1.connection_id
    assert v0.token == v0.connection_id and v0.log_id.startswith("v0-") and v0.token not in v0.log_id
    assert registry.get(v1.token) is v1 and registry.get(v0.token) is v0
    assert registry.get(v1.connection_id) is None  # v1 transport requests carry the token, not the id


def test_a_slot_is_taken_per_connection_and_given_back_once_when_it_is_removed() -> None:
    slots = ConnectionSlots(2)
    writer, reader = ConnectionRegistry(15.0, slots), ConnectionRegistry(15.0, slots)  # both hubs share them
    first = writer.create("alice", 1)
    second = reader.create("bob", 1)
    assert first is not None and second is not None
    assert writer.create("carol", 1) is None and reader.create("carol", 1) is None  # at the bound
    assert slots.used == 2
    writer.remove(first)
    writer.remove(first)  # idempotent: the slot is not given back twice
    assert slots.used == 1 and writer.get(first.token) is None
    third = reader.create("carol", 1)
    assert third is not None and slots.used == 2


def test_a_connection_belongs_to_the_user_who_negotiated_it() -> None:
    registry = ConnectionRegistry(15.0)
    alice, anonymous = registry.create("alice", 1), registry.create(None, 1)
    assert alice is not None and anonymous is not None
    assert alice.belongs_to("alice") and not alice.belongs_to("bob") and not alice.belongs_to(None)
    assert anonymous.belongs_to(None) and not anonymous.belongs_to("alice")


def test_a_connection_expires_after_the_disconnect_timeout_without_a_transport_request() -> None:
    slots = ConnectionSlots(10)
    registry = ConnectionRegistry(15.0, slots)
    never = registry.create("alice", 1)
    polled = registry.create("alice", 1)
    assert never is not None and polled is not None
    start = never.idle_since
    assert start is not None
    polled.attach(LongPollingTransport)
    polled.attach(LongPollingTransport)  # a poll and a POST at once
    assert registry.expire(start + 14.9) == []
    assert registry.expire(start + 15.0) == [never]
    assert registry.get(never.token) is None and slots.used == 1
    assert registry.expire(start + 1000) == []  # attached: never expires
    polled.detach()
    assert polled.idle_since is None  # one request still attached
    polled.detach()
    assert polled.idle_since is not None
    idle = polled.idle_since
    assert registry.expire(idle + 14.9) == []
    assert registry.expire(idle + 15.0) == [polled] and slots.used == 0


async def test_disposing_forgets_the_connection_closes_its_transport_and_tells_its_hub(caplog) -> None:
    live: set = set()
    slots = ConnectionSlots(10)
    registry = ConnectionRegistry(15.0, slots, live=live)
    record = registry.create("alice", 1)
    assert record is not None
    record.attach(LongPollingTransport)
    conn = FakeHubConnection()
    registry.started(record, conn)  # type: ignore[arg-type]
    assert record.hub_connection is conn and live == {conn}
    with caplog.at_level(logging.INFO, logger="hub.signalr"):
        await registry.dispose(record, "DELETE")
    assert registry.get(record.token) is None and slots.used == 0 and live == set()
    assert conn.transport.closed and conn.is_gone and conn.reason == CloseReason.NORMAL
    assert [r.getMessage() for r in caplog.records] == [f"connection {record.log_id} (LongPolling) closed: DELETE"]


async def test_disposing_a_websocket_or_a_connection_never_started_logs_as_before(caplog) -> None:
    registry = ConnectionRegistry(15.0)
    never = registry.create("alice", 1)
    socket = registry.create("alice", 1)
    assert never is not None and socket is not None
    socket.attach(WebSocketTransport)
    registry.started(socket, FakeHubConnection())  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="hub.signalr"):
        await registry.dispose(never, "why")
        await registry.dispose(socket, "why")  # uvicorn logs WebSocket closes
    assert [r.getMessage() for r in caplog.records] == [f"connection {never.log_id} (no transport) closed: why"]


def test_forget_removes_and_stops_ticking_without_closing() -> None:
    live: set = set()
    registry = ConnectionRegistry(15.0, live=live)
    record = registry.create("alice", 1)
    assert record is not None
    conn = FakeHubConnection()
    registry.started(record, conn)  # type: ignore[arg-type]
    registry.forget(record)
    assert registry.get(record.token) is None and live == set()
    assert not conn.transport.closed and not conn.is_gone  # the WebSocket handler ends it itself


async def test_the_sweeper_disposes_of_idle_connections_and_survives_a_failing_one(caplog) -> None:
    live: set = set()
    slots = ConnectionSlots(10)
    registry = ConnectionRegistry(0.05, slots, live=live)
    failing, fine, attached = (registry.create("alice", 1) for _ in range(3))
    assert failing is not None and fine is not None and attached is not None
    bad, good = FakeHubConnection(fails=True), FakeHubConnection()
    registry.started(failing, bad)  # type: ignore[arg-type]
    registry.started(fine, good)  # type: ignore[arg-type]
    attached.attach(LongPollingTransport)
    registry.start()
    try:
        with caplog.at_level(logging.INFO, logger="hub.signalr"):
            for _ in range(50):
                if good.is_gone:
                    break
                await asyncio.sleep(0.05)
    finally:
        registry.stop()
    assert good.is_gone and good.transport.closed and not bad.is_gone
    assert good.reason == CloseReason.TIMEOUT  # what the metrics will count it as
    assert registry.get(attached.token) is attached and slots.used == 1 and live == set()
    messages = [r.getMessage() for r in caplog.records]
    assert f"disposing connection {failing.log_id} failed" in messages
    assert f"connection {fine.log_id} (no transport) closed: no transport request for 0.05 s" in messages


async def test_an_expiry_timer_lives_only_as_long_as_its_connection() -> None:
    """Bound of connections.Expiry: one timer per live connection whose user expires; a connection
    forgotten before its credential's exp leaves none behind (nor is closed at that exp)."""
    registry = ConnectionRegistry(15.0)
    expiring, lasting = FakeHubConnection(), FakeHubConnection()
    expiring.call = CallContext("e", "jwt:d", NamedUser("jwt:d", expires_at=time.time() + 3600))
    lasting.call = CallContext("l", "token:x", NamedUser("token:x"))
    records = [registry.create(c.call.user, 1) for c in (expiring, lasting)]
    for record, conn in zip(records, (expiring, lasting)):
        registry.started(record, conn)  # type: ignore[arg-type]
    assert len(registry.expiry) == 1  # a user that never expires needs no timer
    registry.forget(records[0])
    assert len(registry.expiry) == 0
