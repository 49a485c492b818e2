"""Reading a long stream back from the sqlite store (issue 15): over HTTP in pages of 100,000, against
a floor that SELECTs the same rows from the same file and encodes the same JSON bytes in one process,
and as ReadEventData over SignalR (follow=false, one StreamItem per event), in one run.

    python -m bench readback                 # 1,000,000 events, 3 rounds
    python -m bench readback --quick         # 20,000 events, 1 round
    python -m bench readback --events 200000 --repeat 5

One hub on a fresh sqlite file (pinned to its core as every server in bench/), filled once over HTTP
NDJSON (1,000-event bodies, 4 connections, one stream), then each round, alternating the order:
- `http`: `GET /topics/bench/streams/r0/events/data?limit=100000`, following X-Next-Cursor to the end,
  on one keep-alive connection;
- `floor`: this process, moved onto the server's core for the case (collector off), reads the hub's file read-only:
  `SELECT ... WHERE stream = ? AND seq > ? ORDER BY seq LIMIT 100001` a page, rows made into the
  same dicts, `orjson.dumps` of the page (its first page is checked byte for byte against the hub's);
- `signalr`: a StreamInvocation of ReadEventData(topic, stream, null, false) over a raw JSON
  WebSocket, counting StreamItems to the Completion.
events/s (wall) and per server CPU-second (the floor's own CPU time) are reported, medians.
The floor reads the store's blocks (schema version 3: a row per stream and transaction, the events
as one JSON array of the objects the API answers with); a store with another layout needs its own floor.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sqlite3
import statistics
import time
from pathlib import Path

import orjson

from . import servers, wire
from .httpraw import HttpConnection
from .servers import CpuMeter

TOPIC, STREAM = "bench", "r0"
PAGE = 100_000  # the hub's MAX_PAGE
FILL_BATCH = 1000
FILL_CONNECTIONS = 4


BASE_TIMESTAMP = 1_700_000_000_000_000_000


def ndjson(offset: int, count: int) -> bytes:
    """`count` events whose timestamps go on from event number `offset` of the stream."""
    return b"".join(orjson.dumps(e) + b"\n" for e in wire.events(count, BASE_TIMESTAMP + offset))


async def fill(url: str, token: str, total: int, topic: str = TOPIC, stream: str = STREAM) -> dict:
    """Store `total` events in one stream over HTTP NDJSON, FILL_CONNECTIONS requests at a time."""
    path = f"/topics/{topic}/streams/{stream}/events/data"
    offsets = list(range(0, total, FILL_BATCH))
    stored = 0
    started = time.perf_counter()

    async def worker(k: int) -> None:
        nonlocal stored
        conn = await HttpConnection(url, token).open()
        try:
            for offset in offsets[k::FILL_CONNECTIONS]:
                status, _, body = await conn.request("POST", path, ndjson(offset, min(FILL_BATCH, total - offset)))
                if status not in (200, 202):
                    raise RuntimeError(f"fill: {status} {body[:200]!r}")
                stored += orjson.loads(body)["successful_rows"]
        finally:
            conn.close()

    await asyncio.gather(*(worker(k) for k in range(FILL_CONNECTIONS)))
    elapsed = time.perf_counter() - started
    return {"events": stored, "seconds": round(elapsed, 2), "events_per_s": round(stored / elapsed, 1)}


async def read_http(url: str, token: str, server_pids: list[int], limit: int = PAGE) -> dict:
    conn = await HttpConnection(url, token).open()
    meter = CpuMeter(server_pids)
    events = pages = 0
    first = b""
    after = None
    meter.start()
    started = time.perf_counter()
    try:
        while True:
            query = f"limit={limit}" + (f"&after={after}" if after else "")
            status, headers, body = await conn.request("GET", f"/topics/{TOPIC}/streams/{STREAM}/events/data?{query}")
            if status != 200:
                raise RuntimeError(f"read: {status} {body[:200]!r}")
            first = first or body
            events += body.count(b'"id":')  # every event has one; cheaper than parsing on the generator
            pages += 1
            after = headers.get("x-next-cursor")
            if not after:
                break
    finally:
        conn.close()
    elapsed = time.perf_counter() - started
    return _rates("http", events, pages, elapsed, meter.stop(), first_page=first)


def read_floor(db_path: str, limit: int = PAGE) -> dict:
    """The floor, on the server's core: SELECT the stream's blocks in order, decode their events
    (stored as the very objects the API answers with), dump them a page of `limit` at a time."""
    own = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(c) for c in servers.SERVER_CPUS.split(",")})
    gc.disable()  # a floor pays no collector: its rows make no cycles (the hub raises its threshold instead)
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        loads, dumps = orjson.loads, orjson.dumps
        events = pages = 0
        first_page = b""
        wall0, cpu0 = time.perf_counter(), time.process_time()
        key = conn.execute("SELECT key FROM streams WHERE topic = ? AND stream_id = ?", (TOPIC, STREAM)).fetchone()[0]
        pending: list = []  # the events of the page being made
        for _, first, data in conn.execute("SELECT seq, first, data FROM event_blocks WHERE stream = ? ORDER BY seq", (key,)):
            pending += loads(data)[first:]  # the store's blocks (hub/streams/store/sqlite/blocks.py)
            while len(pending) >= limit:
                page, pending = pending[:limit], pending[limit:]
                body = dumps(page)  # stored as the objects the API answers with
                first_page = first_page or body
                events += len(page)
                pages += 1
        if pending or not pages:
            body = dumps(pending)
            first_page = first_page or body
            events += len(pending)
            pages += 1
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        conn.close()
    finally:
        gc.enable()
        os.sched_setaffinity(0, own)
    return _rates("floor", events, pages, wall, round(cpu / wall, 3), first_page=first_page)


async def read_signalr(url: str, token: str, server_pids: list[int]) -> dict:
    """ReadEventData(topic, stream, null, false): one StreamItem per stored event, then a Completion."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()
    ready: asyncio.Future = loop.create_future()
    counted = {"items": 0}

    def on_message(opcode: int, payload: bytes) -> None:
        if not ready.done():
            ready.set_result(payload)
            return
        counted["items"] += payload.count(b'"type":2')
        if b'"type":3' in payload and not done.done():
            done.set_result(payload[payload.index(b'"type":3') - 1:][:300])

    host, port = url.split("//", 1)[1].split(":")
    client = await wire.ws_connect(host, int(port), f"/hub?access_token={token}", on_message)
    client.send(wire.handshake_frame("json"))
    await asyncio.wait_for(ready, 30)
    meter = CpuMeter(server_pids)
    meter.start()
    started = time.perf_counter()
    client.send(wire.client_frame(orjson.dumps({"type": 4, "invocationId": "1", "target": "ReadEventData",
                                                "arguments": [TOPIC, STREAM, None, False]}) + wire.RS))
    completion = await asyncio.wait_for(done, 600)
    elapsed = time.perf_counter() - started
    client.close()
    if b'"error"' in completion:
        raise RuntimeError(f"ReadEventData: {completion!r}")
    return _rates("signalr", counted["items"], None, elapsed, meter.stop())


