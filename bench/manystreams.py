"""Writes spread over more streams than the sqlite store's bounded open-stream cache holds (10,000,
OpenStreamKeys in hub/streams/store/sqlite/streams_table.py), so that nearly every write goes to a
stream evicted from it; beside the same load on few enough streams to stay cached; then a sample of
streams checked over HTTP: counters and order right (issue 15).

    python -m bench streams                     # 20,000 streams vs 1,000, 3 rounds x 8 s
    python -m bench streams --quick             # 1 round x 2 s
    python -m bench streams --stream-counts 50000,1000

Each case: a fresh hub on a fresh sqlite file (pinned to its core); 4 connections x 50 SendEventData
invocations in flight (closed loop), JSON, 10 events an invocation. Stream k is written by connection
k mod 4 only, the streams of a connection in turn (a cycle longer than the cache: each write finds
its stream evicted, the least recently written first out), so one stream's writes arrive in order
on one connection. Before the measured window every stream is written once (it exists: the window
measures writes to known, evicted streams, not stream creation). The timestamps of a stream's events
count 0, 1, 2, ... from a base, so afterwards `GET .../streams/{s}` (events, first/last timestamp)
and `GET .../events/data` of a sample of streams show whether every acknowledged event is there, once,
in order.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time

import orjson

from . import servers, wire
from .httpraw import HttpConnection
from .servers import CpuMeter

TOPIC = "many"
BATCH = 10
CONNECTIONS = 4
INFLIGHT = 50
BASE_TIMESTAMP = 1_700_000_000_000_000_000
SAMPLE = 50  # streams checked over HTTP after each case


class SpreadConnection:
    """One connection writing to its share of the streams in turn; counts what each stream acked."""

    def __init__(self, stream_numbers: list[int]):
        self.streams = stream_numbers
        self.next = 0  # index into self.streams of the next write
        self.sent = {k: 0 for k in stream_numbers}  # writes sent per stream
        self.acked = {k: 0 for k in stream_numbers}
        self.pending: dict[int, int] = {}  # invocation id -> stream number
        self.counter = 0
        self.ok = self.errors = 0
        self.counting = False
        self.refill = True
        self.first_error: bytes | None = None
        self.client: wire.WsClient | None = None
        self._ready: asyncio.Future | None = None

    async def open(self, host: str, port: int, token: str) -> None:
        self._ready = asyncio.get_running_loop().create_future()
        self.client = await wire.ws_connect(host, port, f"/hub?access_token={token}", self._on_message)
        self.client.send(wire.handshake_frame("json"))
        await asyncio.wait_for(self._ready, 30)

    def _on_message(self, opcode: int, payload: bytes) -> None:
        if not self._ready.done():
            self._ready.set_result(None)
            return
        answers = wire.json_completions(payload)
        for iid, is_error in answers:
            stream = self.pending.pop(iid, None)
            if stream is None:
                continue
            if is_error:
                self.errors += 1
                self.first_error = self.first_error or payload[:300]
            else:
                self.acked[stream] += 1
                if self.counting:
                    self.ok += 1
        if self.refill and answers:
            self.send(len(answers))

    def send(self, count: int) -> None:
        frames = []
        for _ in range(count):
            stream = self.streams[self.next]
            self.next = (self.next + 1) % len(self.streams)
            n = self.sent[stream]
            self.sent[stream] = n + 1
            self.counter += 1
            self.pending[self.counter] = stream
            base = BASE_TIMESTAMP + n * BATCH
            events = [{"id": "Bench", "timestamp": base + j, "value": "x" * 16, "tags": {"k": "v"}} for j in range(BATCH)]
            frames.append(wire.client_frame(orjson.dumps({"type": 1, "invocationId": str(self.counter),
                                                          "target": "SendEventData",
                                                          "arguments": [TOPIC, f"m{stream}", events]}) + wire.RS))
        self.client.send(b"".join(frames))

    def cycles(self) -> int:
        """Full turns through this connection's streams acknowledged so far."""
        return min(self.acked.values())


