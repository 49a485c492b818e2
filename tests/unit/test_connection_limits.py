"""Per-connection bounds, in-process (issue 12): the outbox's bounds, and the invocations in flight
past which a connection stops reading its client (back-pressure, nothing dropped)."""

from __future__ import annotations

import asyncio
from typing import Any

from hub.signalr.call import CallContext
from hub.signalr.hub import Deferred, Hub, hub_method
from hub.signalr.keepalive import KeepAlive
from hub.signalr.messages import PING_MESSAGE, Completion
from hub.signalr.options import SignalROptions
from hub.signalr.outbox import FellBehind, Outbox, Queued

from signalr_fakes import completions, connect, frame, hold_writes


def item(size: int, count: int = 1) -> Queued:
    return Queued(PING_MESSAGE, "x" * size, count, False)


def test_the_outbox_is_bounded_by_messages_and_bytes_and_takes_one_large_message_when_empty() -> None:
    box = Outbox(max_messages=3, max_bytes=100)
    assert box.fits(1, 1000)  # empty: one message larger than the byte bound still goes
    box.put(item(1000))
    assert not box.fits(1, 1)
    box.written(box.take())
    assert box.messages == 0 and box.bytes == 0
    for _ in range(3):
        assert box.fits(1, 10)
        box.put(item(10))
    assert not box.fits(1, 10)  # the message bound
    batch = box.take()
    assert not box.fits(1, 10)  # taken but not yet written still counts
    box.written(batch)
    box.put(item(60))
    assert not box.fits(1, 41) and box.fits(1, 40)  # the byte bound


def test_the_outbox_puts_exactly_what_fits() -> None:
    """`put` checks the bounds inlined (it runs for every message sent): the same answer as `fits`."""
    for max_messages, max_bytes in ((1, 10), (3, 100), (5, 7)):
        for queued in range(max_messages + 2):
            for count, size in ((1, 0), (1, 5), (2, 30), (1, 200), (3, 1)):
                box = Outbox(max_messages, max_bytes)
                for _ in range(queued):
                    box.put_last(item(3))
                expected = box.fits(count, size)
                try:
                    box.put(item(size, count))
                except FellBehind:
                    assert not expected, (max_messages, max_bytes, queued, count, size)
                else:
                    assert expected, (max_messages, max_bytes, queued, count, size)


async def test_a_producer_waits_for_room_and_is_released_when_the_queue_drains() -> None:
    box = Outbox(max_messages=4, max_bytes=10_000)
    for _ in range(3):
        box.put(item(1))
    assert not box.has_room
    box.written(box.take())
    assert box.has_room
    # Through a connection: a stream producer (backpressure) waits while its client does not read.
    conn, transport = await connect(Hub(), options=SignalROptions(max_send_queue=4))
    reading = hold_writes(transport)
    for i in range(3):
        await conn.send(Completion.with_result(str(i), i), backpressure=True)
    waiter = asyncio.ensure_future(conn.send(Completion.with_result("3", 3), backpressure=True))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    reading.set()
    await asyncio.wait_for(waiter, 1)
    await transport.wait_for(lambda r: all(completions(r, str(i)) for i in range(4)))
    conn.gone()


class SlowHub(Hub):
    """Each call's Completion waits for the test to settle it (a store commit that takes a while)."""

    def __init__(self) -> None:
        self.applied: list[Any] = []
        self.pending: list[asyncio.Future] = []

    @hub_method("Write")
    async def write(self, call: CallContext, value: Any) -> Deferred:
        self.applied.append(value)
        future = asyncio.get_running_loop().create_future()
        self.pending.append(future)
        return Deferred(future)


def invoke(iid: str, value: Any) -> dict:
    return {"type": 1, "invocationId": iid, "target": "Write", "arguments": [value]}


async def test_past_max_invocations_the_connection_stops_reading_until_one_completes() -> None:
    hub = SlowHub()
    options = SignalROptions(max_invocations=2, client_timeout=0.2)
    conn, transport = await connect(hub, options=options)
    reading = asyncio.ensure_future(conn.receive(frame(*(invoke(str(i), i) for i in range(5))), via=transport))
    async with asyncio.timeout(2):
        while len(hub.applied) < 2 or not conn.stalled:
            await asyncio.sleep(0.01)
    assert hub.applied == [0, 1] and not reading.done() and conn.inflight.pending == 2
    # The client timeout does not run while the hub is the one not reading.
    keepalive = KeepAlive(options)
    keepalive.connections.add(conn)
    keepalive.start()
    await asyncio.sleep(0.5)
    await keepalive.stop()
    assert conn.state.name == "CONNECTED", "closed for a timeout while the server was not reading"
    # One completes: the next is read and applied, and so on; nothing is dropped, order is kept.
    hub.pending[0].set_result(None)
    async with asyncio.timeout(2):
        while len(hub.applied) < 3:
            await asyncio.sleep(0.01)
    assert hub.applied == [0, 1, 2]
    for _ in range(5):
        for future in hub.pending:
            if not future.done():
                future.set_result(None)
        await asyncio.sleep(0.01)
    await asyncio.wait_for(reading, 2)
    assert hub.applied == [0, 1, 2, 3, 4]
    records = await transport.wait_for(lambda r: all(completions(r, str(i)) for i in range(5)))
    assert sorted(r["invocationId"] for r in records if r.get("type") == 3) == ["0", "1", "2", "3", "4"]
    assert not conn.stalled
    conn.gone()
