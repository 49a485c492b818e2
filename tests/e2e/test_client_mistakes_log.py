"""A client's mistake is the client's (issue 12, item 13): each one below, sent to a real hub as raw
bytes, gets its answer (a close code, a 4xx, a SignalR Close) and at most one line at info in the
log: never a line at WARNING or above, never a traceback. A healthy client is served throughout."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
from collections.abc import Awaitable, Callable

import msgpack
import pytest

from .support import RS, make_events, negotiate

pytestmark = pytest.mark.e2e

TEXT, BINARY, CONTINUATION, CLOSE, PING = 0x1, 0x2, 0x0, 0x8, 0x9


def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, masked: bool = True, length: int | None = None) -> bytes:
    """One WebSocket frame as a client sends it (masked); `length` overrides the declared length."""
    declared = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    mask_bit = 0x80 if masked else 0
    if declared < 126:
        head += bytes([mask_bit | declared])
    elif declared < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", declared)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", declared)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class RawSocket:
    """A WebSocket opened by hand on a plain TCP connection, to send any bytes at all."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def upgrade(cls, server, *, deflate: bool = False, key: str | None = None, version: str = "13") -> tuple["RawSocket", int]:
        reply = await negotiate(server.hub_url, server.token)
        reader, writer = await asyncio.open_connection(server.host, server.port)
        headers = [
            f"GET /hub?id={reply['connectionToken']} HTTP/1.1", f"Host: {server.host}:{server.port}",
            "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Version: {version}",
            f"Authorization: Bearer {server.token}",
        ]  # fmt: skip
        if key != "":
            headers.append(f"Sec-WebSocket-Key: {key or base64.b64encode(os.urandom(16)).decode()}")
        if deflate:
            headers.append("Sec-WebSocket-Extensions: permessage-deflate")
        writer.write(("\r\n".join(headers) + "\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        return cls(reader, writer), int(head.split(b" ", 2)[1])

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def handshake(self, protocol: str = "json") -> None:
        self.send(frame(TEXT, json.dumps({"protocol": protocol, "version": 1}).encode() + RS.encode()))
        opcode, payload = await self.read_frame()
        assert payload == b"{}\x1e", (opcode, payload)

    async def read_frame(self) -> tuple[int, bytes]:
        first, second = await asyncio.wait_for(self.reader.readexactly(2), 5)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return first & 0x0F, await self.reader.readexactly(length)

    async def close_code(self) -> int | None:
        """Read until the server's Close frame; its code (None: the socket ended without one)."""
        async with asyncio.timeout(5):
            while True:
                try:
                    opcode, payload = await self.read_frame()
                except asyncio.IncompleteReadError:
                    return None
                if opcode == CLOSE:
                    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None

    def abort(self) -> None:
        self.writer.transport.abort()


async def raw_http(server, data: bytes, read: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), 5) if read else b""
    finally:
        writer.transport.abort()


# --- the mistakes -----------------------------------------------------------------------------------


async def bad_utf8_text(server) -> None:
    ws, status = await RawSocket.upgrade(server)
    assert status == 101
    await ws.handshake()
    ws.send(frame(TEXT, b'{"type":6}\xff\xfe' + RS.encode()))
    assert await ws.close_code() == 1007


async def bad_utf8_across_fragments(server) -> None:
    ws, _ = await RawSocket.upgrade(server)
    await ws.handshake()
    ws.send(frame(TEXT, b'{"type":6}\xe2\x82', fin=False) + frame(CONTINUATION, b"\x28" + RS.encode()))
    assert await ws.close_code() == 1007


async def unmasked_frame(server) -> None:
    ws, _ = await RawSocket.upgrade(server)
    ws.send(frame(TEXT, b'{"protocol":"json","version":1}\x1e', masked=False))
    assert await ws.close_code() == 1002


async def reserved_bits_and_unknown_opcode(server) -> None:
    for data in (frame(TEXT, b"x", rsv=0b010), frame(0x3, b"x"), frame(PING, b"x", fin=False), frame(PING, b"x" * 126)):
        ws, _ = await RawSocket.upgrade(server)
        ws.send(data)
        assert await ws.close_code() == 1002, data


async def oversize_frame(server) -> None:
    ws, _ = await RawSocket.upgrade(server)
    await ws.handshake()
    ws.send(frame(BINARY, b"", length=1 << 40)[:14])  # the header only: a terabyte announced
    assert await ws.close_code() == 1009


async def bad_deflate(server) -> None:
    ws, status = await RawSocket.upgrade(server, deflate=True)
    assert status == 101
    ws.send(frame(TEXT, b"\xff\xff\xff\xff not deflate", rsv=0b100))
    assert await ws.close_code() in (1002, 1007)


async def bad_messagepack(server) -> None:
    ws, _ = await RawSocket.upgrade(server)
    ws.send(frame(TEXT, b'{"protocol":"messagepack","version":1}\x1e'))
    await ws.read_frame()
    ws.send(frame(BINARY, b"\x05\xc1\xc1\xc1\xc1\xc1"))  # 0xc1: never used in MessagePack
    opcode, payload = await ws.read_frame()
    assert msgpack.unpackb(payload[1:])[0] == 7  # a Close message
    assert await ws.close_code() in (1000, None)


async def bad_json_and_bad_handshake(server) -> None:
    ws, _ = await RawSocket.upgrade(server)
    await ws.handshake()
    ws.send(frame(TEXT, b'{"type":1,"target":' + RS.encode()))
    assert (await ws.read_frame())[0] == TEXT
    ws, _ = await RawSocket.upgrade(server)
    ws.send(frame(TEXT, b"hello" + RS.encode()))
    assert b"error" in (await ws.read_frame())[1]


async def invalid_upgrades(server) -> None:
    for kwargs in ({"key": ""}, {"key": "short"}, {"version": "8"}):
        ws, status = await RawSocket.upgrade(server, **kwargs)
        assert 400 <= status < 500, (kwargs, status)
        ws.abort()


async def abrupt_disconnects(server) -> None:
    ws, _ = await RawSocket.upgrade(server)
    await ws.handshake()
    ws.send(frame(TEXT, b'{"type":1,"invocationId":"1","target":"SendEventData"' * 20)[:40])  # half a frame
    await asyncio.sleep(0)  # let it be written before the reset
    ws.abort()
    ws, _ = await RawSocket.upgrade(server)
    ws.send(b"\x81")  # one byte of a frame header
    ws.abort()
    # an HTTP body cut short
    body = json.dumps(make_events(3, "cut")).encode()
    await raw_http(
        server,
        b"POST /topics/t/streams/s/events/data HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + server.token.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:10],
        read=False,
    )


async def bad_http(server) -> None:
    for data in (b"HELLO\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00"):
        reply = await raw_http(server, data)
        assert reply == b"" or reply.startswith(b"HTTP/1.1 400"), (data, reply)
    upgrade = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: h2c\r\n\r\n"
    assert (await raw_http(server, upgrade)).startswith(b"HTTP/1.1 200")  # served as plain HTTP
    token = {"Authorization": f"Bearer {server.token}"}
    with server.http(headers=token) as client:
        for method, path, kwargs in (
            ("GET", "/hub", {}), ("POST", "/hub?id=nope", {"content": b"x"}), ("DELETE", "/hub", {}),
            ("GET", "/hub?id=nope", {"headers": {**token, "Accept": "text/event-stream"}}),
        ):  # fmt: skip
            assert 400 <= client.request(method, path, **kwargs).status_code < 500, (method, path)
        # long polling: a bad record after a good handshake
        reply = client.post("/hub/negotiate?negotiateVersion=1").json()
        cid = reply["connectionToken"]
        assert client.get(f"/hub?id={cid}").status_code == 200
        assert client.post(f"/hub?id={cid}", content=b'{"protocol":"json","version":1}\x1e').status_code == 200
        assert client.post(f"/hub?id={cid}", content=b"\xff\xfe not json\x1e").status_code == 200
        assert client.get(f"/hub?id={cid}").status_code in (200, 204)


MISTAKES: list[Callable[..., Awaitable[None]]] = [
    bad_utf8_text, bad_utf8_across_fragments, unmasked_frame, reserved_bits_and_unknown_opcode, oversize_frame,
    bad_deflate, bad_messagepack, bad_json_and_bad_handshake, invalid_upgrades, abrupt_disconnects, bad_http,
]  # fmt: skip


@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.__name__ for m in MISTAKES])
async def test_a_clients_mistake_is_at_most_one_info_line(raw_ws, shared_hub, unique, async_wait_for, mistake):
    healthy = await raw_ws.ready(shared_hub)
    start = len(shared_hub.stderr_text())
    await mistake(shared_hub)
    # the healthy client is still served, and its answer means the hub has dealt with the mistake
    topic, stream_id = unique("t"), unique("s")
    assert (await healthy.invoke("SendEventData", topic, stream_id, make_events(1)))["result"] is None

    def logged() -> str:
        return shared_hub.stderr_text()[start:] + shared_hub.stdout_text()

    # A request logged after the mistake: the hub's loop has run past whatever the mistake made it log.
    marker = unique("after")
    with shared_hub.http() as client:
        assert client.get(f"/health?{marker}").status_code == 200
    await async_wait_for(lambda: marker in logged(), timeout=5, message="the marker request in the log")
    if mistake in (bad_utf8_text, bad_utf8_across_fragments):
        await async_wait_for(lambda: "Invalid UTF-8" in logged(), timeout=5)
    lines = logged().splitlines()
    serious = [line for line in lines if any(f" {level} " in line for level in ("WARNING", "ERROR", "CRITICAL"))]
    assert not serious, "\n".join(lines)
    assert not [line for line in lines if "Traceback" in line or line.startswith(("  File ", "    "))], "\n".join(lines)
    if mistake in (bad_utf8_text, bad_utf8_across_fragments):
        assert sum("Invalid UTF-8" in line for line in lines) == 1, "\n".join(lines)
