"""What one client, or many, can hold of the hub (issue 12, hardening): --max-connections, the bounded
send queue of every connection (a client that never reads), the streams open on one connection, and a
connection that belongs to the user who negotiated it. Every case against a real hub process."""

from __future__ import annotations

import asyncio
import json
import socket

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .support import RS, RawConnection, make_events

pytestmark = pytest.mark.e2e

OTHER_TOKEN = "another-users-token"


async def open_stuck(server, path_and_query: str) -> RawConnection:
    """A WebSocket whose client stops reading the socket as soon as one message waits unread (a small
    receive window and websockets' max_queue=1): TCP back-pressure reaches the hub within a few MB."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
    ws = await connect(f"ws://127.0.0.1:{server.port}{path_and_query}", sock=sock, max_queue=1,
                       compression=None, max_size=None, ping_interval=None, open_timeout=5)
    return RawConnection(ws)


async def read_to_the_end(conn: RawConnection, timeout: float = 20.0) -> list[dict]:
    """Every record until the server closes the socket (pings skipped)."""
    return await conn.records_until_closed(timeout)


# --- 4: the send queue is bounded, whoever fills it ----------------------------------------------------


@pytest.mark.parametrize("stateful", [False, True], ids=["plain", "stateful"])
async def test_a_client_that_never_reads_its_completions_is_closed_as_fallen_behind(hub_server, stateful):
    """300,000 Completions never read grew the hub by 56 MB: now the queue holds at most
    --max-send-queue messages / --max-send-queue-bytes, then the client gets a Close saying it fell
    behind (after what was already in flight) and the socket ends; the hub goes on serving others."""
    hub = hub_server("--store", "memory", "--max-send-queue", "200", "--max-send-queue-bytes", "200000")
    query = f"?access_token={hub.token}"
    if stateful:
        async with httpx.AsyncClient(timeout=5) as client:
            reply = (await client.post(f"{hub.url}/hub/negotiate", params={"negotiateVersion": 1, "useStatefulReconnect": "true"},
                                       headers=hub.auth_headers)).json()
        assert reply.get("useStatefulReconnect") is True
        query += f"&id={reply['connectionToken']}"
    stuck = await open_stuck(hub, "/hub" + query)
    assert await stuck.handshake(version=2 if stateful else 1) == {}
    # Each error Completion quotes the 2 kB target: 3,000 of them are 6 MB, more than the socket holds.
    target = "NoSuchMethod" + "x" * 2000
    sent = 0
    try:
        for i in range(3000):
            # Until the hub stops reading us (it closed the connection): a send that does not complete.
            await asyncio.wait_for(stuck.send({"type": 1, "invocationId": str(i), "target": target, "arguments": []}), 2)
            sent += 1
    except (TimeoutError, ConnectionClosed):
        pass
    assert sent > 200
    records = await read_to_the_end(stuck)
    closes = [r for r in records if r.get("type") == 7]
    assert closes and "fell behind" in closes[-1]["error"], records[-3:]
    assert "--max-send-queue" in closes[-1]["error"]
    completions = [r for r in records if r.get("type") == 3]
    assert len(completions) < sent
    # The hub is unaffected: a new connection works.
    other = await RawConnection.open(hub.ws_url, hub.token)
    assert await other.handshake() == {}
    assert (await other.invoke("SendEventData", "t", "s", make_events(1))).get("error") is None
    await other.close()


async def test_a_follower_that_never_reads_is_ended_as_fallen_behind_not_grown_without_bound(hub_server):
    """ReadEventData(follow=true) on a client that does not read while many events are written: the
    stream's producer waits for the bounded queue, the live backlog passes its bound, and the stream
    ends with an error saying it fell behind (the README's promise); the connection stays usable."""
    # --retention: the memory store keeps 100 events a stream; the flood below is ~32 MB on the wire.
    hub = hub_server("--store", "memory", "--retention", "100", "--max-send-queue", "100", "--max-send-queue-bytes", "100000")
    stuck = await open_stuck(hub, f"/hub?access_token={hub.token}")
    assert await stuck.handshake() == {}
    await stuck.send({"type": 4, "invocationId": "follow", "target": "ReadEventData", "arguments": ["t", "s", None, True]})
    value = "v" * 2000  # large events: the socket's buffers hold only a few thousand of them
    async with httpx.AsyncClient(base_url=hub.url, headers=hub.auth_headers, timeout=30) as client:
        # a first event, read back by the follower, shows the follow is live before the flood
        first = await client.post("/topics/t/streams/s/events/data", json=[{"id": "first", "timestamp": 0, "value": "x"}])
        assert first.status_code == 200, first.text
        assert (await stuck.recv(10)) == {"type": 2, "invocationId": "follow", "item": {"id": "first", "timestamp": 0, "value": "x", "tags": {}}}
        for b in range(16):  # 16,000 > the few thousand the socket holds + the 10,000 a live reader may leave waiting
            events = [{"id": f"e{b}-{i}", "timestamp": b * 1000 + i, "value": value} for i in range(1000)]
            response = await client.post("/topics/t/streams/s/events/data", json=events)
            assert response.status_code == 200, response.text
    seen = 0
    ending = None
    async with asyncio.timeout(60):
        while ending is None:
            record = await stuck.recv(30)
            if record.get("type") == 2:
                seen += 1
            elif record.get("type") == 3 and record.get("invocationId") == "follow":
                ending = record
    assert ending.get("error") and "fell behind" in ending["error"], ending
    assert seen < 16_000
    # The same connection still works.
    assert (await stuck.invoke("SendEventData", "t", "other", make_events(1), invocation_id="after")).get("error") is None
    await stuck.close()


# --- 5: streams per connection ----------------------------------------------------------------------


async def test_streams_past_the_per_connection_limit_are_refused_and_the_connection_stays(hub_server):
    hub = hub_server("--store", "memory", "--max-streams-per-connection", "3")
    conn = await RawConnection.open(hub.ws_url, hub.token)
    assert await conn.handshake() == {}
    # Two downloads and one upload: three streams open.
    for i in range(2):
        await conn.send({"type": 4, "invocationId": f"d{i}", "target": "ReadEventData", "arguments": ["t", f"s{i}", None, True]})
    await conn.send({"type": 1, "invocationId": "u0", "target": "StreamEventData", "arguments": ["t", "up"], "streamIds": ["up0"]})
    # The fourth, of either kind, is refused with a Completion error.
    await conn.send({"type": 4, "invocationId": "d9", "target": "ReadEventData", "arguments": ["t", "s9", None, True]})
    refused = await conn.recv()
    assert refused == {"type": 3, "invocationId": "d9", "error": "Too many streams on this connection (limit 3)."}
    await conn.send({"type": 1, "invocationId": "u9", "target": "StreamEventData", "arguments": ["t", "up9"], "streamIds": ["up9"]})
    refused = await conn.recv()
    assert refused == {"type": 3, "invocationId": "u9", "error": "Too many streams on this connection (limit 3)."}
    # Plain invocations still work, and a stream that ends frees its place.
    assert (await conn.invoke("SendEventData", "t", "plain", make_events(1), invocation_id="p")).get("error") is None
    await conn.send({"type": 5, "invocationId": "d0"})  # cancel one download
    async with asyncio.timeout(5):
        while (record := await conn.recv()).get("invocationId") != "d0":
            pass
    await conn.send({"type": 2, "invocationId": "up0", "item": make_events(1)[0]}, {"type": 3, "invocationId": "up0"})
    async with asyncio.timeout(5):
        while (record := await conn.recv()).get("invocationId") != "u0":
            pass
    assert record.get("result") == 1, record
    await conn.send({"type": 4, "invocationId": "d10", "target": "ReadEventData", "arguments": ["t", "s10", None, True]})
    await conn.send({"type": 4, "invocationId": "d11", "target": "ReadEventData", "arguments": ["t", "s11", None, True]})
    assert (await conn.invoke("SendEventData", "t", "plain", make_events(1), invocation_id="p2")).get("error") is None
    await conn.close()


# --- 3: --max-connections ---------------------------------------------------------------------------


async def test_max_connections_refuses_new_connections_with_503_and_keeps_everything_else(hub_server):
    hub = hub_server("--store", "memory", "--max-connections", "3")
    async with httpx.AsyncClient(base_url=hub.url, headers=hub.auth_headers, timeout=5) as client:
        first = await RawConnection.open(hub.ws_url, hub.token)  # negotiated: a slot
        assert await first.handshake() == {}
        skipped = await RawConnection.open(hub.ws_url, hub.token, use_negotiate=False)  # skipNegotiation: a slot
        assert await skipped.handshake() == {}
        reader = (await client.post("/reader/negotiate", params={"negotiateVersion": 1})).json()  # the other hub: a slot
        assert "connectionToken" in reader
        # Full: negotiate on either hub answers 503 with Retry-After, a bare upgrade is refused with 503.
        for path in ("/hub/negotiate", "/reader/negotiate"):
            response = await client.post(path, params={"negotiateVersion": 1})
            assert response.status_code == 503, response.text
            assert int(response.headers["retry-after"]) > 0
            assert "--max-connections" in response.json()["error"]
        with pytest.raises(InvalidStatus) as refused:
            await RawConnection.open(hub.ws_url, hub.token, use_negotiate=False)
        assert refused.value.response.status_code == 503
        # Everything else keeps working: /health, the HTTP API, the open connections.
        assert (await client.get("/health")).status_code == 200
        assert (await client.post("/topics/t/streams/s/events/data", json=make_events(1))).status_code == 200
        assert (await first.invoke("SendEventData", "t", "s", make_events(1))).get("error") is None
        assert (await skipped.invoke("SendEventData", "t", "s", make_events(1))).get("error") is None
        # A connection that ends gives its slot back.
        await skipped.close()
        async with asyncio.timeout(10):
            while (response := await client.post("/hub/negotiate", params={"negotiateVersion": 1})).status_code != 200:
                await asyncio.sleep(0.05)
        await first.close()


# --- 7: a connection belongs to the user who negotiated it ----------------------------------------------


async def test_another_users_requests_on_a_connection_are_refused_and_change_nothing(hub_server):
    hub = hub_server("--store", "memory", tokens=["owner-token", OTHER_TOKEN])
    owner = {"Authorization": "Bearer owner-token"}
    other = {"Authorization": f"Bearer {OTHER_TOKEN}"}
    async with httpx.AsyncClient(base_url=hub.url, timeout=10) as client:
        token = (await client.post("/hub/negotiate", params={"negotiateVersion": 1}, headers=owner)).json()["connectionToken"]
        assert (await client.get("/hub", params={"id": token}, headers=owner)).status_code == 200  # first poll starts it
        handshake = json.dumps({"protocol": "json", "version": 1}) + RS
        assert (await client.post("/hub", params={"id": token}, headers=owner, content=handshake)).status_code == 200
        # The other user: post into it, poll it, delete it, open a WebSocket on it: 403, nothing happens.
        invocation = json.dumps({"type": 1, "invocationId": "x", "target": "SendEventData",
                                 "arguments": ["t", "stolen", make_events(1)]}) + RS
        assert (await client.post("/hub", params={"id": token}, headers=other, content=invocation)).status_code == 403
        assert (await client.get("/hub", params={"id": token}, headers=other)).status_code == 403
        assert (await client.delete("/hub", params={"id": token}, headers=other)).status_code == 403
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{hub.ws_url}?id={token}", additional_headers=other, open_timeout=5):
                pass
        assert refused.value.response.status_code == 403
        # The owner's connection is intact: its handshake reply waits for it, then an invocation works.
        poll = await client.get("/hub", params={"id": token}, headers=owner)
        assert poll.status_code == 200 and poll.text == "{}" + RS
        mine = json.dumps({"type": 1, "invocationId": "m", "target": "SendEventData", "arguments": ["t", "mine", make_events(1)]}) + RS
        assert (await client.post("/hub", params={"id": token}, headers=owner, content=mine)).status_code == 200
        poll = await client.get("/hub", params={"id": token}, headers=owner)
        assert json.loads(poll.text.split(RS)[0]) == {"type": 3, "invocationId": "m", "result": None}
        stolen = await client.get("/topics/t/streams/stolen/events/data", headers=owner)
        assert stolen.status_code == 404 or stolen.json() == []
        assert (await client.delete("/hub", params={"id": token}, headers=owner)).status_code == 202


async def test_another_user_cannot_resume_a_stateful_connection(hub_server):
    hub = hub_server("--store", "memory", tokens=["owner-token", OTHER_TOKEN])
    async with httpx.AsyncClient(timeout=5) as client:
        reply = (await client.post(f"{hub.url}/hub/negotiate", params={"negotiateVersion": 1, "useStatefulReconnect": "true"},
                                   headers={"Authorization": "Bearer owner-token"})).json()
    url = f"{hub.ws_url}?id={reply['connectionToken']}"
    async with connect(url, additional_headers={"Authorization": "Bearer owner-token"}, open_timeout=5) as ws:
        owner = RawConnection(ws)
        assert await owner.handshake(version=2) == {}
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, additional_headers={"Authorization": f"Bearer {OTHER_TOKEN}"}, open_timeout=5):
                pass
        assert refused.value.response.status_code == 403
        # The owner's socket was not closed, and it still works.
        assert (await owner.invoke("SendEventData", "t", "s", make_events(1))).get("error") is None


