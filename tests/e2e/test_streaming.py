"""MessagePack and streaming both ways with the real clients against the real hub process:
@microsoft/signalr (+ signalr-protocol-msgpack) under Node, and pysignalr with MessagePack.
What the hub stored is read back over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgpack
import pytest
from pysignalr.client import SignalRClient
from pysignalr.messages import CompletionMessage, InvocationClientStreamMessage, StreamItemMessage
from pysignalr.protocol.messagepack import MessagepackProtocol

from .support import BASE_TS, make_events

pytestmark = pytest.mark.e2e

PROTOCOLS = ["json", "messagepack"]


def spec(server, **fields: Any) -> dict:
    return {"url": server.hub_url, "token": server.token, **fields}


# --- MessagePack invocations (Node) ------------------------------------------------------------------


def test_messagepack_invoke_stores_events_exactly_as_json_does(shared_hub, node, unique):
    """Timestamps above 2^53 leave JavaScript's msgpack encoder as float64 and are stored exact."""
    topic = unique("t")
    events = make_events(5, "mp")
    for protocol in PROTOCOLS:
        out = node("send-events.mjs", spec(shared_hub, protocol=protocol, topic=topic, streamId=protocol, batches=[events]))
        assert out["results"] == [{"ok": True, "result": None}], out
        assert shared_hub.get_events(topic, protocol) == events


def test_messagepack_errors_are_the_same_texts(shared_hub, node, unique):
    topic, stream_id = unique("t"), unique("s")
    out = node(
        "errors-then-ok.mjs",
        spec(
            shared_hub,
            protocol="messagepack",
            topic=topic,
            streamId=stream_id,
            calls=[
                {"method": "NoSuchMethod", "args": []},
                {"method": "SendEventData", "args": [topic, stream_id, [{"id": "x", "timestamp": 1.5}]]},
            ],
            goodEvent=make_events(1, "ok")[0],
        ),
    )
    assert out["calls"][0]["error"] == (
        "Failed to invoke 'NoSuchMethod' due to an error on the server. HubException: Method does not exist."
    )
    assert out["calls"][1]["error"] == (
        "An unexpected error occurred invoking 'SendEventData' on the server. "
        "HubException: events[0].timestamp: expected an integer of nanoseconds"
    )
    assert out["afterA"] == {"ok": True, "result": None}


# --- client-to-server streaming (Node, Subject) --------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_stream_event_data_from_a_subject(shared_hub, node, unique, protocol):
    topic, stream_id = unique("t"), unique("s")
    events = make_events(7, "up")
    # Items: one event, or an array of events.
    items = [events[0], events[1:4], events[4], [], events[5:]]
    out = node("upload-stream.mjs", spec(shared_hub, protocol=protocol, topic=topic, streamId=stream_id, items=items))
    assert out["result"] == {"ok": True, "result": 7}
    assert shared_hub.get_events(topic, stream_id) == events


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_bad_item_ends_the_upload_naming_it_and_keeps_what_came_before(shared_hub, node, unique, protocol):
    topic, stream_id = unique("t"), unique("s")
    events = make_events(4, "bad")
    items = [events[0], [events[1], events[2]], [events[3], {"id": "x", "timestamp": "soon"}], events[0]]
    out = node("upload-stream.mjs", spec(shared_hub, protocol=protocol, topic=topic, streamId=stream_id, items=items))
    assert out["result"] == {
        "ok": False,
        "error": "An unexpected error occurred invoking 'StreamEventData' on the server. "
        "HubException: items[2][1].timestamp: expected an integer of nanoseconds",
    }
    assert out["state"] == "Connected"
    assert shared_hub.get_events(topic, stream_id) == events[:3]  # items 0 and 1; item 2 is all or nothing


def test_send_with_a_subject_is_fire_and_forget_and_applied(shared_hub, node, unique, wait_for):
    """send() gets no answer. A streaming invocation runs beside the ones after it (as in ASP.NET),
    so a later invoke may be applied before the stream's items: only the stream's own order holds."""
    topic, stream_id = unique("t"), unique("s")
    events = make_events(4, "ff")
    out = node(
        "upload-stream.mjs",
        spec(shared_hub, protocol="messagepack", send=True, topic=topic, streamId=stream_id, items=events[:3], after=events[3:]),
    )
    assert out["result"] == {"ok": True, "result": None}
    assert out["after"] == {"ok": True, "result": None}
    def all_four() -> list[dict] | None:
        stored = shared_hub.get_events(topic, stream_id)
        return stored if len(stored) == 4 else None

    stored = wait_for(all_four, 5)
    assert [e for e in stored if e != events[3]] == events[:3]


