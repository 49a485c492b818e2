"""SIGTERM to exit within --shutdown-timeout plus a second, however busy the hub is, with every
acknowledged write kept and clients told they may reconnect."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import time

import httpx

from .http_transports import LongPolling, event_stream, negotiate as http_negotiate
from .support import RS, make_events, negotiate

SHUTDOWN_TIMEOUT = 2.0
# The bound is timeout + 1 s; the extra half second is for a loaded CI machine only.
EXIT_BOUND = SHUTDOWN_TIMEOUT + 1.5


def masked_text_frame(text: str) -> bytes:
    """One client-to-server WebSocket text frame (clients must mask)."""
    payload = text.encode()
    mask = os.urandom(4)
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def never_reading_websocket(server) -> socket.socket:
    """A SignalR WebSocket client, handshake sent, that then never reads its socket again."""
    reply = await negotiate(server.hub_url, server.token)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # small, so the hub's writes back up soon
    sock.settimeout(5)
    sock.connect((server.host, server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /hub?id={reply['connectionToken']} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {server.token}\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    sock.sendall(masked_text_frame(json.dumps({"protocol": "json", "version": 1}) + RS))
    return sock


def slow_upload(server, topic: str, stream: str) -> socket.socket:
    """An HTTP write whose body trickles in: its request stays in flight until the client sends the rest."""
    sock = socket.create_connection((server.host, server.port), timeout=5)
    sock.sendall(
        f"POST /topics/{topic}/streams/{stream}/events/data HTTP/1.1\r\nHost: {server.host}\r\n"
        f"Authorization: Bearer {server.token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: 100000\r\n\r\n[".encode()
    )
    return sock


async def test_sigterm_exits_within_the_timeout_and_keeps_acknowledged_writes(raw_ws, hub_server, tmp_path, unique):
    data_dir = tmp_path / "kept"
    server = hub_server("--shutdown-timeout", str(SHUTDOWN_TIMEOUT), data_dir=data_dir)
    topic, stream = unique("t"), unique("s")
    events = make_events(5, "acked")
    with server.http() as client:
        written = client.post(f"/topics/{topic}/streams/{stream}/events/data", json=events)
    assert written.status_code == 200, written.text

    # In-flight work that a drain would wait for: an upload stream its client never completes.
    uploader = await raw_ws.ready(server)
    await uploader.send(
        {"type": 1, "invocationId": "up", "target": "StreamEventData", "arguments": [topic, stream], "streamIds": ["s1"]},
        {"type": 2, "invocationId": "s1", "item": make_events(1, "upload")[0]},
    )
    silent = await never_reading_websocket(server)
    slow = slow_upload(server, topic, unique("slow"))
    headers = {"Authorization": f"Bearer {server.token}"}
    async with httpx.AsyncClient(headers=headers, timeout=10) as client:
        polling = await LongPolling.open(client, server.hub_url)
        assert await polling.handshake() == [{}]
        poll = asyncio.create_task(polling.poll())  # waits for data: in flight when SIGTERM comes
        sse_id, _ = await http_negotiate(client, server.hub_url)
        async with event_stream(client, server.hub_url, sse_id) as sse:
            await sse.read_until(b"\r\n")  # the stream is open
            # the upload's first item is stored once it is in: the hub is mid-invocation now
            deadline = time.monotonic() + 5
            while len(server.get_events(topic, stream)) < len(events) + 1:
                assert time.monotonic() < deadline, "the upload's first item was never stored"
                await asyncio.sleep(0.05)

            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            goodbye = await uploader.records_until_closed(timeout=EXIT_BOUND + 2)
            code = await asyncio.to_thread(server.proc.wait, EXIT_BOUND + 5)
            elapsed = time.monotonic() - started
            polled = await asyncio.wait_for(poll, 5)
    silent.close()
    slow.close()

    assert elapsed <= EXIT_BOUND, f"SIGTERM to exit took {elapsed:.2f} s with --shutdown-timeout {SHUTDOWN_TIMEOUT}"
    assert code in (0, -signal.SIGTERM), code
    # clients were told to come back (to another server, or this one restarted)
    assert goodbye and goodbye[-1]["type"] == 7 and goodbye[-1].get("allowReconnect") is True, goodbye
    assert polled.status_code in (200, 204), polled.status_code
    # what was acknowledged is there after a restart on the same sqlite file
    again = hub_server("--shutdown-timeout", str(SHUTDOWN_TIMEOUT), data_dir=data_dir)
    stored = again.get_events(topic, stream)
    assert [e["id"] for e in stored[: len(events)]] == [e["id"] for e in events], stored