# --- 14: the handshake reply's frame type follows the protocol ------------------------------------------


@pytest.mark.parametrize(("protocol", "binary"), [("messagepack", True), ("json", False)])
async def test_the_handshake_reply_is_binary_once_messagepack_is_chosen(shared_hub, protocol, binary):
    async with connect(f"{shared_hub.ws_url}?access_token={shared_hub.token}", open_timeout=5) as ws:
        await ws.send(json.dumps({"protocol": protocol, "version": 1}) + RS)
        reply = await asyncio.wait_for(ws.recv(), 5)
        assert isinstance(reply, bytes) is binary, reply
        assert (reply.decode() if binary else reply) == "{}" + RS
        if binary:  # and MessagePack works after it: a Ping comes back as a binary record
            await ws.send(bytes([0x02, 0x91, 0x06]))
            await ws.send(bytes([0x02, 0x91, 0x07]))  # Close: the server ends the connection
            with pytest.raises(ConnectionClosed):
                while True:
                    assert isinstance(await asyncio.wait_for(ws.recv(), 5), bytes)


# --- the same limits as the real @microsoft/signalr client meets them ---------------------------------


@pytest.mark.parametrize("protocol", ["json", "messagepack"])
async def test_the_node_client_meets_max_connections_and_max_streams_with_clear_errors(hub_server, node, protocol):
    hub = hub_server("--store", "memory", "--max-connections", "2", "--max-streams-per-connection", "2")
    spec = {"url": hub.hub_url, "token": hub.token, "protocol": protocol, "transport": "WebSockets",
            "topic": "t", "streamId": "s", "goodEvent": make_events(1)[0], "connections": 3, "streams": 3}
    out = await node.run_async("limits.mjs", spec)
    assert [s["ok"] for s in out["starts"]] == [True, True, False], out
    assert "503" in out["starts"][2]["error"], out  # negotiate refused, the client says so
    assert out["streams"][:2] == [{"error": None}, {"error": None}], out
    assert out["streams"][2]["error"] == "Too many streams on this connection (limit 2).", out
    assert out["after"] == {"ok": True, "result": None}, out


async def test_the_node_client_as_a_device_sending_an_origin_with_its_bearer_header(shared_hub, node):
    """A device client that always sends an Origin, its token in the Authorization header: accepted
    on every request, the WebSocket upgrade included."""
    spec = {"url": shared_hub.hub_url, "token": shared_hub.token, "tokenMode": "header",
            "headers": {"Origin": "http://device.invalid"}, "transport": "WebSockets",
            "topic": "t", "streamId": "device", "goodEvent": make_events(1)[0]}
    out = await node.run_async("limits.mjs", spec)
    assert out["starts"] == [{"ok": True}], out
    assert out["after"] == {"ok": True, "result": None}, out
