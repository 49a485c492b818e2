"""Stateful reconnect in-process: numbering, Acks, the replay buffer, resume on a new transport,
duplicate suppression and back-pressure, through a real HubConnection (fake transports). The same
numbering with bytes alone: test_session.py."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

import pytest

from hub.signalr.call import CallContext
from hub.signalr.hub import Hub, hub_method
from hub.signalr.messages import Completion
from hub.signalr.options import SignalROptions

from signalr_fakes import FakeTransport, completions, connect, frame, items_of


class RecordingHub(Hub):
    def __init__(self) -> None:
        self.applied: list[Any] = []

    @hub_method("Record")
    async def record(self, call: CallContext, value: Any) -> Any:
        self.applied.append(value)
        return value

    @hub_method("Count")
    async def count(self, call: CallContext, n: int) -> AsyncIterator[str]:
        for i in range(n):
            yield f"item-{i:04d}" + "x" * 100


def invoke(iid: str, value: Any) -> dict:
    return {"type": 1, "invocationId": iid, "target": "Record", "arguments": [value]}


# --- through a HubConnection ---------------------------------------------------------------------


@pytest.fixture
async def stateful():
    hub = RecordingHub()
    conn, transport = await connect(hub, version=2, stateful=True)
    yield hub, conn, transport
    conn.gone()


async def test_resume_sends_sequence_first_then_replays_unacked_in_order(stateful) -> None:
    hub, conn, old = stateful
    await conn.receive(frame(invoke("1", "a"), invoke("2", "b"), invoke("3", "c")), via=old)
    await old.wait_for(lambda records: len(records) == 3)  # written (and numbered) by the outbox's flush
    await conn.receive(frame({"type": 8, "sequenceId": 1}), via=old)  # the client got our first Completion
    assert conn.transport_lost(old)
    assert conn.detached and conn.state.name == "CONNECTED"
    # Sent while the client is away: kept for the replay.
    await conn.send(Completion.with_result("x", "while away"))

    new = FakeTransport()
    await conn.resume(new)
    assert await new.wait_for(lambda records: len(records) >= 4) == [
        {"type": 9, "sequenceId": 2},
        {"type": 3, "invocationId": "2", "result": "b"},
        {"type": 3, "invocationId": "3", "result": "c"},
        {"type": 3, "invocationId": "x", "result": "while away"},
    ]
    # The client's own Sequence, then a re-send of what we processed (3) and something new (4).
    await conn.receive(frame({"type": 9, "sequenceId": 3}, invoke("3", "c"), invoke("4", "d")), via=new)
    assert hub.applied == ["a", "b", "c", "d"]
    records = await new.wait_for(lambda r: completions(r, "4"))
    assert completions(records, "3") == [{"type": 3, "invocationId": "3", "result": "c"}]  # only the replay
    # A late frame from the replaced socket is dropped (the client re-sends what it holds).
    await conn.receive(frame(invoke("5", "late")), via=old)
    assert hub.applied == ["a", "b", "c", "d"]


async def test_messages_before_the_clients_sequence_are_ignored(stateful) -> None:
    hub, conn, old = stateful
    conn.transport_lost(old)
    new = FakeTransport()
    await conn.resume(new)
    await conn.receive(frame(invoke("1", "too early")), via=new)
    await conn.receive(frame({"type": 9, "sequenceId": 1}, invoke("1", "after sequence")), via=new)
    assert hub.applied == ["after sequence"]


async def test_a_resume_takes_over_a_socket_that_is_still_open(stateful) -> None:
    hub, conn, old = stateful
    new = FakeTransport()
    await conn.resume(new)  # the client saw its socket die before the server did
    assert old.closed
    assert conn.transport is new
    assert conn.transport_lost(old)  # the old socket's handler ending does not end the connection
    assert not conn.detached


async def test_server_acks_what_it_processed(stateful) -> None:
    hub, conn, transport = stateful
    await conn.receive(frame(invoke("1", "a"), {"type": 6}, invoke("2", "b")), via=transport)
    await conn.send_ack()
    await conn.send_ack()  # nothing new: no second Ack
    acks = [r for r in transport.records() if r["type"] == 8]
    assert acks == [{"type": 8, "sequenceId": 2}]


async def test_bad_sequence_closes_only_this_connection_with_a_close_message(stateful) -> None:
    hub, conn, transport = stateful
    await conn.receive(frame({"type": 9, "sequenceId": 50}), via=transport)
    assert transport.records()[-1] == {
        "type": 7,
        "error": "Connection closed with an error. Sequence ID greater than amount of messages we've received.",
    }
    assert conn.closed.is_set() and transport.closed


async def test_stream_items_wait_for_acks_past_the_buffer_limit() -> None:
    hub = RecordingHub()
    conn, transport = await connect(hub, version=2, stateful=True, options=SignalROptions(stateful_buffer_size=1000))
    await conn.receive(frame({"type": 4, "invocationId": "s", "target": "Count", "arguments": [50]}), via=transport)
    await asyncio.sleep(0.05)
    sent = items_of(transport.records(), "s")
    assert 5 <= len(sent) < 15  # ~1000 bytes of ~130-byte records, then it waits
    assert conn.pipe is not None and conn.pipe.buffered_bytes > 1000
    await conn.receive(frame({"type": 8, "sequenceId": len(sent)}), via=transport)
    records = await transport.wait_for(lambda r: len(items_of(r, "s")) >= len(sent) + 5)
    # Acking everything as it comes lets the stream finish.
    while not completions(records, "s"):
        await conn.receive(frame({"type": 8, "sequenceId": len(items_of(records, "s"))}), via=transport)
        await asyncio.sleep(0.01)
        records = transport.records()
    assert items_of(records, "s") == [f"item-{i:04d}" + "x" * 100 for i in range(50)]
    conn.gone()


async def test_a_connection_closed_while_detached_releases_waiting_senders() -> None:
    hub = RecordingHub()
    conn, transport = await connect(hub, version=2, stateful=True, options=SignalROptions(stateful_buffer_size=200))
    conn.transport_lost(transport)
    stream = asyncio.ensure_future(
        conn.receive(frame({"type": 4, "invocationId": "s", "target": "Count", "arguments": [100]}))
    )
    await asyncio.sleep(0.02)
    conn.gone()
    await asyncio.wait_for(stream, 1)
    assert not conn.streams.running
