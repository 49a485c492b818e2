"""Stateful reconnect in-process: numbering, Acks, the replay buffer, resume on a new transport,
duplicate suppression and back-pressure, through a real HubConnection (fake transports)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

import pytest

from hub.signalr.connection import SignalROptions
from hub.signalr.hub import CallContext, Hub, hub_method
from hub.signalr.messages import Ack, Completion, Invocation, Ping, Sequence, StreamItem
from hub.signalr.protocols import JsonHubProtocol
from hub.signalr.stateful import StatefulPipe

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


# --- the pipe alone (sans-I/O parts) ------------------------------------------------------------


def test_incoming_numbering_drops_duplicates_and_waits_for_sequence_after_a_reconnect() -> None:
    pipe = StatefulPipe(JsonHubProtocol(), None)
    first = [Invocation("T", [], "1"), Ping(), StreamItem("s", 1), Completion("s")]
    assert [pipe.should_process(m) for m in first] == [True, True, True, True]
    assert pipe.latest_received == 3  # the Ping is not numbered
    assert pipe.ack_due() is None  # no transport attached: nothing to send it on
    pipe.transport = FakeTransport()
    assert pipe.ack_due() == Ack(3)

    pipe._waiting_for_sequence = True  # what attach() sets
    assert not pipe.should_process(Invocation("T", [], "2"))  # ignored until the Sequence
    assert pipe.should_process(Sequence(2))
    pipe.reset_sequence(2)
    # The client re-sends 2 and 3 (our Ack had not reached it), then 4 is new.
    again = [StreamItem("s", 1), Completion("s"), Invocation("T", [], "9")]
    assert [pipe.should_process(m) for m in again] == [False, False, True]
    assert pipe.latest_received == 4


def test_a_sequence_beyond_what_was_received_is_a_protocol_error() -> None:
    from hub.signalr.protocols import ProtocolError

    pipe = StatefulPipe(JsonHubProtocol(), None)
    pipe.should_process(Invocation("T", [], "1"))
    pipe.reset_sequence(2)  # the next one: fine
    with pytest.raises(ProtocolError, match="Sequence ID greater than amount of messages we've received."):
        pipe.reset_sequence(5)


async def test_acks_free_the_buffer_and_only_numbered_messages_are_kept() -> None:
    transport = FakeTransport()
    protocol = JsonHubProtocol()
    pipe = StatefulPipe(protocol, transport, limit=1000)
    for i in range(3):
        message = Completion.with_result(str(i), i)
        await pipe.send(message, protocol.encode(message))
    await pipe.send(Ping(), protocol.encode(Ping()))
    assert len(transport.frames) == 4
    assert [seq for seq, _, _ in pipe._buffer] == [1, 2, 3]
    pipe.ack(2)
    assert [seq for seq, _, _ in pipe._buffer] == [3]
    pipe.ack(7)  # more than was sent: everything is acked, nothing breaks
    assert pipe.buffered_bytes == 0


# --- through a HubConnection ---------------------------------------------------------------------


@pytest.fixture
async def stateful():
    hub = RecordingHub()
    conn, transport = await connect(hub, version=2, stateful=True)
    yield hub, conn, transport
    conn.gone()


async def test_version_2_makes_a_pipe_only_when_the_transport_allows_it() -> None:
    conn, _ = await connect(RecordingHub(), version=2, stateful=False)
    assert conn.pipe is None
    conn, _ = await connect(RecordingHub(), version=1, stateful=True)
    assert conn.pipe is None
    conn, _ = await connect(RecordingHub(), version=2, stateful=True)
    assert conn.pipe is not None


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
    assert not conn.streams
