"""Ingestion over HTTP beside SignalR, same hub, same run: events/s for NDJSON batches of 1,000 events
posted on keep-alive connections in parallel (plain and gzip, and a JSON array for reference), and the
same 1,000-event batches as SendEventData invocations (bench/loadgen.py).

    python -m bench.ingest                        # 3 rounds x 8 s a case, memory store
    python -m bench.ingest --store sqlite --quick # one short round against the sqlite store

The hub runs pinned to one core, the generator on the other (bench/servers.py). Cases alternate
within each round and figures are medians over the rounds. Bodies are encoded (and gzipped) once,
before the clock starts: the figures are the hub's cost, not the generator's. Prints one JSON line
a case on stderr as it goes and a summary JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import statistics
import sys
import time
from types import SimpleNamespace
from urllib.parse import urlsplit

import orjson

from . import loadgen, servers, wire
from .httpload import HttpClient
from .servers import CpuMeter, machine, pin_self

CASES = ("http-ndjson", "http-ndjson-gzip", "http-json", "signalr-json-inflight1", "signalr-json-inflight4")


def bodies(batch: int) -> dict[str, tuple[bytes, dict[str, str]]]:
    events = wire.events(batch)
    ndjson = b"".join(orjson.dumps(e) + b"\n" for e in events)
    return {
        "http-ndjson": (ndjson, {"Content-Type": "application/x-ndjson"}),
        "http-ndjson-gzip": (gzip.compress(ndjson, 6), {"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}),
        "http-json": (orjson.dumps(events), {"Content-Type": "application/json"}),
    }


def request(host: str, path: str, token: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Authorization: Bearer {token}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def http_case(url: str, token: str, body: bytes, headers: dict[str, str], args, server_pids: list[int]) -> dict:
    """Closed loop: each connection posts the next batch when the previous one is answered."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    stats = {"ok": 0, "errors": 0, "latencies": [], "counting": False}
    loop = asyncio.get_running_loop()
    clients = []
    for i in range(args.connections):
        raw = request(f"{host}:{port}", f"/topics/bench/streams/http{i}/events/data", token, body, headers)
        _, client = await loop.create_connection(lambda r=raw: HttpClient(r, stats), host, port)
        clients.append(client)
    for c in clients:
        c.fire()
    await asyncio.sleep(args.warmup)
    meter = CpuMeter(server_pids)
    stats["counting"] = True
    meter.start()
    start = time.perf_counter()
    await asyncio.sleep(args.seconds)
    stats["counting"] = False
    elapsed = time.perf_counter() - start
    server_cpu = meter.stop()
    for c in clients:
        c.running = False
    await asyncio.wait([c.idle for c in clients], timeout=10)
    for c in clients:
        c.transport.close()
    lat = sorted(stats["latencies"])
    return {
        "requests_per_s": round(stats["ok"] / elapsed, 1),
        "events_per_s": round(stats["ok"] * args.batch / elapsed, 1),
        "errors": stats["errors"],
        "p50_ms": round(lat[len(lat) // 2] * 1000, 2) if lat else None,
        "p99_ms": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000, 2) if lat else None,
        "server_cpu": server_cpu,
        "body_bytes": len(body),
    }


async def signalr_case(url: str, token: str, inflight: int, args, server_pids: list[int]) -> dict:
    run_args = SimpleNamespace(url=f"{url}/hub", token=token, protocol="json", connections=args.connections,
                               inflight=inflight, batch=args.batch, seconds=args.seconds, warmup=args.warmup,
                               rate=None, server_pid=server_pids)
    r = await loadgen.run(run_args)
    return {"requests_per_s": r["invocations_per_s"], "events_per_s": r["events_per_s"], "errors": r["errors"],
            "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"], "server_cpu": r["server_cpu"]}


async def round_(server, args, order: tuple[str, ...]) -> dict[str, dict]:
    encoded = bodies(args.batch)
    results = {}
    for case in order:
        if case.startswith("http"):
            body, headers = encoded[case]
            r = await http_case(server.url, servers.TOKEN, body, headers, args, server.pids)
        else:
            r = await signalr_case(server.url, servers.TOKEN, int(case.rsplit("inflight", 1)[1]), args, server.pids)
        cpu = r.get("server_cpu")
        r["events_per_cpu_s"] = round(r["events_per_s"] / cpu, 1) if cpu else None
        print(json.dumps({"case": case, **r}), file=sys.stderr, flush=True)
        results[case] = r
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", default="memory", help="the hub's --store (memory, sqlite)")
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="one round of 2 s cases")
    args = p.parse_args(argv)
    if args.quick:
        args.repeat, args.seconds, args.warmup = 1, 2.0, 0.5
    pin_self()
    runs: dict[str, list[dict]] = {c: [] for c in CASES}
    extra = ["--store", args.store, "--log-level", "warning"]
    with servers.running("hub", extra=extra) as server:
        for rep in range(args.repeat):
            order = CASES if rep % 2 == 0 else tuple(reversed(CASES))
            for case, r in asyncio.run(round_(server, args, order)).items():
                runs[case].append(r)
    summary = {
        case: {k: statistics.median(r[k] for r in rs if r.get(k) is not None)
               for k in ("events_per_s", "requests_per_s", "events_per_cpu_s", "server_cpu", "p50_ms", "p99_ms")}
        | {"errors": sum(r["errors"] for r in rs)}
        for case, rs in runs.items()
    }
    print(json.dumps({"scenario": "ingest", "store": args.store, "batch": args.batch, "connections": args.connections,
                      "seconds": args.seconds, "repeat": args.repeat, "cases": summary, "machine": machine(),
                      "server_cpus": os.environ.get("BENCH_SERVER_CPUS", servers.SERVER_CPUS)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