async def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def case(streams: int, seconds: float) -> dict:
    with servers.running("hub", store="sqlite") as server:
        host, port = "127.0.0.1", server.port
        conns = [SpreadConnection(list(range(c, streams, CONNECTIONS))) for c in range(CONNECTIONS)]
        await asyncio.gather(*(c.open(host, port, servers.TOKEN) for c in conns))
        for c in conns:
            c.send(INFLIGHT)
        await _wait(lambda: all(c.cycles() >= 1 for c in conns), 600, "every stream written once")
        meter, own = CpuMeter(server.pids), CpuMeter([os.getpid()])
        acked_before = sum(sum(c.acked.values()) for c in conns)
        for c in conns:
            c.counting = True
        meter.start(), own.start()
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        for c in conns:
            c.counting = False
        elapsed = time.perf_counter() - started
        server_cpu, generator_cpu = meter.stop(), own.stop()
        for c in conns:
            c.refill = False
        await _wait(lambda: not any(c.pending for c in conns), 60, "the last Completions")
        ok = sum(c.ok for c in conns)
        writes_in_window = sum(sum(c.acked.values()) for c in conns) - acked_before
        for c in conns:
            c.client.close()
        checked = await verify(server.url, conns, streams)
    errors = sum(c.errors for c in conns)
    result = {"streams": streams, "seconds": round(elapsed, 2), "invocations_per_s": round(ok / elapsed, 1),
              "events_per_s": round(ok * BATCH / elapsed, 1), "server_cpu": server_cpu,
              "events_per_cpu_s": round(ok * BATCH / elapsed / server_cpu, 1) if server_cpu else None,
              "generator_cpu": generator_cpu, "errors": errors,
              "turns_per_stream_in_window": round(writes_in_window / streams, 2), **checked}
    first_error = next((c.first_error for c in conns if c.first_error), None)
    if first_error:
        result["first_error"] = first_error.decode(errors="replace")
    return result


async def verify(url: str, conns: list[SpreadConnection], streams: int) -> dict:
    """For SAMPLE streams spread over all of them: the stream's counters and its events, read back,
    are exactly the acknowledged writes in the order they were sent."""
    acked = {k: n for c in conns for k, n in c.acked.items()}
    sample = sorted({round(i * (streams - 1) / max(1, SAMPLE - 1)) for i in range(SAMPLE)})
    conn = await HttpConnection(url, servers.TOKEN).open()
    wrong = []
    try:
        for k in sample:
            expected = acked[k] * BATCH
            status, _, body = await conn.request("GET", f"/topics/{TOPIC}/streams/m{k}")
            info = orjson.loads(body) if status == 200 else {}
            counters_right = (info.get("events") == expected and info.get("firstTimestamp") == BASE_TIMESTAMP
                              and info.get("lastTimestamp") == BASE_TIMESTAMP + expected - 1)
            status, _, body = await conn.request("GET", f"/topics/{TOPIC}/streams/m{k}/events/data?limit=100000")
            stamps = [e["timestamp"] for e in orjson.loads(body)] if status == 200 else None
            order_right = stamps == list(range(BASE_TIMESTAMP, BASE_TIMESTAMP + expected))
            if not (counters_right and order_right):
                wrong.append({"stream": f"m{k}", "acked_events": expected, "info": info,
                              "read": len(stamps) if stamps is not None else status})
    finally:
        conn.close()
    return {"checked_streams": len(sample), "wrong_streams": len(wrong), "first_wrong": wrong[0] if wrong else None}


async def run(opts, log) -> dict:
    counts = opts.stream_counts
    runs: dict[int, list[dict]] = {}
    for rep in range(opts.repeat):
        for streams in counts if rep % 2 == 0 else list(reversed(counts)):
            r = await case(streams, opts.seconds)
            log(f"  streams={streams:<6}: {r}")
            runs.setdefault(streams, []).append(r)
    summary = {}
    for streams, rs in runs.items():
        summary[f"sqlite/{streams}"] = {k: _median([r[k] for r in rs]) for k in
                                        ("events_per_s", "events_per_cpu_s", "server_cpu", "turns_per_stream_in_window")}
        summary[f"sqlite/{streams}"] |= {"errors": sum(r["errors"] for r in rs),
                                         "wrong_streams": sum(r["wrong_streams"] for r in rs),
                                         "checked_streams": sum(r["checked_streams"] for r in rs), "runs": len(rs)}
    ratios = {}
    if len(counts) >= 2:
        most, fewest = f"sqlite/{max(counts)}", f"sqlite/{min(counts)}"
        for per in ("events_per_s", "events_per_cpu_s"):
            a, b = summary[most][per], summary[fewest][per]
            ratios[f"{max(counts)}_vs_{min(counts)}.{per}"] = round(a / b, 3) if a and b else None
    wrong = next((r["first_wrong"] for rs in runs.values() for r in rs if r["first_wrong"]), None)
    return {"scenario": "streams", "store": "sqlite", "connections": CONNECTIONS, "inflight": INFLIGHT, "batch": BATCH,
            "seconds": opts.seconds, "cases": summary, "ratios": ratios, "all_right": wrong is None and
            not any(s["errors"] for s in summary.values()), "first_wrong": wrong}


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None