def _rates(case: str, events: int, pages: int | None, elapsed: float, cpu: float | None, first_page: bytes = b"") -> dict:
    out = {"case": case, "events": events, "pages": pages, "seconds": round(elapsed, 3),
           "events_per_s": round(events / elapsed, 1), "server_cpu": cpu,
           "events_per_cpu_s": round(events / elapsed / cpu, 1) if cpu else None}
    if first_page:
        out["first_page"] = first_page
    return out


async def run(opts, log) -> dict:
    total = opts.events
    runs: dict[str, list[dict]] = {}
    first_pages: dict[str, bytes] = {}
    with servers.running("hub", store="sqlite") as server:
        db = str(Path(server.log).parent / "hub.db")
        log(f"readback: filling one stream with {total:,} events over HTTP NDJSON")
        filled = await fill(server.url, servers.TOKEN, total)
        log(f"  filled: {filled}")
        if filled["events"] != total:
            raise RuntimeError(f"fill stored {filled['events']} of {total}")
        cases = ["http", "floor", "signalr"]
        for rep in range(opts.repeat):
            for case in cases if rep % 2 == 0 else list(reversed(cases)):
                if case == "http":
                    r = await read_http(server.url, servers.TOKEN, server.pids, opts.page)
                elif case == "floor":
                    r = read_floor(db, opts.page)
                else:
                    r = await read_signalr(server.url, servers.TOKEN, server.pids)
                if "first_page" in r:
                    first_pages.setdefault(case, r.pop("first_page"))
                if r["events"] != total:
                    raise RuntimeError(f"readback {case}: {r['events']} of {total} events")
                log(f"  {case:8}: {r}")
                runs.setdefault(case, []).append(r)
    summary = {case: {k: _median([r[k] for r in rs]) for k in ("events_per_s", "events_per_cpu_s", "seconds", "server_cpu")}
               | {"pages": rs[0]["pages"], "runs": len(rs)} for case, rs in runs.items()}
    http, floor, signalr = summary["http"], summary["floor"], summary["signalr"]
    ratios = {}
    for per in ("events_per_s", "events_per_cpu_s"):
        ratios[f"http_vs_floor.{per}"] = _ratio(http[per], floor[per])
        ratios[f"signalr_vs_floor.{per}"] = _ratio(signalr[per], floor[per])
    return {"scenario": "readback", "events": total, "page": opts.page, "store": "sqlite", "fill": filled,
            "first_page_equal": first_pages.get("http") == first_pages.get("floor"),
            "first_page_bytes": len(first_pages.get("http", b"")), "cases": summary, "ratios": ratios,
            "targets": {"http_vs_floor": 0.5}}


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


def _ratio(a, b) -> float | None:
    return round(a / b, 3) if a and b else None