def test_client_error_on_the_subject_fails_the_invocation(shared_hub, node, unique):
    topic, stream_id = unique("t"), unique("s")
    events = make_events(2, "err")
    out = node("upload-stream.mjs", spec(shared_hub, topic=topic, streamId=stream_id, items=events, error="sensor unplugged"))
    assert out["result"] == {
        "ok": False,
        "error": "An unexpected error occurred invoking 'StreamEventData' on the server. "
        "HubException: The client ended stream '0' with an error: sensor unplugged",
    }
    assert shared_hub.get_events(topic, stream_id) == events


def test_stream_parameter_data(shared_hub, node, unique):
    topic, stream_id = unique("t"), unique("s")
    # Timestamps JavaScript numbers hold exactly (multiples of 2^8 this far above 2^53).
    second_ts = 2 * 10**9
    first = {"timestamps": [BASE_TS, BASE_TS + 10**9], "numericValues": {"speed": [1.5, 2.5]}}
    second = [{"epoch": BASE_TS, "timestamps": [second_ts], "stringValues": {"gear": ["3"]}}]
    out = node(
        "upload-stream.mjs",
        spec(shared_hub, protocol="messagepack", method="StreamParameterData", topic=topic, streamId=stream_id, items=[first, second]),
    )
    assert out["result"] == {"ok": True, "result": 3}
    with shared_hub.http() as client:
        body = client.get(f"/topics/{topic}/streams/{stream_id}/parameters/data").json()
    assert body["timestamps"] == [BASE_TS, BASE_TS + 10**9, BASE_TS + second_ts]
    assert body["numericValues"] == {"speed": [1.5, 2.5, None]}
    assert body["stringValues"] == {"gear": [None, None, "3"]}

    bad = {"timestamps": [1, 2], "numericValues": {"speed": [1.0]}}
    out = node(
        "upload-stream.mjs",
        spec(shared_hub, method="StreamParameterData", topic=topic, streamId=stream_id, items=[first, bad]),
    )
    assert out["result"]["error"].endswith(
        "HubException: items[1].numericValues.speed: has 1 values but timestamps has 2"
    )


# --- server-to-client streaming (Node) -----------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_read_event_data_stored_then_live_then_cancel(shared_hub, node, unique, protocol):
    topic, stream_id = unique("t"), unique("s")
    stored = make_events(6, "st")
    with shared_hub.http() as client:
        assert client.post(f"/topics/{topic}/streams/{stream_id}/events/data", json=stored).status_code == 200
    live = make_events(4, "lv", start=10)
    early = {"id": "early", "timestamp": BASE_TS - 1, "value": None, "tags": {}}
    out = node(
        "read-stream.mjs",
        spec(
            shared_hub,
            protocol=protocol,
            topic=topic,
            streamId=stream_id,
            fromTimestamp=stored[2]["timestamp"],
            follow=True,
            stored=4,
            live=[live[:1], [early, *live[1:]]],
            afterCancel=make_events(2, "late", start=20),
        ),
    )
    # From the timestamp on, stored then live, in arrival order; the early one is filtered out.
    assert out["items"] == stored[2:] + live
    assert out["error"] is None and out["completed"] is False
    assert out["cancelSent"] and out["state"] == "Connected"
    # After the CancelInvocation nothing but the server's final Completion (ignored by the client).
    assert len(out["afterCancelLines"]) <= 1, out["afterCancelLines"]


def test_read_event_data_without_follow_completes(shared_hub, node, unique):
    topic, stream_id = unique("t"), unique("s")
    stored = make_events(3, "nf")
    with shared_hub.http() as client:
        client.post(f"/topics/{topic}/streams/{stream_id}/events/data", json=stored)
    out = node("read-stream.mjs", spec(shared_hub, protocol="messagepack", topic=topic, streamId=stream_id, follow=False, stored=3))
    assert out["items"] == stored
    assert out["completed"] is True and out["error"] is None


def test_read_event_data_with_bad_arguments_ends_with_an_error(shared_hub, node, unique):
    out = node("read-stream.mjs", spec(shared_hub, topic="t", streamId="a/b", follow=False, stored=1))
    assert out["error"] == (
        "An error occurred on the server while streaming results. HubException: streamId: must not contain '/'"
    )


# --- the raw wire: cancel, and a bad record closes only its connection --------------------------------


