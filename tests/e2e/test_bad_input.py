"""Bad input on the wire, sent as raw WebSocket frames with the `websockets` library.

Each case gets its own clear error and closes only the offending connection: a second
connection, opened and handshaken before the bad one misbehaves, still completes an invocation
afterwards.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.exceptions import ConnectionClosed

from .support import GRACEFUL_EXIT, RS, assert_still_serves, make_events

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("handshake", "error"),
    [
        pytest.param("hello there" + RS, None, id="words"),
        pytest.param("{not json" + RS, None, id="broken-json"),
        pytest.param(json.dumps({"version": 1}) + RS, None, id="no-protocol"),
        pytest.param(json.dumps(["json", 1]) + RS, None, id="array"),
        pytest.param('{"protocol":"x","version":1}' + RS, "The protocol 'x' is not supported.", id="unknown-protocol"),
        pytest.param(
            '{"protocol":"json","version":3}' + RS,
            "The server does not support version 3 of the 'json' protocol.",
            id="version-above-2",
        ),
    ],
)
async def test_a_refused_handshake_gets_one_error_then_a_close(raw_ws, shared_hub, unique, handshake, error):
    """`error`: the exact text, or None for any (tests/unit/test_handshake.py holds every text)."""
    neighbour = await raw_ws.ready(shared_hub)
    conn = await raw_ws.open(shared_hub)

    await conn.send_text(handshake)
    records = await conn.records_until_closed(timeout=5)

    if error is None:
        assert len(records) == 1, records
        assert isinstance(records[0].get("error"), str) and records[0]["error"], records
    else:
        assert records == [{"error": error}]
    await assert_still_serves(neighbour, shared_hub, unique("t"), unique("s"), "after-handshake")


@pytest.mark.parametrize("version", [0, 1, 2])
async def test_json_versions_up_to_2_are_accepted(raw_ws, shared_hub, unique, version):
    conn = await raw_ws.open(shared_hub)
    assert await conn.handshake(version=version) == {}
    await assert_still_serves(conn, shared_hub, unique("t"), unique("s"), f"v{version}")


async def test_handshake_reply_comes_in_its_own_frame(raw_ws, shared_hub):
    """Some clients break on `{}` glued to the next record: the server's first frame is exactly `{}\x1e`."""
    conn = await raw_ws.open(shared_hub)
    await conn.send_text('{"protocol":"json","version":1}' + RS + '{"type":6}' + RS)
    first = await asyncio.wait_for(conn.ws.recv(), 5)
    assert first == "{}" + RS


@pytest.mark.parametrize(
    "record",
    ['{"type":1,"target":', "[1,2,3]", '"just a string"', '{"type":"one"}', '{"target":"SendEventData"}'],
    ids=["truncated", "array", "string", "type-not-int", "no-type"],
)
async def test_invalid_record_gets_close_with_error_then_the_socket_closes(raw_ws, shared_hub, unique, record):
    neighbour = await raw_ws.ready(shared_hub)
    conn = await raw_ws.ready(shared_hub)

    await conn.send_text(record + RS)
    records = await conn.records_until_closed(timeout=5)

    assert records and records[-1].get("type") == 7, records
    assert isinstance(records[-1].get("error"), str) and records[-1]["error"], records
    assert records[-1].get("allowReconnect") in (None, False), records
    await assert_still_serves(neighbour, shared_hub, unique("t"), unique("s"), "after-bad-record")


async def test_records_split_across_frames_and_several_per_frame(raw_ws, shared_hub, unique):
    topic, stream_id = unique("t"), unique("s")
    events = make_events(4, "split")
    conn = await raw_ws.ready(shared_hub)
    first = (
        json.dumps(
            {"type": 1, "invocationId": "a", "target": "SendEventData", "arguments": [topic, stream_id, events[:2]]}
        )
        + RS
    )
    second = (
        json.dumps(
            {"arguments": [topic, stream_id, events[2:]], "invocationId": "b", "target": "SendEventData", "type": 1}
        )
        + RS
    )
    both = first + second
    # the first record and half the second in one frame, the rest in another
    cut = len(first) + len(second) // 2
    await conn.send_text(both[:cut])
    await conn.send_text(both[cut:])
    completions = [await conn.recv(), await conn.recv()]
    assert completions == [
        {"type": 3, "invocationId": "a", "result": None},
        {"type": 3, "invocationId": "b", "result": None},
    ]
    assert await asyncio.to_thread(shared_hub.get_events, topic, stream_id) == events


async def test_fire_and_forget_invocation_is_never_answered(raw_ws, shared_hub, unique):
    topic, stream_id = unique("t"), unique("s")
    events = make_events(2, "ff")
    conn = await raw_ws.ready(shared_hub)
    await conn.send(
        {"type": 1, "target": "SendEventData", "arguments": [topic, stream_id, events[:1]]},
        {"type": 1, "invocationId": "after", "target": "SendEventData", "arguments": [topic, stream_id, events[1:]]},
    )
    # invocations are applied in order, so an answer to the first would come before this one
    assert await conn.recv() == {"type": 3, "invocationId": "after", "result": None}
    assert await asyncio.to_thread(shared_hub.get_events, topic, stream_id) == events


