"""HTTP load generator: C keep-alive connections, each posting pre-encoded NDJSON batches one after
the other (closed loop), replies parsed minimally (status line and Content-Length).

    python -m bench.httpload --url http://127.0.0.1:8080 --token T --connections 4 --batch 1000 --seconds 10

Prints one JSON line. `python -m bench http` runs it against the hub and the floor's handler.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import time
from urllib.parse import urlsplit

import orjson

from . import wire
from .servers import CpuMeter, machine, pin_self

_CONTENT_LENGTH = re.compile(rb"content-length:\s*(\d+)")


def ndjson_body(batch: int) -> bytes:
    return b"".join(orjson.dumps(e) + b"\n" for e in wire.events(batch))


def request_bytes(host: str, path: str, token: str, body: bytes, content_type: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class HttpClient(asyncio.Protocol):
    def __init__(self, request: bytes, stats: dict):
        self.request, self.stats = request, stats
        self.buf = bytearray()
        self.sent_at = 0.0
        self.running = True
        self.transport: asyncio.Transport | None = None
        self.idle = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def fire(self) -> None:
        self.sent_at = time.perf_counter()
        self.transport.write(self.request)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).lower()
            found = _CONTENT_LENGTH.search(head)
            length = int(found.group(1)) if found else 0
            if len(self.buf) < end + 4 + length:
                return
            status = int(head[9:12])
            del self.buf[: end + 4 + length]
            stats = self.stats
            if stats["counting"]:
                if status in (200, 202):
                    stats["ok"] += 1
                    stats["latencies"].append(time.perf_counter() - self.sent_at)
                else:
                    stats["errors"] += 1
                    stats.setdefault("first_error", status)
            if self.running:
                self.fire()
            elif not self.idle.done():
                self.idle.set_result(None)

    def connection_lost(self, exc) -> None:
        if not self.idle.done():
            self.idle.set_result(None)


async def run(args: argparse.Namespace) -> dict:
    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    body = ndjson_body(args.batch)
    stats = {"ok": 0, "errors": 0, "latencies": [], "counting": False}
    loop = asyncio.get_running_loop()
    clients = []
    for i in range(args.connections):
        request = request_bytes(f"{host}:{port}", f"/topics/bench/streams/s{i}/events/data", args.token, body,
                                "application/x-ndjson")
        _, client = await loop.create_connection(lambda r=request: HttpClient(r, stats), host, port)
        clients.append(client)
    for c in clients:
        c.fire()
    await asyncio.sleep(args.warmup)
    meter, own = CpuMeter(list(args.server_pid or [])), CpuMeter([os.getpid()])
    stats["counting"] = True
    meter.start(), own.start()
    start = time.perf_counter()
    await asyncio.sleep(args.seconds)
    stats["counting"] = False
    elapsed = time.perf_counter() - start
    server_cpu = meter.stop() if meter.pids else None
    generator_cpu = own.stop()
    for c in clients:
        c.running = False
    await asyncio.wait([c.idle for c in clients], timeout=10)
    for c in clients:
        c.transport.close()
    lat = sorted(stats["latencies"])
    pct = lambda p: round(lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000, 3) if lat else None
    result = {
        "scenario": "http",
        "format": "ndjson",
        "connections": args.connections,
        "batch": args.batch,
        "seconds": round(elapsed, 2),
        "requests_per_s": round(stats["ok"] / elapsed, 1),
        "events_per_s": round(stats["ok"] * args.batch / elapsed, 1),
        "errors": stats["errors"],
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "server_cpu": server_cpu,
        "generator_cpu": generator_cpu,
    }
    if "first_error" in stats:
        result["first_error_status"] = stats["first_error"]
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--token", default="")
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--server-pid", type=int, action="append")
    return p


def main() -> None:
    args = parser().parse_args()
    pin_self()
    import uvloop

    result = uvloop.run(run(args))
    result["machine"] = machine()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
