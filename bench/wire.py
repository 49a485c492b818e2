"""The generator's side of the wire, as cheap as Python allows: a raw asyncio WebSocket client and
pre-encoded SignalR (JSON, MessagePack) and Socket.IO frames.

The point is that the load generator costs little next to the server it measures, so:
- client frames are masked with the all-zero key (valid RFC 6455: the payload goes out unchanged),
  so a frame is its header plus the pre-encoded payload, with no per-byte work;
- replies are parsed minimally: only the invocation (or ack) id and whether an error came back.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import orjson

RS = b"\x1e"
TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA

# --- WebSocket framing ------------------------------------------------------------------------------


def client_frame(payload: bytes, opcode: int = TEXT) -> bytes:
    """One final, masked (key 0000) client frame."""
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + struct.pack("!H", n)
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + struct.pack("!Q", n)
    return header + b"\x00\x00\x00\x00" + payload


class FrameParser:
    """Unmasked server frames out of a byte stream. Fragmented messages are joined."""

    __slots__ = ("_opcode", "_parts", "buf")

    def __init__(self) -> None:
        self.buf = bytearray()
        self._parts: list[bytes] = []
        self._opcode = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buf = self.buf
        buf += data
        out: list[tuple[int, bytes]] = []
        pos, end = 0, len(buf)
        while end - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n = b1 & 0x7F
            head = 2
            if n == 126:
                if end - pos < 4:
                    break
                n = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 4
            elif n == 127:
                if end - pos < 10:
                    break
                n = struct.unpack_from("!Q", buf, pos + 2)[0]
                head = 10
            if b1 & 0x80:  # a masked server frame: not expected, but read it right
                head += 4
            if end - pos < head + n:
                break
            payload = bytes(buf[pos + head : pos + head + n])
            if b1 & 0x80:
                key = buf[pos + head - 4 : pos + head]
                payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            opcode = b0 & 0x0F
            pos += head + n
            if opcode == 0:  # continuation
                self._parts.append(payload)
                if b0 & 0x80:
                    out.append((self._opcode, b"".join(self._parts)))
                    self._parts = []
            elif not b0 & 0x80:  # first fragment
                self._opcode, self._parts = opcode, [payload]
            else:
                out.append((opcode, payload))
        if pos:
            del buf[:pos]
        return out


class WsClient(asyncio.Protocol):
    """One WebSocket client connection. `on_message(opcode, payload)` gets every text/binary
    message; pings are answered; `closed` resolves when the connection ends."""

    def __init__(self, host: str, path: str, on_message: Callable[[int, bytes], None] | None = None):
        self.host, self.path = host, path
        self.on_message = on_message or (lambda op, data: None)
        loop = asyncio.get_running_loop()
        self.upgraded: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self._head = b""
        self._frames = FrameParser()
        self.close_code: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        if not self.upgraded.done():
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            status_line = self._head.split(b"\r\n", 1)[0]
            rest = self._head[end + 4 :]
            self._head = b""
            if b" 101 " not in status_line:
                self.upgraded.set_exception(ConnectionError(f"upgrade refused: {status_line.decode(errors='replace')}"))
                self.transport.close()  # type: ignore[union-attr]
                return
            self.upgraded.set_result(None)
            if not rest:
                return
            data = rest
        for opcode, payload in self._frames.feed(data):
            if opcode == TEXT or opcode == BINARY:
                self.on_message(opcode, payload)
            elif opcode == PING:
                self.transport.write(client_frame(payload, PONG))  # type: ignore[union-attr]
            elif opcode == CLOSE:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                if not self.transport.is_closing():  # type: ignore[union-attr]
                    self.transport.write(client_frame(payload[:2], CLOSE))  # type: ignore[union-attr]
                    self.transport.close()  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(exc or ConnectionError("closed before the upgrade"))
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, frame: bytes) -> None:
        self.transport.write(frame)  # type: ignore[union-attr]

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(struct.pack("!H", 1000), CLOSE))
            self.transport.close()


async def ws_connect(
    host: str,
    port: int,
    path: str,
    on_message: Callable[[int, bytes], None] | None = None,
    *,
    local_addr: tuple[str, int] | None = None,
    timeout: float = 30.0,
) -> WsClient:
    loop = asyncio.get_running_loop()
    _, client = await asyncio.wait_for(
        loop.create_connection(lambda: WsClient(f"{host}:{port}", path, on_message), host, port, local_addr=local_addr),
        timeout,
    )
    await asyncio.wait_for(asyncio.shield(client.upgraded), timeout)
    return client


# --- SignalR ----------------------------------------------------------------------------------------


def events(batch: int, base: int = 1_700_000_000_000_000_000) -> list[dict]:
    """The benchmark's event batch: what a device typically sends."""
    return [{"id": "Bench", "timestamp": base + i, "value": "x" * 16, "tags": {"k": "v"}} for i in range(batch)]