# --- message size limit ---------------------------------------------------------------------------------


@pytest.fixture(params=["flag", "env"])
def small_hub(hub_server, request):
    """A hub with a 1024-byte message limit, set by the flag or by HUB_MAX_MESSAGE_SIZE."""
    if request.param == "flag":
        return hub_server("--max-message-size", "1024")
    return hub_server(env={"HUB_MAX_MESSAGE_SIZE": "1024"})


async def test_oversized_message_gets_close_with_the_aspnet_text(raw_ws, small_hub, unique):
    topic, stream_id = unique("t"), unique("s")
    neighbour = await raw_ws.ready(small_hub)
    conn = await raw_ws.ready(small_hub)

    # just under the limit works
    fits = [{"id": "fits", "timestamp": 1, "value": "x" * 700, "tags": {}}]
    completion = await conn.invoke("SendEventData", topic, stream_id, fits, invocation_id="fits")
    assert completion == {"type": 3, "invocationId": "fits", "result": None}

    too_big = [{"id": "big", "timestamp": 2, "value": "x" * 2000, "tags": {}}]
    await conn.send(
        {"type": 1, "invocationId": "big", "target": "SendEventData", "arguments": [topic, stream_id, too_big]}
    )
    records = await conn.records_until_closed(timeout=5)

    assert records and records[-1]["type"] == 7, records
    assert records[-1]["error"].startswith("The maximum message size of 1024B was exceeded."), records
    assert not any(r.get("type") == 3 for r in records), records
    assert [e["id"] for e in await asyncio.to_thread(small_hub.get_events, topic, stream_id)] == ["fits"]
    await assert_still_serves(neighbour, small_hub, topic, stream_id, "after-big")


async def test_endless_record_without_separator_hits_the_limit(raw_ws, hub_server, unique):
    """A record that never ends must not grow the server's buffer without bound."""
    server = hub_server("--max-message-size", "1024")
    neighbour = await raw_ws.ready(server)
    conn = await raw_ws.ready(server)

    chunk = '{"type":1,"target":"SendEventData","arguments":["' + "y" * 600
    try:
        for _ in range(10):  # 6000 bytes in 10 frames, never a 0x1e
            await conn.send_text(chunk)
            chunk = "y" * 600
    except ConnectionClosed:
        pass  # the server may close before we are done sending
    records = await conn.records_until_closed(timeout=5)

    assert records and records[-1]["type"] == 7, records
    assert records[-1]["error"].startswith("The maximum message size of 1024B was exceeded."), records
    await assert_still_serves(neighbour, server, unique("t"), unique("s"), "after-endless")


# --- timers -------------------------------------------------------------------------------------------------


async def test_handshake_timeout_closes_a_silent_connection(raw_ws, hub_server, unique):
    server = hub_server("--handshake-timeout", "1")
    neighbour = await raw_ws.ready(server)
    conn = await raw_ws.open(server)

    loop = asyncio.get_running_loop()
    started = loop.time()
    records = await conn.records_until_closed(timeout=5)  # we send nothing at all
    elapsed = loop.time() - started

    assert 0.5 <= elapsed < 4, elapsed
    assert all("error" in r for r in records), records  # at most a handshake error, never `{}`
    await assert_still_serves(neighbour, server, unique("t"), unique("s"), "after-timeout")


async def test_client_timeout_closes_a_silent_client_but_not_a_chatty_one(raw_ws, hub_server, unique):
    server = hub_server("--client-timeout", "1.5")
    chatty = await raw_ws.ready(server)
    silent = await raw_ws.ready(server)

    async def keep_pinging() -> None:
        while True:
            await chatty.send({"type": 6})
            await asyncio.sleep(0.3)

    pinger = asyncio.create_task(keep_pinging())
    loop = asyncio.get_running_loop()
    try:
        await silent.send({"type": 6})
        started = loop.time()
        records = await silent.records_until_closed(timeout=6)
        elapsed = loop.time() - started
    finally:
        pinger.cancel()

    assert 1.0 <= elapsed < 5, elapsed
    assert records and records[-1]["type"] == 7 and records[-1].get("error"), records
    await assert_still_serves(chatty, server, unique("t"), unique("s"), "after-client-timeout")


async def test_server_pings_an_idle_connection(raw_ws, hub_server):
    server = hub_server("--keepalive-interval", "0.5")
    conn = await raw_ws.ready(server)
    record = await conn.recv(timeout=3, skip_pings=False)
    assert record == {"type": 6}


async def test_graceful_shutdown_sends_close_with_allow_reconnect(raw_ws, hub_server):
    server = hub_server()
    conn = await raw_ws.ready(server)
    stopping = asyncio.create_task(asyncio.to_thread(server.stop))
    records = await conn.records_until_closed(timeout=8)
    assert records and records[-1]["type"] == 7, records
    assert records[-1].get("allowReconnect") is True and not records[-1].get("error"), records
    assert await stopping in GRACEFUL_EXIT
