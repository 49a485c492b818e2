"""Stateful reconnect with the real JS client (`withStatefulReconnect()`): a TCP proxy in the test
cuts the WebSocket in the middle of a stream of invocations (mid-frame, both ends just see the
socket die); the client reconnects to the same connection, both sides replay what the other had not
acknowledged, duplicates are dropped, and every event is stored exactly once."""

from __future__ import annotations

import asyncio

import pytest

from .support import RawConnection, make_events, negotiate
from .tcp_proxy import CuttingProxy

pytestmark = pytest.mark.e2e


@pytest.fixture
async def proxy_to(request):
    proxies: list[CuttingProxy] = []

    async def start(server, cuts):
        proxy = await CuttingProxy(server.port, cuts).start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        await proxy.close()


@pytest.mark.parametrize("protocol", ["json", "messagepack"])
async def test_cut_connections_lose_and_duplicate_nothing(shared_hub, node, unique, proxy_to, protocol):
    topic, stream_id = unique("t"), unique("s")
    events = make_events(400, f"rc-{protocol}")
    batches = [events[i : i + 2] for i in range(0, len(events), 2)]
    streamed = make_events(40, f"up-{protocol}", base=events[-1]["timestamp"] + 10**9)
    # Cut the first socket after 12 KB from the client, the second after 24 KB: both in the middle
    # of the writes (~50 KB in MessagePack, ~75 KB in JSON), each mid-frame. The second cut comes
    # after the client's replay (at most what it sent on the first socket, plus the few invocations
    # made while it reconnected): the JS client gives up if its socket dies during a replay.
    proxy = await proxy_to(shared_hub, [12_000, 24_000])
    out = await node.run_async(
        "stateful-writes.mjs",
        {
            "url": f"http://127.0.0.1:{proxy.port}/hub",
            "token": shared_hub.token,
            "protocol": protocol,
            "topic": topic,
            "streamId": stream_id,
            "batches": batches,
            "window": 8,
            "stream": {"items": streamed},
        },
        timeout=60,
    )

    assert out["closedWith"] in (None, "closed"), out["closedWith"]
    assert out["handshakeVersion2"], "the client did not ask for protocol version 2"
    assert len(proxy.cut_links) == 2, [(link.websocket, link.upstream_bytes) for link in proxy.links]
    assert out["sockets"] == 3, out["sockets"]  # the first socket and one reconnect per cut
    assert out["results"] == [{"ok": True, "result": None}] * len(batches)
    assert out["stream"] == {"ok": True, "result": len(streamed)}
    # Exactly once, in order: nothing lost, nothing applied twice.
    stored = await asyncio.to_thread(shared_hub.get_events, topic, stream_id, limit=10_000)
    assert stored == events
    uploaded = await asyncio.to_thread(shared_hub.get_events, topic, stream_id + "-up", limit=10_000)
    assert uploaded == streamed


async def test_negotiate_offers_stateful_reconnect_only_to_clients_that_ask(shared_hub):
    plain = await negotiate(shared_hub.hub_url, shared_hub.token)
    assert "useStatefulReconnect" not in plain
    asked = await negotiate(shared_hub.hub_url, shared_hub.token, stateful=True)
    assert asked["useStatefulReconnect"] is True
    assert asked["negotiateVersion"] == 1 and asked["connectionToken"]


async def test_raw_reconnect_transcript(shared_hub, unique):
    """The wire of a resume, by hand: server's Sequence first, then its replay; the client's
    re-sent invocation is dropped as a duplicate."""
    topic, stream_id = unique("t"), unique("s")
    reply = await negotiate(shared_hub.hub_url, shared_hub.token, stateful=True)
    url = f"{shared_hub.ws_url}?id={reply['connectionToken']}"

    async def open_socket() -> RawConnection:
        from websockets.asyncio.client import connect

        ws = await connect(url, additional_headers=shared_hub.auth_headers, open_timeout=5, ping_interval=None)
        return RawConnection(ws)

    first = await open_socket()
    assert await first.handshake(version=2) == {}
    e = make_events(2, "raw")
    await first.send({"type": 1, "invocationId": "1", "target": "SendEventData", "arguments": [topic, stream_id, e[:1]]})
    assert await first.recv() == {"type": 3, "invocationId": "1", "result": None}
    await first.close()  # the socket ends without a SignalR Close message: the connection is kept

    second = await open_socket()
    # No handshake on a resume. The server speaks first: its Sequence, then what we did not ack.
    assert await second.recv() == {"type": 9, "sequenceId": 1}
    assert await second.recv() == {"type": 3, "invocationId": "1", "result": None}
    # We never saw our Ack go through: re-send invocation 1 (a duplicate) and send invocation 2.
    await second.send(
        {"type": 9, "sequenceId": 1},
        {"type": 1, "invocationId": "1", "target": "SendEventData", "arguments": [topic, stream_id, e[:1]]},
        {"type": 1, "invocationId": "2", "target": "SendEventData", "arguments": [topic, stream_id, e[1:]]},
    )
    assert await second.recv() == {"type": 3, "invocationId": "2", "result": None}
    ack = await second.recv(timeout=3)
    assert ack == {"type": 8, "sequenceId": 2}  # the server processed 2 numbered messages
    assert await asyncio.to_thread(shared_hub.get_events, topic, stream_id) == e
    await second.send({"type": 7})
    await second.close()


async def test_a_connection_not_resumed_in_time_is_gone(hub_server, unique):
    server = hub_server("--disconnect-timeout", "1")
    reply = await negotiate(server.hub_url, server.token, stateful=True)
    url = f"{server.ws_url}?id={reply['connectionToken']}"
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    ws = await connect(url, additional_headers=server.auth_headers, open_timeout=5, ping_interval=None)
    first = RawConnection(ws)
    assert await first.handshake(version=2) == {}
    await first.close()

    async def refused() -> int | None:
        try:
            again = await connect(url, additional_headers=server.auth_headers, open_timeout=5, ping_interval=None)
        except InvalidStatus as error:
            return error.response.status_code
        await again.close()  # resumed: still within the timeout; try again shortly
        return None

    # Gone after the 1 s disconnect timeout (swept every 0.25 s). A successful try re-arms the
    # timer, so each try comes more than the timeout after the previous one.
    status = None
    for _ in range(4):
        await asyncio.sleep(1.6)
        status = await refused()
        if status is not None:
            break
    assert status == 404
