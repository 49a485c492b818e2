"""Reader hub fan-out: one writer, N subscribers of one stream (issue 8).

    python -m bench.fanout                                   # 1,000 subscribers, rates 100..4000 events/s
    python -m bench.fanout --subscribers 1000 --rates 250,500,1000 --seconds 8 --batch 10 --store memory

The hub runs pinned to core 1 (bench/servers.py), this generator on core 0. N raw WebSocket
connections (bench/wire.py, skipNegotiation, JSON) each call SubscribeToEvent(topic, stream, "*");
one more connection writes SendEventData batches at a fixed offered rate (open loop: a batch every
batch/rate seconds, whatever the Completions do), each event's timestamp being the time it was sent.

Per rate: delivered events/s = EventDataReceived records counted on every subscriber in the window
(counted in the raw frames, not parsed); delivery latency = receipt time - the event's timestamp, on
`--probes` subscribers spread over the set that parse every record (p50/p99/max). A level where a
subscriber was closed (fell behind: --max-send-queue) or less than 95 % of the offered deliveries
arrived is past saturation and ends the run. Hub CPU (share of its core) and RSS are read from /proc,
and so is the generator's own CPU: near 1.0 means the generator, not the hub, was the limit.
Prints one JSON line per level and a summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import orjson

from . import servers, wire
from .servers import CpuMeter, machine, pin_self

TOPIC, STREAM = "fanout", "s1"
EVENT_TARGET = b'"EventDataReceived"'


class Subscriber:
    """One subscriber connection: counts EventDataReceived records; a probe also measures latency."""

    def __init__(self, probe: bool):
        self.probe = probe
        self.count = 0
        self.latencies: list[int] = []  # ns, while `measuring`
        self.measuring = False
        self.closed_by_server: str | None = None
        self.subscribed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.handshaken = False
        self.client: wire.WsClient | None = None

    def on_message(self, opcode: int, payload: bytes) -> None:
        if not self.handshaken:
            self.handshaken = True
            payload = payload.split(wire.RS, 1)[1] if wire.RS in payload else b""
            if not payload:
                return
        if not self.subscribed.done() and b'"invocationId":"sub"' in payload:
            self.subscribed.set_result(None)
        n = payload.count(EVENT_TARGET)
        self.count += n
        if b'"type":7' in payload:
            for record in payload.split(wire.RS):
                if record.startswith(b"{") and b'"type":7' in record:
                    self.closed_by_server = orjson.loads(record).get("error") or "closed"
        if self.probe and n and self.measuring:
            now = time.time_ns()
            for record in payload.split(wire.RS):
                if EVENT_TARGET in record:
                    self.latencies.append(now - orjson.loads(record)["arguments"][0]["timestamp"])


async def connect_subscribers(host: str, port: int, count: int, probes: int) -> list[Subscriber]:
    path = f"/reader?access_token={servers.TOKEN}"
    subscribe = wire.client_frame(orjson.dumps({"type": 1, "invocationId": "sub", "target": "SubscribeToEvent",
                                                "arguments": [TOPIC, STREAM, "*"]}) + wire.RS)
    every = max(1, count // max(1, probes))
    subs = [Subscriber(probe=(i % every == 0)) for i in range(count)]
    gate = asyncio.Semaphore(100)

    async def open_one(sub: Subscriber) -> None:
        async with gate:
            sub.client = await wire.ws_connect(host, port, path, sub.on_message)
            sub.client.send(wire.handshake_frame("json") + subscribe)
            await asyncio.wait_for(sub.subscribed, 30)

    await asyncio.gather(*(open_one(s) for s in subs))
    return subs


class Writer:
    """One connection sending SendEventData batches at an offered rate; Completions counted."""

    def __init__(self) -> None:
        self.completed = 0
        self.errors = 0
        self.handshaken = asyncio.get_running_loop().create_future()
        self.client: wire.WsClient | None = None

    def on_message(self, opcode: int, payload: bytes) -> None:
        if not self.handshaken.done():
            self.handshaken.set_result(None)
        for _, error in wire.json_completions(payload):
            self.completed += 1
            self.errors += error

    async def open(self, host: str, port: int) -> None:
        self.client = await wire.ws_connect(host, port, f"/hub?access_token={servers.TOKEN}", self.on_message)
        self.client.send(wire.handshake_frame("json"))
        await asyncio.wait_for(self.handshaken, 10)

    def send(self, iid: int, batch: int) -> None:
        base = time.time_ns()
        events = [{"id": "Bench", "timestamp": base + i, "value": "x" * 16, "tags": {"k": "v"}} for i in range(batch)]
        body = orjson.dumps({"type": 1, "invocationId": str(iid), "target": "SendEventData",
                             "arguments": [TOPIC, STREAM, events]})
        assert self.client is not None
        self.client.send(wire.client_frame(body + wire.RS))


async def run_level(writer: Writer, subs: list[Subscriber], rate: int, batch: int, seconds: float, warmup: float,
                    hub: servers.Server, next_iid: int) -> tuple[dict, int]:
    interval = batch / rate
    loop = asyncio.get_running_loop()
    hub_cpu, my_cpu = CpuMeter(hub.pids), CpuMeter([os.getpid()])
    start = loop.time()
    sent_batches = 0
    measuring = False
    counts0 = 0
    t0 = 0.0
    end = start + warmup + seconds
    while True:
        now = loop.time()
        if not measuring and now >= start + warmup:
            measuring = True
            for s in subs:
                s.latencies.clear()
                s.measuring = True
            counts0 = sum(s.count for s in subs)
            t0 = time.perf_counter()
            hub_cpu.start()
            my_cpu.start()
        if now >= end:
            break
        due = int((now - start) / interval) + 1
        while sent_batches < due:
            writer.send(next_iid, batch)
            next_iid += 1
            sent_batches += 1
        await asyncio.sleep(max(0.0, start + sent_batches * interval - loop.time()))
    elapsed = time.perf_counter() - t0
    cpu_hub, cpu_me = hub_cpu.stop(), my_cpu.stop()
    delivered = sum(s.count for s in subs) - counts0
    for s in subs:
        s.measuring = False
    await asyncio.sleep(0.5)  # what was in flight lands (not counted in the rate)
    latencies = sorted(x for s in subs for x in s.latencies)
    closed = [s.closed_by_server for s in subs if s.closed_by_server]

    def pct(p: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] / 1e6, 1) if latencies else None

    offered = rate * len(subs)
    result = {
        "rate": rate,
        "subscribers": len(subs),
        "offered_deliveries_per_s": offered,
        "delivered_per_s": round(delivered / elapsed),
        "delivered_share": round(delivered / elapsed / offered, 3),
        "latency_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0), "samples": len(latencies)},
        "closed_subscribers": len(closed),
        "first_close": closed[0] if closed else None,
        "writer_errors": writer.errors,
        "hub_cpu": cpu_hub,
        # what stays comparable on a shared machine: the hub got `hub_cpu` of its core
        "delivered_per_hub_cpu_s": round(delivered / elapsed / cpu_hub) if cpu_hub else None,
        "generator_cpu": cpu_me,
        "hub_rss_mb": round(hub.rss() / 2**20, 1),
    }
    return result, next_iid


async def main(args: argparse.Namespace) -> None:
    extra = ["--max-send-queue", str(args.max_send_queue), "--log-level", "warning"]
    if args.store == "memory":
        extra += ["--retention", "10000"]  # the store itself must not grow during the run
    with servers.running("hub", store=args.store, extra=extra) as hub:
        host, port = "127.0.0.1", hub.port
        started = time.perf_counter()
        subs = await connect_subscribers(host, port, args.subscribers, args.probes)
        connect_s = round(time.perf_counter() - started, 1)
        print(f"{len(subs)} subscribers in {connect_s} s; hub RSS {hub.rss() / 2**20:.0f} MB", file=sys.stderr)
        writer = Writer()
        await writer.open(host, port)
        ping = wire.ping_frame("json")

        async def keepalive() -> None:  # as @microsoft/signalr: the hub drops a client silent for 30 s
            while True:
                await asyncio.sleep(10)
                for client in [writer.client, *(s.client for s in subs)]:
                    if client is not None and not client.closed.done():
                        client.send(ping)

        pinging = asyncio.ensure_future(keepalive())
        results = []
        iid = 0
        for rate in args.rates:
            result, iid = await run_level(writer, subs, rate, args.batch, args.seconds, args.warmup, hub, iid)
            results.append(result)
            print(json.dumps(result), flush=True)
            if result["closed_subscribers"] or result["delivered_share"] < 0.95:
                break
        sustained = [r for r in results if not r["closed_subscribers"] and r["delivered_share"] >= 0.95]
        best = max(sustained, key=lambda r: r["delivered_per_s"]) if sustained else None
        print(json.dumps({
            "summary": True,
            "subscribers": args.subscribers,
            "batch": args.batch,
            "store": args.store,
            "best_sustained": best and {k: best[k] for k in ("rate", "delivered_per_s", "latency_ms", "hub_cpu",
                                                             "delivered_per_hub_cpu_s", "generator_cpu")},
            "machine": machine(),
        }), flush=True)
        pinging.cancel()
        for s in subs:
            if s.client is not None:
                s.client.close()


def cli() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--subscribers", type=int, default=1000)
    p.add_argument("--rates", type=lambda t: [int(x) for x in t.split(",")], default=[100, 250, 500, 1000, 2000, 4000],
                   help="offered write rates, events/s, tried in order until one is not sustained")
    p.add_argument("--batch", type=int, default=10, help="events per SendEventData")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--probes", type=int, default=50, help="subscribers that parse every record for latency")
    p.add_argument("--store", default="memory")
    p.add_argument("--max-send-queue", type=int, default=10_000)
    args = p.parse_args()
    pin_self()
    try:
        import uvloop

        uvloop.run(main(args))
    except ImportError:  # pragma: no cover
        asyncio.run(main(args))


if __name__ == "__main__":
    cli()