async def test_raw_cancel_stops_the_stream_on_the_server(shared_hub, raw_ws, unique):
    topic, stream_id = unique("t"), unique("s")
    conn = await raw_ws.ready(shared_hub)
    writer = await raw_ws.ready(shared_hub)
    await conn.send({"type": 4, "invocationId": "r", "target": "ReadEventData", "arguments": [topic, stream_id, None, True]})
    first = make_events(1, "a")
    assert (await writer.invoke("SendEventData", topic, stream_id, first))["result"] is None
    assert await conn.recv() == {"type": 2, "invocationId": "r", "item": first[0]}
    await conn.send({"type": 5, "invocationId": "r"})
    assert await conn.recv() == {"type": 3, "invocationId": "r"}
    assert (await writer.invoke("SendEventData", topic, stream_id, make_events(1, "b"), invocation_id="2"))["result"] is None
    # The connection still answers, and no StreamItem comes after the Completion.
    await conn.send({"type": 1, "invocationId": "x", "target": "SendEventData", "arguments": [topic, stream_id, make_events(1, "c")]})
    assert await conn.recv() == {"type": 3, "invocationId": "x", "result": None}


async def test_raw_messagepack_protocol_error_closes_only_that_connection(shared_hub, raw_ws, unique):
    topic, stream_id = unique("t"), unique("s")
    bystander = await raw_ws.ready(shared_hub)
    bad = await raw_ws.open(shared_hub)
    await bad.send_text('{"protocol":"messagepack","version":1}\x1e')
    assert await bad.ws.recv() == b"{}\x1e"  # binary once MessagePack is chosen, as ASP.NET
    await bad.ws.send(b"\x04\x93\x01\x80\xc0")  # an Invocation cut short: [1, {}, nil] and no target
    frame = await asyncio.wait_for(bad.ws.recv(), 5)
    assert isinstance(frame, bytes)
    assert msgpack.unpackb(frame[1:]) == [7, "Connection closed with an error. Reading 'target' as String failed.", False]
    with pytest.raises(Exception):
        await asyncio.wait_for(bad.ws.recv(), 5)  # then the socket closes
    ok = await bystander.invoke("SendEventData", topic, stream_id, make_events(1, "still"))
    assert ok == {"type": 3, "invocationId": "1", "result": None}


# --- pysignalr with MessagePack -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def pysignalr_msgpack(server):
    client = SignalRClient(server.hub_url, protocol=MessagepackProtocol(), headers=server.auth_headers, retry_count=1)
    opened = asyncio.Event()

    async def on_open() -> None:
        opened.set()

    async def on_error(message: Any) -> None:
        pass

    client.on_open(on_open)
    client.on_error(on_error)
    runner = asyncio.create_task(client.run())
    try:
        await asyncio.wait_for(opened.wait(), 10)
        yield client
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await runner


async def test_pysignalr_messagepack_invoke_upload_and_read(shared_hub, unique):
    topic, stream_id = unique("t"), unique("s")
    events = make_events(6, "pym")
    loop = asyncio.get_running_loop()
    async with pysignalr_msgpack(shared_hub) as client:
        done: asyncio.Future[CompletionMessage] = loop.create_future()

        async def completed(message: CompletionMessage) -> None:
            done.set_result(message)

        await client.send("SendEventData", [topic, stream_id, events[:2]], on_invocation=completed)
        reply = await asyncio.wait_for(done, 10)
        assert reply.error is None

        # Client-to-server stream: pysignalr's ClientStream sends no arguments, so build the
        # invocation with them (the message type pysignalr has for it).
        transport = client._transport
        uploaded: asyncio.Future[CompletionMessage] = loop.create_future()

        async def upload_done(message: CompletionMessage) -> None:
            uploaded.set_result(message)

        client._invocation_handlers["up-1"] = upload_done
        await transport.send(InvocationClientStreamMessage(["s-1"], "StreamEventData", [topic, stream_id], invocation_id="up-1"))
        await transport.send(StreamItemMessage("s-1", events[2]))
        await transport.send(StreamItemMessage("s-1", events[3:]))
        from pysignalr.messages import CompletionClientStreamMessage

        await transport.send(CompletionClientStreamMessage("s-1"))
        result = await asyncio.wait_for(uploaded, 10)
        assert result.error is None and result.result == 4

        # Server-to-client stream of what is stored.
        items: list[Any] = []
        finished: asyncio.Future[None] = loop.create_future()

        async def on_next(item: Any) -> None:
            items.append(item)

        async def on_complete(message: Any) -> None:
            if not finished.done():
                finished.set_result(None)

        await client.stream("ReadEventData", [topic, stream_id, 0, False], on_next=on_next, on_complete=on_complete)
        await asyncio.wait_for(finished, 10)
    assert [i if isinstance(i, dict) else i[0] for i in items] == events
    assert await asyncio.to_thread(shared_hub.get_events, topic, stream_id) == events
