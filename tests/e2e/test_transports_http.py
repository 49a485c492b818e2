"""Server-Sent Events and long polling on the wire, request by request, against the real hub process:
the poll rules, the SSE framing, ASP.NET's status codes, reclaiming connections whose client
vanished, and `--transport` turning transports off."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import msgpack
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from .harness import module_hub, report_servers
from .http_transports import RS, LongPolling, event_stream, negotiate, records
from .support import make_events

pytestmark = pytest.mark.e2e

POLL_TIMEOUT = 1.5


@pytest.fixture(scope="module")
def _transports_hub(tmp_path_factory):
    with module_hub(tmp_path_factory, "transports-hub", "--poll-timeout", str(POLL_TIMEOUT), "--log-level", "debug") as hub:
        yield hub


@pytest.fixture
def hub(_transports_hub, request):
    """A hub with a short poll timeout (and the short timers: keep-alive 1 s, disconnect 3 s)."""
    if not _transports_hub.alive():
        _transports_hub.start()
    report_servers(request, [_transports_hub])
    return _transports_hub


@pytest.fixture
async def client(hub):
    async with httpx.AsyncClient(headers=hub.auth_headers, timeout=10) as c:
        yield c


# --- long polling -----------------------------------------------------------------------------------


async def test_long_polling_first_poll_handshake_invoke_then_delete(hub, client, unique):
    topic, stream_id = unique("t"), unique("s")
    token, reply = await negotiate(client, hub.hub_url)
    assert {"transport": "LongPolling", "transferFormats": ["Text", "Binary"]} in reply["availableTransports"]
    conn = LongPolling(client, hub.hub_url, token)

    started = time.monotonic()
    first = await conn.poll()
    assert (first.status_code, first.content) == (200, b"")
    assert time.monotonic() - started < 1.0, "the first poll must answer at once"
    assert first.headers["cache-control"] == "no-cache, no-store"

    assert await conn.handshake() == [{}]
    events = make_events(2, "lp")
    assert await conn.invoke("SendEventData", topic, stream_id, events) == {"type": 3, "invocationId": "1", "result": None}
    assert hub.get_events(topic, stream_id) == events

    pending = asyncio.ensure_future(conn.poll())
    await asyncio.sleep(0.2)
    assert (await conn.delete()).status_code == 202
    assert (await asyncio.wait_for(pending, 2)).status_code == 204
    assert (await conn.poll()).status_code == 404
    assert (await conn.post(b'{"type":6}\x1e')).status_code == 404
    assert (await conn.delete()).status_code == 404


async def test_poll_timeout_answers_200_empty_and_long_polling_gets_no_pings(client, hub):
    conn = await LongPolling.open(client, hub.hub_url)
    await conn.handshake()
    # The keep-alive interval is 1 s: over WebSockets or SSE a ping would have come by now.
    started = time.monotonic()
    response = await conn.poll()
    assert (response.status_code, response.content) == (200, b"")
    assert time.monotonic() - started >= POLL_TIMEOUT * 0.9
    await conn.delete()


async def test_a_new_poll_ends_the_pending_one_with_204(client, hub, unique):
    conn = await LongPolling.open(client, hub.hub_url)
    await conn.handshake()
    first = asyncio.ensure_future(conn.poll())
    await asyncio.sleep(0.2)
    second = asyncio.ensure_future(conn.poll())
    assert (await asyncio.wait_for(first, 2)).status_code == 204
    sent = await conn.post(json.dumps({"type": 1, "invocationId": "7", "target": "NoSuchMethod", "arguments": []}).encode() + RS)
    assert sent.status_code == 200
    response = await asyncio.wait_for(second, 2)
    assert response.status_code == 200
    assert records(response.content)[0]["invocationId"] == "7"
    await conn.delete()


async def test_bad_data_closes_with_an_error_then_204_then_gone(client, hub):
    conn = await LongPolling.open(client, hub.hub_url)
    await conn.handshake()
    assert (await conn.post(b"not json\x1e")).status_code == 200
    assert await conn.next_records() == [{"type": 7, "error": "Connection closed with an error. Error reading JSON."}]
    assert (await conn.poll()).status_code == 204
    assert (await conn.poll()).status_code == 404


async def test_a_record_may_span_two_posts(client, hub, unique):
    """POST bodies are a byte stream, as ASP.NET reads them: a record may end in the next POST."""
    topic, stream_id = unique("t"), unique("s")
    conn = await LongPolling.open(client, hub.hub_url)
    await conn.handshake()
    body = json.dumps({"type": 1, "invocationId": "9", "target": "SendEventData", "arguments": [topic, stream_id, make_events(1)]}).encode() + RS
    assert (await conn.post(body[:25])).status_code == 200
    assert (await conn.post(body[25:])).status_code == 200
    assert (await conn.next_records())[0] == {"type": 3, "invocationId": "9", "result": None}
    await conn.delete()


async def test_messagepack_over_long_polling_is_raw_binary(client, hub, unique):
    topic, stream_id = unique("t"), unique("s")
    conn = await LongPolling.open(client, hub.hub_url)
    assert await conn.handshake("messagepack") == [{}]
    events = make_events(1, "mp")
    body = msgpack.packb([1, {}, "1", "SendEventData", [topic, stream_id, events]])
    assert len(body) < 128  # one VarInt byte
    assert (await conn.post(bytes([len(body)]) + body)).status_code == 200
    response = await conn.poll()
    assert response.headers["content-type"] == "application/octet-stream"
    completion = msgpack.packb([3, {}, "1", 3, None])  # Completion with a result, null (as ASP.NET for void)
    assert response.content == bytes([len(completion)]) + completion
    assert hub.get_events(topic, stream_id) == events
    await conn.delete()


async def test_connections_without_a_transport_request_are_dropped(client, hub):
    """A long-polling client that stops polling (no DELETE), and a negotiated connection that
    never attached a transport: after the disconnect timeout (3 s here) both are gone."""
    conn = await LongPolling.open(client, hub.hub_url)
    await conn.handshake()
    idle = await LongPolling.open(client, hub.hub_url)  # never even sends its handshake
    never_used, _ = await negotiate(client, hub.hub_url)
    started = time.monotonic()
    # POSTs do not keep a connection alive, polls do.
    while (await conn.post(b'{"type":6}\x1e')).status_code == 200:
        assert time.monotonic() - started < 10, "the connection was not dropped"
        await asyncio.sleep(0.2)
    assert time.monotonic() - started >= 2.5
    # The sweeper drops them in the same pass or the next (0.75 s apart): wait for both, since a
    # poll would itself count as a transport request.
    async with asyncio.timeout(5):
        while hub.stderr_text().count("(LongPolling) closed: no transport request for 3 s") < 2:
            await asyncio.sleep(0.05)
    assert (await idle.poll()).status_code == 404
    response = await client.get(hub.hub_url, params={"id": never_used})
    assert (response.status_code, response.text) == (404, "No Connection with that ID")
    assert "(LongPolling) closed: no transport request for 3 s" in hub.stderr_text()


async def test_handshake_posted_before_the_first_poll_is_kept(client, hub):
    """signalrcore sends its handshake before it polls; ASP.NET buffers it, so do we."""
    token, _ = await negotiate(client, hub.hub_url)
    conn = LongPolling(client, hub.hub_url, token)
    assert (await conn.post(b'{"protocol":"json","version":0}\x1e')).status_code == 200
    assert (await conn.poll()).content == b""
    assert await conn.next_records() == [{}]
    await conn.delete()


async def test_too_much_data_before_any_transport_is_refused(client, hub):
    token, _ = await negotiate(client, hub.hub_url)
    response = await client.post(hub.hub_url, params={"id": token}, content=b"x" * 1_048_577)  # > --max-message-size
    assert (response.status_code, response.text) == (
        413, "Too much data sent before a transport was attached to this connection."
    )


# --- Server-Sent Events -------------------------------------------------------------------------------


async def test_sse_stream_format_handshake_pings_and_invoke(client, hub, unique):
    topic, stream_id = unique("t"), unique("s")
    token, reply = await negotiate(client, hub.hub_url)
    assert {"transport": "ServerSentEvents", "transferFormats": ["Text"]} in reply["availableTransports"]
    async with httpx.AsyncClient(timeout=10) as browser_like:  # EventSource: token in the query only
        async with event_stream(browser_like, hub.hub_url, token, access_token=hub.token) as sse:
            assert sse.response.status_code == 200
            assert sse.response.headers["content-type"] == "text/event-stream"
            assert sse.response.headers["cache-control"] == "no-cache"
            assert await sse.read_until(b"\r\n") == b":\r\n"

            post = lambda body: client.post(hub.hub_url, params={"id": token}, content=body)
            assert (await post(b'{"protocol":"json","version":1}\x1e')).status_code == 200
            assert await sse.next_event(skip_pings=False) == b"{}\x1e"
            # keep-alive 1 s: SSE carries pings
            assert await sse.next_event(timeout=3, skip_pings=False) == b'{"type":6}\x1e'

            events = make_events(3, "sse")
            body = json.dumps({"type": 1, "invocationId": "1", "target": "SendEventData", "arguments": [topic, stream_id, events]})
            assert (await post(body.encode() + RS)).status_code == 200
            assert await sse.next_event() == b'{"type":3,"invocationId":"1","result":null}\x1e'
            assert b'data: {"type":3,"invocationId":"1","result":null}\x1e\r\n\r\n' in sse.raw

            # A second event stream on the same connection: 409, as ASP.NET.
            second = await client.get(hub.hub_url, params={"id": token}, headers={"Accept": "text/event-stream"})
            assert second.status_code == 409
            # DELETE is for long polling only.
            deleted = await client.delete(hub.hub_url, params={"id": token})
            assert (deleted.status_code, deleted.text) == (400, "Cannot terminate this connection using the DELETE endpoint.")
        # The client closed the stream without a word: the connection is gone at once.
        assert hub.get_events(topic, stream_id) == events
        await _eventually_404(client, hub, token)


async def test_server_close_ends_the_event_stream(client, hub):
    token, _ = await negotiate(client, hub.hub_url)
    async with event_stream(client, hub.hub_url, token) as sse:
        await sse.read_until(b":\r\n")
        await client.post(hub.hub_url, params={"id": token}, content=b'{"protocol":"json","version":1}\x1e')
        assert await sse.next_event() == b"{}\x1e"
        await client.post(hub.hub_url, params={"id": token}, content=b"[1,2]\x1e")
        rest = await sse.ended()
    assert b'data: {"type":7,"error":"Connection closed with an error.' in rest
    assert (await client.get(hub.hub_url, params={"id": token})).status_code == 404


async def test_messagepack_over_sse_gets_the_aspnet_handshake_error(client, hub):
    token, _ = await negotiate(client, hub.hub_url)
    async with event_stream(client, hub.hub_url, token) as sse:
        await sse.read_until(b":\r\n")
        await client.post(hub.hub_url, params={"id": token}, content=b'{"protocol":"messagepack","version":1}\x1e')
        error = json.loads((await sse.next_event()).rstrip(RS))
        assert error == {
            "error": "Cannot use the 'messagepack' protocol on the current transport. "
            "The transport does not support 'Binary' transfer format."
        }
        await sse.ended()


# --- status codes ----------------------------------------------------------------------------------


async def test_status_codes_of_transport_requests(client, hub):
    for method in ("GET", "POST", "DELETE"):
        response = await client.request(method, hub.hub_url)
        assert (response.status_code, response.text) == (400, "Connection ID required"), method
        response = await client.request(method, hub.hub_url, params={"id": "no-such-id"})
        assert (response.status_code, response.text) == (404, "No Connection with that ID"), method
        async with httpx.AsyncClient(timeout=5) as anonymous:
            response = await anonymous.request(method, hub.hub_url, params={"id": "no-such-id"})
        assert response.status_code == 401, method

    # Long polling, then another transport on the same id: 400.
    conn = await LongPolling.open(client, hub.hub_url)
    sse = await client.get(hub.hub_url, params={"id": conn.id}, headers={"Accept": "text/event-stream"})
    assert (sse.status_code, sse.text) == (400, "Cannot change transports mid-connection")
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{hub.ws_url}?id={conn.id}", additional_headers=hub.auth_headers):
            pass
    assert refused.value.response.status_code == 400
    await conn.delete()

    # WebSockets: POST is 405, a poll is 400.
    token, _ = await negotiate(client, hub.hub_url)
    async with connect(f"{hub.ws_url}?id={token}", additional_headers=hub.auth_headers):
        response = await client.post(hub.hub_url, params={"id": token}, content=b"{}")
        assert (response.status_code, response.text) == (405, "POST requests are not allowed for WebSocket connections.")
        assert (await client.get(hub.hub_url, params={"id": token})).status_code == 400


async def _eventually_404(client, hub, token, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while (await client.post(hub.hub_url, params={"id": token}, content=b"")).status_code != 404:
        assert time.monotonic() < deadline, "the connection is still there"
        await asyncio.sleep(0.1)


# --- --transport -------------------------------------------------------------------------------------


async def test_transports_can_be_turned_off(hub_server):
    ws_only = hub_server("--transport", "WebSockets")
    async with httpx.AsyncClient(headers=ws_only.auth_headers, timeout=5) as client:
        token, reply = await negotiate(client, ws_only.hub_url)
        assert [t["transport"] for t in reply["availableTransports"]] == ["WebSockets"]
        poll = await client.get(ws_only.hub_url, params={"id": token})
        assert (poll.status_code, poll.text) == (404, "LongPolling transport not supported by this end point type")
        sse = await client.get(ws_only.hub_url, params={"id": token}, headers={"Accept": "text/event-stream"})
        assert (sse.status_code, sse.text) == (404, "ServerSentEvents transport not supported by this end point type")

    http_only = hub_server("--transports", "LongPolling,ServerSentEvents")
    async with httpx.AsyncClient(headers=http_only.auth_headers, timeout=5) as client:
        token, reply = await negotiate(client, http_only.hub_url)
        assert [t["transport"] for t in reply["availableTransports"]] == ["ServerSentEvents", "LongPolling"]
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{http_only.ws_url}?id={token}", additional_headers=http_only.auth_headers):
            pass
    assert refused.value.response.status_code == 404
