"""SendEventData load generator: N WebSocket connections, each keeping W invocations in flight (closed
loop), or a fixed total rate (open loop, --rate) for latency.

    python -m bench.loadgen --url http://127.0.0.1:8080/hub --token T --connections 4 --inflight 50 \
        --batch 10 --seconds 10 [--protocol json|messagepack|socketio] [--rate 5000] [--server-pid PID]

Frames are pre-encoded and sent raw (bench/wire.py); replies are parsed minimally (only the invocation
id and whether an error came back), so the generator costs little next to the server. Error
Completions are counted apart and not in the rates. With --server-pid, the server's CPU use during
the measured window is reported (a run where the server was not busy measured the generator).
Prints one JSON line. `python -m bench throughput` runs the whole matrix against hub, floor and peer.

`--scenario upload` (json or messagepack) measures client-to-server streaming instead: each
connection makes one `StreamEventData(topic, stream, stream)` invocation and sends StreamItems of
--batch events as fast as the socket takes them for --seconds, then completes the stream; the rate is
the events the hub reports stored (the invocation's result) over the time from the first item to
that Completion, so it counts what the hub stored, not what the generator wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from msgpack import packb as msgpack_packb
from msgpack import unpackb as msgpack_unpackb
from orjson import dumps as orjson_dumps

from . import wire
from .servers import CpuMeter, machine, pin_self

PROTOCOLS = ("json", "messagepack", "socketio")


@dataclass
class Stats:
    ok: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    counting: bool = False  # inside the measured window
    first_error: str | None = None


class LoadConnection:
    """One connection of the generator: pre-encoded invocations out, Completions (or acks) in."""

    def __init__(self, protocol: str, arguments: list, stats: Stats):
        self.protocol = protocol
        self.stats = stats
        if protocol == "socketio":
            self.encoder = wire.SocketIoEventEncoder(arguments)
            self.parse = wire.socketio_acks
        else:
            self.encoder = wire.InvocationEncoder(protocol, arguments)
            self.parse = wire.json_completions if protocol == "json" else wire.msgpack_completions
        self.pending: dict[int, tuple[float, bool]] = {}  # id -> (sent at, sent inside the window)
        self.counter = 0
        self.refill = False  # closed loop: each answer sends the next invocation
        self.client: wire.WsClient | None = None
        self._ready: asyncio.Future | None = None

    async def open(self, host: str, port: int, path: str, token: str, local_addr=None) -> None:
        self._ready = asyncio.get_running_loop().create_future()
        if self.protocol == "socketio":
            path = "/socket.io/?EIO=4&transport=websocket"
        else:
            path = f"{path}?access_token={token}"
        self.client = await wire.ws_connect(host, port, path, self._on_message, local_addr=local_addr)
        if self.protocol == "socketio":
            self.client.send(wire.client_frame(b"40"))  # join the default namespace
        else:
            self.client.send(wire.handshake_frame(self.protocol))
        await asyncio.wait_for(self._ready, 30)

    def _on_message(self, opcode: int, payload: bytes) -> None:
        ready = self._ready
        if ready is not None and not ready.done():
            self._handshake(payload, ready)
            return
        if self.protocol == "socketio" and payload[:1] == b"2":
            self.client.send(wire.client_frame(b"3"))  # Engine.IO ping -> pong
            return
        answers = self.parse(payload)
        if not answers:
            return
        now = time.perf_counter()
        stats = self.stats
        pending = self.pending
        for iid, is_error in answers:
            sent = pending.pop(iid, None)
            if sent is None:
                continue
            if stats.counting:
                if is_error:
                    stats.errors += 1
                    if stats.first_error is None:
                        stats.first_error = payload[:300].decode(errors="replace")
                else:
                    stats.ok += 1
            if sent[1] and not is_error:
                stats.latencies.append(now - sent[0])
        if self.refill:
            self.send(len(answers))

    def _handshake(self, payload: bytes, ready: asyncio.Future) -> None:
        if self.protocol == "socketio":
            if payload[:2] == b"40":
                ready.set_result(None)
            elif payload[:2] == b"44":
                ready.set_exception(ConnectionError(payload.decode(errors="replace")))
        elif payload.startswith(b"{}"):
            ready.set_result(None)
        else:
            ready.set_exception(ConnectionError(f"handshake failed: {payload[:200]!r}"))

    def send(self, count: int = 1) -> None:
        """Send `count` invocations in one write."""
        now = time.perf_counter()
        counting = self.stats.counting
        frames = []
        for _ in range(count):
            self.counter += 1
            self.pending[self.counter] = (now, counting)
            frames.append(self.encoder.frame(self.counter))
        self.client.send(b"".join(frames))


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


async def run(args: argparse.Namespace) -> dict:
    """One load run; the JSON-able result. Needs: url, token, protocol, connections, inflight, batch,
    seconds, warmup, rate (None = closed loop), server_pid (list); scenario ("invoke" if absent)."""
    if getattr(args, "scenario", "invoke") == "upload":
        return await run_upload(args)
    parts = urlsplit(args.url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/hub"
    stats = Stats()
    events = wire.events(args.batch)
    conns = [LoadConnection(args.protocol, ["bench", f"s{i}", events], stats) for i in range(args.connections)]
    await asyncio.gather(*(c.open(host, port, path, args.token) for c in conns))

    meter = CpuMeter(list(args.server_pid or []))
    helper = CpuMeter(list(getattr(args, "helper_pid", None) or []))  # e.g. the hub's redis-server
    own = CpuMeter([os.getpid()])
    start = time.perf_counter()
    window_start = start + args.warmup
    window_end = window_start + args.seconds
    if args.rate:
        await _open_loop(conns, args.rate, stats, window_start, window_end, meter, own, helper)
    else:
        for c in conns:
            c.refill = True
            c.send(args.inflight)
        await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
        stats.counting = True
        meter.start(), own.start(), helper.start()
        window_start = time.perf_counter()
        await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
        stats.counting = False
        window_end = time.perf_counter()
        for c in conns:
            c.refill = False
    server_cpu = meter.stop() if meter.pids else None
    helper_cpu = helper.stop() if helper.pids else None
    generator_cpu = own.stop()
    elapsed = window_end - window_start
    # Let the last answers arrive (not counted), then hang up.
    drain_until = time.perf_counter() + 5
    while any(c.pending for c in conns) and time.perf_counter() < drain_until:
        await asyncio.sleep(0.01)
    for c in conns:
        c.client.close()
    lat = stats.latencies
    result = {
        "scenario": "latency" if args.rate else "throughput",
        "protocol": args.protocol,
        "connections": args.connections,
        "inflight": None if args.rate else args.inflight,
        "rate": args.rate,
        "batch": args.batch,
        "seconds": round(elapsed, 2),
        "invocations_per_s": round(stats.ok / elapsed, 1),
        "events_per_s": round(stats.ok * args.batch / elapsed, 1),
        "errors": stats.errors,
        "p50_ms": _ms(percentile(lat, 50)),
        "p99_ms": _ms(percentile(lat, 99)),
        "p999_ms": _ms(percentile(lat, 99.9)),
        "server_cpu": server_cpu,
        "generator_cpu": generator_cpu,
        "helper_cpu": helper_cpu,
    }
    if stats.first_error:
        result["first_error"] = stats.first_error
    return result


async def _open_loop(conns, rate, stats, window_start, window_end, meter, own, helper) -> None:
    """Send at `rate` invocations/s in total, spread over the connections, whatever the answers
    (open loop: a slow server is not given a rest). The timer ticks about every millisecond (the event
    loop's resolution); each tick sends what is due, one write a connection."""
    interval = 1.0 / rate
    start = time.perf_counter()
    sent = 0
    index = 0
    n = len(conns)
    counting = False
    while True:
        now = time.perf_counter()
        if not counting and now >= window_start:
            stats.counting = counting = True
            meter.start(), own.start(), helper.start()
        if now >= window_end:
            break
        due = int((now - start) / interval) - sent
        if due > 0:
            share, extra = divmod(due, n)
            for k in range(n):
                count = share + (1 if (k - index) % n < extra else 0)
                if count:
                    conns[k].send(count)
            index = (index + extra) % n
            sent += due
        await asyncio.sleep(0.001)
    stats.counting = False


# --- client-to-server streaming (--scenario upload) ---------------------------------------------------

UPLOAD_WRITE_BUFFER = 1 << 20  # bytes queued in the generator's socket before it waits


class UploadConnection:
    """One StreamEventData invocation whose stream carries pre-encoded StreamItems of a batch."""

    def __init__(self, protocol: str, topic: str, stream_id: str, batch: list):
        self.protocol = protocol
        self.invocation = wire.InvocationEncoder(protocol, [topic, stream_id], target="StreamEventData")
        if protocol == "json":
            self.item = wire.client_frame(orjson_dumps({"type": 2, "invocationId": "0", "item": batch}) + wire.RS)
            self.end = wire.client_frame(b'{"type":3,"invocationId":"0"}\x1e')
        else:
            body = wire.packb_as_javascript([2, {}, "0", batch])
            self.item = wire.client_frame(wire._varint(len(body)) + body, wire.BINARY)
            end = msgpack_packb([3, {}, "0", 2])
            self.end = wire.client_frame(wire._varint(len(end)) + end, wire.BINARY)
        self.items = 0
        self.client: wire.WsClient | None = None
        self.result: asyncio.Future | None = None
        self._ready: asyncio.Future | None = None

    async def open(self, host: str, port: int, path: str, token: str) -> None:
        loop = asyncio.get_running_loop()
        self._ready, self.result = loop.create_future(), loop.create_future()
        self.client = await wire.ws_connect(host, port, f"{path}?access_token={token}", self._on_message)
        self.client.send(wire.handshake_frame(self.protocol))
        await asyncio.wait_for(self._ready, 30)

    def _on_message(self, opcode: int, payload: bytes) -> None:
        if not self._ready.done():
            if payload.startswith(b"{}"):
                self._ready.set_result(None)
            else:
                self._ready.set_exception(ConnectionError(f"handshake failed: {payload[:200]!r}"))
            return
        if self.result.done():
            return
        if self.protocol == "json":
            for record in payload.split(wire.RS):
                if b'"type":3' in record:
                    self.result.set_result(json.loads(record))
                    return
        else:
            for value in _msgpack_records(payload):
                if value[0] == 3:
                    self.result.set_result({"error": value[4]} if value[3] == 1 else {"result": value[4]})
                    return

    async def stream(self, until: float) -> None:
        """Start the invocation, send items until `until` (waiting while the socket is backed up),
        then complete the stream."""
        client = self.client
        client.send(_with_stream_ids(self.protocol, self.invocation))
        transport = client.transport
        item = self.item
        while time.perf_counter() < until:
            while transport.get_write_buffer_size() > UPLOAD_WRITE_BUFFER:
                await asyncio.sleep(0.0005)
            client.send(item * 16)  # a few items a write: the generator must not be the bottleneck
            self.items += 16
            await asyncio.sleep(0)
        client.send(self.end)


def _with_stream_ids(protocol: str, encoder: "wire.InvocationEncoder") -> bytes:
    """The invocation frame (id "1") with streamIds ["0"]."""
    if protocol == "json":
        body = encoder._prefix + b'1","streamIds":["0"]}\x1e'
        return wire.client_frame(body)
    body = b"\x96\x01\x80\xa11" + encoder._suffix + msgpack_packb(["0"])
    return wire.client_frame(wire._varint(len(body)) + body, wire.BINARY)


def _msgpack_records(payload: bytes):
    for body in wire.msgpack_bodies(payload):
        yield msgpack_unpackb(body, raw=False, strict_map_key=False)


async def run_upload(args: argparse.Namespace) -> dict:
    if args.protocol not in ("json", "messagepack"):
        raise SystemExit("--scenario upload: --protocol json or messagepack")
    parts = urlsplit(args.url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/hub"
    batch = wire.events(args.batch)
    run_id = os.getpid()
    conns = [UploadConnection(args.protocol, "bench", f"up{run_id}-{i}", batch) for i in range(args.connections)]
    await asyncio.gather(*(c.open(host, port, path, args.token) for c in conns))
    meter = CpuMeter(list(args.server_pid or []))
    own = CpuMeter([os.getpid()])
    meter.start(), own.start()
    start = time.perf_counter()
    await asyncio.gather(*(c.stream(start + args.seconds) for c in conns))
    replies = await asyncio.wait_for(asyncio.gather(*(c.result for c in conns)), 120)
    elapsed = time.perf_counter() - start
    server_cpu = meter.stop() if meter.pids else None
    generator_cpu = own.stop()
    for c in conns:
        c.client.close()
    errors = [r["error"] for r in replies if r.get("error")]
    stored = sum(r.get("result") or 0 for r in replies)
    sent = sum(c.items for c in conns) * args.batch
    return {
        "scenario": "upload",
        "protocol": args.protocol,
        "connections": args.connections,
        "batch": args.batch,
        "seconds": round(elapsed, 2),
        "items_per_s": round(stored / args.batch / elapsed, 1),
        "events_per_s": round(stored / elapsed, 1),
        "events_sent": sent,
        "events_stored": stored,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "server_cpu": server_cpu,
        "generator_cpu": generator_cpu,
    }


def _loop_runner(coro):
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8080/hub")
    p.add_argument("--token", default="")
    p.add_argument("--protocol", choices=PROTOCOLS, default="json")
    p.add_argument("--scenario", choices=("invoke", "upload"), default="invoke",
                   help="invoke: SendEventData invocations; upload: StreamEventData client-to-server streams")
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--inflight", type=int, default=50)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--warmup", type=float, default=1.0, help="seconds run before the measured window")
    p.add_argument("--rate", type=float, default=None, help="open loop: invocations/s in total (latency)")
    p.add_argument("--server-pid", type=int, action="append", help="report this process's CPU use (repeatable)")
    p.add_argument("--no-pin", action="store_true", help="do not pin the generator to BENCH_CLIENT_CPUS")
    return p


def main() -> None:
    args = parser().parse_args()
    if not args.no_pin:
        pin_self()
    result = _loop_runner(run(args))
    result["machine"] = machine()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