def handshake_frame(protocol: str) -> bytes:
    return client_frame(orjson.dumps({"protocol": protocol, "version": 1}) + RS)


def ping_frame(protocol: str) -> bytes:
    return client_frame(b'{"type":6}\x1e') if protocol == "json" else client_frame(b"\x02\x91\x06", BINARY)


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SAFE_INTEGER = 2**53 - 1  # JavaScript's Number.MAX_SAFE_INTEGER


def as_javascript_numbers(value: Any) -> Any:
    """`value` with every integer beyond JavaScript's safe range as a float: what
    @microsoft/signalr-protocol-msgpack sends for them (float64; ../shared/vectors has such
    timestamps), so MessagePack loads carry what the real client's do."""
    if type(value) is int and not -_SAFE_INTEGER <= value <= _SAFE_INTEGER:
        return float(value)
    if isinstance(value, list):
        return [as_javascript_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: as_javascript_numbers(v) for k, v in value.items()}
    return value


def packb_as_javascript(value: Any) -> bytes:
    return msgpack.packb(as_javascript_numbers(value), use_bin_type=True)


class InvocationEncoder:
    """SendEventData invocation frames whose only varying part is the invocation id."""

    def __init__(self, protocol: str, arguments: list, target: str = "SendEventData"):
        self.protocol = protocol
        if protocol == "json":
            body = orjson.dumps({"type": 1, "target": target, "arguments": arguments})
            self._prefix = body[:-1] + b',"invocationId":"'
            self._suffix = b'"}\x1e'
        else:
            # [1, {}, id, target, args]: everything after the id is fixed.
            self._prefix = b"\x95\x01\x80"
            self._suffix = msgpack.packb(target) + packb_as_javascript(arguments)

    def frame(self, invocation_id: int) -> bytes:
        iid = str(invocation_id).encode()
        if self.protocol == "json":
            return client_frame(self._prefix + iid + self._suffix)
        body = self._prefix + bytes((0xA0 | len(iid),)) + iid + self._suffix
        return client_frame(_varint(len(body)) + body, BINARY)


_IID = b'"invocationId":"'


def json_completions(payload: bytes) -> list[tuple[int, bool]]:
    """(invocation id, is an error) for every Completion in a JSON frame; other records skipped."""
    out = []
    for record in payload.split(RS):
        if b'"type":3' not in record:
            continue
        start = record.find(_IID)
        if start < 0:
            continue
        start += len(_IID)
        out.append((int(record[start : record.index(b'"', start)]), b'"error"' in record))
    return out


def msgpack_bodies(payload: bytes) -> Iterator[bytes]:
    """The msgpack bodies of the VarInt-length-prefixed records in one binary frame."""
    pos, end = 0, len(payload)
    while pos < end:
        length = shift = 0
        while True:
            byte = payload[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        yield payload[pos : pos + length]
        pos += length


def msgpack_completions(payload: bytes) -> list[tuple[int, bool]]:
    out = []
    for body in msgpack_bodies(payload):
        # The hub writes [3, {}, "<id>", kind, ...]: a fixarray, 3, an empty map, a fixstr.
        if len(body) > 4 and body[1] == 3 and body[2] == 0x80 and body[3] & 0xE0 == 0xA0:
            n = body[3] & 0x1F
            out.append((int(body[4 : 4 + n]), body[4 + n] == 1))
            continue
        value = msgpack.unpackb(body, raw=False, strict_map_key=False)
        if isinstance(value, list) and value and value[0] == 3:
            out.append((int(value[2]), value[3] == 1))
    return out


# --- Socket.IO (python-socketio's peer scenario) ------------------------------------------------------


class SocketIoEventEncoder:
    """`42<ack id>["SendEventData", topic, stream, events]`: an event that wants an acknowledgement."""

    def __init__(self, arguments: list, event: str = "SendEventData"):
        self._body = orjson.dumps([event, *arguments])

    def frame(self, ack_id: int) -> bytes:
        return client_frame(b"42" + str(ack_id).encode() + self._body)


def socketio_acks(payload: bytes) -> list[tuple[int, bool]]:
    """`43<id>[...]` is an ack; anything else (pings are handled by the caller) is skipped."""
    if payload[:2] != b"43":
        return []
    end = payload.index(b"[", 2)
    return [(int(payload[2:end]), False)]
