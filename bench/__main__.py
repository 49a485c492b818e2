"""The benchmark suite: the hub against the floor of its own stack and against python-socketio,
side by side in one run on one machine. Each scenario prints one JSON line (its cases, medians,
ratios against the targets of issues 7 and 15, and the machine) on stdout; progress goes to stderr.

    python -m bench all --quick          # every scenario, small and short (a few minutes)
    python -m bench all                  # the full run (idle holds 19,000 connections for 5 minutes)
    python -m bench throughput|latency|floor|peer|idle|http [--quick] [options]
    python -m bench sqlite-floor|readback|streams [--quick]   # the stores (issue 15)
    python -m bench metrics [--quick]    # the hub with its metrics, scraped every second, vs --no-metrics (issue 16)
    python -m bench all --dry-run        # import everything, run nothing

throughput and http run the hub on memory, sqlite and redis (--stores) beside the floor; redis-server,
when installed, runs `appendfsync always` on the generator's core, its CPU reported as helper_cpu.
sqlite-floor: bench/sqlite_floor.py; readback: bench/readback.py; streams: bench/manystreams.py.

Servers run pinned to core 1 (`taskset -a -c 1`), the generator on core 0 (BENCH_SERVER_CPUS,
BENCH_CLIENT_CPUS). The machine is shared: cases alternate hub/floor and repeat, and figures are
medians. Rates per server CPU-second (`*_per_cpu_s`) divide out the share of its core the server
actually got, which is what stays comparable when other work runs on the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import asyncio
import importlib.util
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import httpx

from . import httpload, loadgen, manystreams, readback, servers, sqlite_floor

TARGETS = {
    "b1_vs_floor": 0.75,  # invocations/s, 1 event per invocation
    "b1_vs_peer": 3.0,
    "b100_vs_floor": 0.75,  # events/s
    "messagepack_vs_json": 1.0,
    "p99_vs_floor_max": 2.0,
    "rss_per_conn_vs_floor_max": 1.25,
    "http_vs_floor": 0.75,
}

# Issue 15: the durable default (sqlite) and redis beside memory and the floor, in the same run.
STORE_TARGETS = {
    "sqlite_vs_memory.b1": 0.8,
    "sqlite_vs_memory.b10": 0.6,
    "sqlite_vs_floor.b10": 0.9,
    "redis_vs_memory.b10": 0.5,
    "messagepack_vs_json.sqlite.b1": 1.1,
    "messagepack_vs_json.sqlite.b10": 1.1,
    "http.sqlite_vs_memory": 0.6,
}
DEFAULT_STORES = "memory,sqlite,redis"


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def emit(result: dict) -> None:
    result["machine"] = servers.machine()
    print(json.dumps(result), flush=True)


def _run_async(coro):
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return round(statistics.median(values), 3) if values else None


def _ratio(a, b) -> float | None:
    return round(a / b, 3) if a and b else None


# --- one case ----------------------------------------------------------------------------------------


def load_case(kind: str, protocol: str, batch: int, opts, *, rate: float | None = None, store: str = "memory") -> dict:
    """Start a fresh server of `kind`, run the generator against it in this process, stop it."""
    with servers.running(kind, store=store) as server, _scraping(server.url, getattr(opts, "scrape", None)):
        args = SimpleNamespace(
            url=f"{server.url}/hub", token=servers.TOKEN, protocol=protocol, connections=opts.connections,
            inflight=opts.inflight, batch=batch, seconds=opts.seconds, warmup=opts.warmup, rate=rate,
            server_pid=server.pids, helper_pid=server.helper_pids,
        )
        result = _run_async(loadgen.run(args))
    result["server"] = kind
    result["store"] = store if kind == "hub" else None
    cpu = result.get("server_cpu")
    result["invocations_per_cpu_s"] = round(result["invocations_per_s"] / cpu, 1) if cpu else None
    result["events_per_cpu_s"] = round(result["events_per_s"] / cpu, 1) if cpu else None
    brief = {k: result.get(k) for k in ("invocations_per_s", "events_per_s", "invocations_per_cpu_s", "p50_ms",
                                        "p99_ms", "p999_ms", "server_cpu", "helper_cpu", "errors")}
    log(f"  {kind:5} {protocol:11} batch={batch:<3} rate={rate or '-'} {store if kind == 'hub' else ''}: {brief}")
    if result.get("first_error"):
        log(f"    first error: {result['first_error']}")
    return result


@contextlib.contextmanager
def _scraping(url: str, every: float | None):
    """GET {url}/metrics every `every` seconds (as Prometheus would) while the block runs; None: not at all."""
    if not every:
        yield
        return
    stop = threading.Event()

    def scrape() -> None:
        with httpx.Client(timeout=5) as client:
            while not stop.wait(every):
                with contextlib.suppress(httpx.HTTPError):
                    client.get(f"{url}/metrics")

    thread = threading.Thread(target=scrape, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _summarise(runs: list[dict]) -> dict:
    keys = ("invocations_per_s", "events_per_s", "invocations_per_cpu_s", "events_per_cpu_s", "server_cpu",
            "generator_cpu", "helper_cpu", "p50_ms", "p99_ms", "p999_ms")
    out = {k: _median([r.get(k) for r in runs]) for k in keys}
    out["errors"] = sum(r["errors"] for r in runs)
    out["runs"] = len(runs)
    return out


def _matrix(cases: list[tuple], opts, rate_of=None) -> dict[str, dict]:
    """Run every case (kind, protocol, batch[, store]) `opts.repeat` times, alternating the order, and
    summarise each by medians. Named kind/protocol/b<batch>, plus /<store> for a hub not on memory."""
    runs: dict[str, list[dict]] = {}
    for rep in range(opts.repeat):
        order = cases if rep % 2 == 0 else list(reversed(cases))
        log(f"round {rep + 1}/{opts.repeat} (load {servers.machine()['load_1m']})")
        for kind, protocol, batch, *rest in order:
            store = rest[0] if rest else "memory"
            rate = rate_of(kind, protocol, batch) if rate_of else None
            name = f"{kind}/{protocol}/b{batch}" + (f"/{store}" if store != "memory" else "")
            runs.setdefault(name, []).append(load_case(kind, protocol, batch, opts, rate=rate, store=store))
    return {name: _summarise(r) for name, r in runs.items()}


# --- scenarios ---------------------------------------------------------------------------------------


def metrics_cost(opts) -> dict:
    """Issue 16: the hub counting its metrics, scraped every second, against the hub with --no-metrics
    (scraped too: a 404), same cases alternating in one run. JSON SendEventData on memory and sqlite."""
    opts.scrape = 1.0
    stores = [s for s in available_stores(opts.stores) if s in ("memory", "sqlite")]
    cases = [(kind, "json", batch, store) for store in stores for batch in opts.batches
             for kind in ("hub", "hub-no-metrics")]
    summary = _matrix(cases, opts)
    ratios = {}
    for name, case in summary.items():
        if name.startswith("hub/"):
            off = summary.get("hub-no-metrics/" + name.split("/", 1)[1])
            for per in ("invocations_per_s", "invocations_per_cpu_s"):
                ratios[f"metrics_vs_no_metrics.{name.split('/', 1)[1]}.{per}"] = _ratio(case[per], off and off[per])
    return {"scenario": "metrics", "connections": opts.connections, "inflight": opts.inflight, "seconds": opts.seconds,
            "scrape_every_s": opts.scrape, "cases": summary, "ratios": ratios, "targets": {"metrics_vs_no_metrics": 0.95}}


def available_stores(stores: list[str]) -> list[str]:
    """`stores` less redis when no redis-server is installed (said on stderr)."""
    if "redis" in stores and shutil.which("redis-server") is None:
        log("redis skipped: redis-server is not installed (apt-get install redis-server)")
        return [s for s in stores if s != "redis"]
    return stores


def store_ratios(summary: dict[str, dict]) -> dict[str, float | None]:
    """Issue 15's ratios (STORE_TARGETS), on raw events/s and per server CPU-second."""
    def case(protocol: str, batch: int, store: str = "memory") -> dict | None:
        return summary.get(f"hub/{protocol}/b{batch}" + (f"/{store}" if store != "memory" else ""))

    ratios = {}
    for per in ("events_per_s", "events_per_cpu_s"):
        def r(a, b, per=per):
            return _ratio(a and a[per], b and b[per])
        for batch in (1, 10):
            ratios[f"sqlite_vs_memory.b{batch}.{per}"] = r(case("json", batch, "sqlite"), case("json", batch))
            ratios[f"messagepack_vs_json.sqlite.b{batch}.{per}"] = r(case("messagepack", batch, "sqlite"),
                                                                     case("json", batch, "sqlite"))
        ratios[f"sqlite_vs_floor.b10.{per}"] = r(case("json", 10, "sqlite"), summary.get("floor/json/b10"))
        ratios[f"redis_vs_memory.b10.{per}"] = r(case("json", 10, "redis"), case("json", 10))
    return {k: v for k, v in ratios.items() if v is not None}


def throughput(opts, servers_wanted=("hub", "floor", "peer")) -> dict:
    if "peer" in servers_wanted and importlib.util.find_spec("socketio") is None:
        log("peer skipped: python-socketio is not installed (pip install -e '.[bench]')")
        servers_wanted = tuple(s for s in servers_wanted if s != "peer")
    stores = available_stores(opts.stores) if "hub" in servers_wanted else []
    cases = []
    for batch in opts.batches:
        if "hub" in servers_wanted:
            cases += [("hub", "json", batch), ("hub", "messagepack", batch)]
            if opts.baseline:
                cases += [("baseline", "json", batch), ("baseline", "messagepack", batch)]
        if "floor" in servers_wanted:
            cases.append(("floor", "json", batch))
        if "peer" in servers_wanted and batch == 1:
            cases.append(("peer", "socketio", batch))
        if "hub" in servers_wanted and batch in _store_batches(opts.batches):
            for store in stores:
                if store == "memory":
                    continue
                # MessagePack too on the default store (sqlite): issue 15 compares the two there.
                for protocol in ("json", "messagepack") if store == "sqlite" else ("json",):
                    cases.append(("hub", protocol, batch, store))
                    if opts.baseline:
                        cases.append(("baseline", protocol, batch, store))
    summary = _matrix(cases, opts)
    result = {"scenario": "throughput", "connections": opts.connections, "inflight": opts.inflight,
              "seconds": opts.seconds, "cases": summary}
    ratios = {}
    hub1, floor1, peer1 = summary.get("hub/json/b1"), summary.get("floor/json/b1"), summary.get("peer/socketio/b1")
    for per in ("invocations_per_s", "invocations_per_cpu_s"):
        if hub1 and floor1:
            ratios[f"b1_vs_floor.{per}"] = _ratio(hub1[per], floor1[per])
        if hub1 and peer1:
            ratios[f"b1_vs_peer.{per}"] = _ratio(hub1[per], peer1[per])
    big = max(opts.batches)
    hubb, floorb = summary.get(f"hub/json/b{big}"), summary.get(f"floor/json/b{big}")
    for per in ("events_per_s", "events_per_cpu_s"):
        if hubb and floorb:
            ratios[f"b{big}_vs_floor.{per}"] = _ratio(hubb[per], floorb[per])
        for batch in opts.batches:
            j, m = summary.get(f"hub/json/b{batch}"), summary.get(f"hub/messagepack/b{batch}")
            if j and m:
                ratios[f"messagepack_vs_json.b{batch}.{per}"] = _ratio(m[per], j[per])
    if opts.baseline:
        result["baseline"] = opts.baseline
        for name, case in summary.items():
            if name.startswith("baseline/"):
                hub = summary.get("hub/" + name.split("/", 1)[1])
                for per in ("invocations_per_s", "invocations_per_cpu_s"):
                    ratios[f"hub_vs_baseline.{name.split('/', 1)[1]}.{per}"] = _ratio(hub and hub[per], case[per])
    ratios.update(store_ratios(summary))
    result["ratios"] = ratios
    result["targets"] = {**TARGETS, **STORE_TARGETS}
    return result


def _store_batches(batches: list[int]) -> list[int]:
    """The batches the stores other than memory run at: 1 and 10 (issue 15's), else the smallest."""
    return [b for b in batches if b in (1, 10)] or [min(batches)]


def latency(opts, max_rate: float | None = None) -> dict:
    """p50/p99/p99.9 at half the hub's measured maximum rate (JSON, 1 event), hub and floor at the
    same rate, open loop."""
    if max_rate is None:
        log("latency: measuring the hub's maximum rate first")
        probe = SimpleNamespace(**{**vars(opts), "seconds": max(2.0, opts.seconds / 2)})
        max_rate = load_case("hub", "json", 1, probe)["invocations_per_s"]
    rate = round(max_rate / 2)
    summary = _matrix([("hub", "json", 1), ("floor", "json", 1)], opts, rate_of=lambda *_: rate)
    hub, floor = summary["hub/json/b1"], summary["floor/json/b1"]
    result = {
        "scenario": "latency", "rate": rate, "hub_max_rate": max_rate, "connections": opts.connections,
        "seconds": opts.seconds, "cases": summary,
        "ratios": {"p99_vs_floor": _ratio(hub["p99_ms"], floor["p99_ms"]),
                   "p999_vs_floor": _ratio(hub["p999_ms"], floor["p999_ms"])},
        "targets": {"p99_vs_floor_max": TARGETS["p99_vs_floor_max"]},
    }
    if "sqlite" in opts.stores:
        result |= sqlite_latency(opts)
    return result


def sqlite_latency(opts) -> dict:
    """Issue 15: p99 on sqlite at half sqlite's own maximum rate, beside memory at that same rate."""
    log("latency: measuring the hub's maximum rate on sqlite")
    probe = SimpleNamespace(**{**vars(opts), "seconds": max(2.0, opts.seconds / 2)})
    max_rate = load_case("hub", "json", 1, probe, store="sqlite")["invocations_per_s"]
    rate = round(max_rate / 2)
    cases = [("hub", "json", 1, "sqlite"), ("hub", "json", 1)]
    if opts.baseline:  # the checkout given, on sqlite at the same rate: before and after in one run
        cases.append(("baseline", "json", 1, "sqlite"))
    summary = _matrix(cases, opts, rate_of=lambda *_: rate)
    sqlite, memory = summary["hub/json/b1/sqlite"], summary["hub/json/b1"]
    ratios = {"p99_vs_memory": _ratio(sqlite["p99_ms"], memory["p99_ms"]),
              "p999_vs_memory": _ratio(sqlite["p999_ms"], memory["p999_ms"])}
    if opts.baseline:
        before = summary["baseline/json/b1/sqlite"]
        ratios |= {"baseline_p99_vs_memory": _ratio(before["p99_ms"], memory["p99_ms"]),
                   "baseline_p999_vs_memory": _ratio(before["p999_ms"], memory["p999_ms"])}
    return {"sqlite": {"rate": rate, "sqlite_max_rate": max_rate, "cases": summary, "ratios": ratios,
                       "targets": {"p99_vs_memory_max": 2.0}}}


def idle_case(kind: str, count: int, hold: float, processes: int, per_holder: int = 5000) -> dict:
    holders = max(1, math.ceil(count / per_holder))
    with servers.running(kind, processes=processes) as server:
        # Warm up (first-connection allocations), then take the baseline.
        _hold_processes(server, 20, 1, hold=0.5, sources_from=200)
        time.sleep(1.0)
        base_rss = server.rss()
        started = time.perf_counter()
        procs = _spawn_holders(server, count, holders, hold + 60)
        ready = [json.loads(p.stdout.readline() or "{}") for p in procs]
        opened = sum(r.get("open", 0) for r in ready)
        failed = sum(r.get("failed", 0) for r in ready)
        connect_s = round(time.perf_counter() - started, 1)
        time.sleep(2.0)  # settle
        rss = server.rss()
        meter = servers.CpuMeter(server.pids)
        meter.start()
        log(f"  {kind}: {opened} open ({failed} failed) in {connect_s}s; holding {hold:g}s")
        time.sleep(hold)
        idle_cpu = meter.stop()
        for p in procs:
            p.stdin.write("stop\n")
            p.stdin.flush()
        done = [json.loads(p.stdout.readline() or "{}") for p in procs]
        for p in procs:
            p.wait(30)
        alive = server.alive()
    still_open = sum(d.get("open", 0) for d in done)
    result = {
        "server": kind, "processes": processes, "requested": count, "opened": opened, "failed": failed,
        "still_open": still_open, "dropped": opened - still_open, "hold_s": hold, "connect_s": connect_s,
        "rss_base_mib": round(base_rss / 2**20, 1), "rss_mib": round(rss / 2**20, 1),
        "rss_per_conn_kib": round((rss - base_rss) / max(opened, 1) / 1024, 2),
        "idle_cpu": idle_cpu, "server_survived": alive,
    }
    first = next((r.get("first_failure") for r in ready if r.get("first_failure")), None)
    if first:
        result["first_failure"] = first
    closes = {}
    for d in done:
        for code, n in d.get("close_codes", {}).items():
            closes[code] = closes.get(code, 0) + n
    if closes:
        result["close_codes"] = closes
    log(f"  {kind}: {result}")
    return result


def _spawn_holders(server, count: int, holders: int, hold: float, sources_from: int = 2) -> list[subprocess.Popen]:
    procs = []
    for h in range(holders):
        n = count // holders + (1 if h < count % holders else 0)
        cmd = [sys.executable, "-m", "bench.idle", "--url", f"{server.url}/hub", "--token", servers.TOKEN,
               "--count", str(n), "--hold", str(hold), "--source", f"127.0.0.{sources_from + h}"]
        procs.append(subprocess.Popen(cmd, cwd=servers.ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
    return procs


def _hold_processes(server, count: int, holders: int, hold: float, sources_from: int) -> None:
    for p in _spawn_holders(server, count, holders, hold, sources_from):
        p.communicate(timeout=120)


def idle(opts) -> dict:
    cases = {}
    for kind in ("floor", "hub"):
        cases[kind] = idle_case(kind, opts.count, opts.hold, opts.server_processes)
    ratio = _ratio(cases["hub"]["rss_per_conn_kib"], cases["floor"]["rss_per_conn_kib"])
    return {"scenario": "idle", "count": opts.count, "hold_s": opts.hold, "server_processes": opts.server_processes,
            "cases": cases, "ratios": {"rss_per_conn_vs_floor": ratio},
            "targets": {"rss_per_conn_vs_floor_max": TARGETS["rss_per_conn_vs_floor_max"]}}


def http(opts) -> dict:
    runs: dict[str, list[dict]] = {}
    cases = [("hub", "memory"), ("floor", "memory")] + [("hub", s) for s in available_stores(opts.stores) if s != "memory"]
    if opts.baseline:
        cases.append(("baseline", "memory"))
    for rep in range(opts.repeat):
        for kind, store in (cases if rep % 2 == 0 else list(reversed(cases))):
            name = kind if store == "memory" else f"{kind}/{store}"
            with servers.running(kind, store=store) as server:
                args = SimpleNamespace(url=server.url, token=servers.TOKEN, connections=opts.connections,
                                       batch=opts.http_batch, seconds=opts.seconds, warmup=opts.warmup,
                                       server_pid=server.pids)
                r = _run_async(httpload.run(args))
            cpu = r.get("server_cpu")
            r["events_per_cpu_s"] = round(r["events_per_s"] / cpu, 1) if cpu else None
            log(f"  {name:12} ndjson batch={opts.http_batch}: {r}")
            runs.setdefault(name, []).append(r)
    summary = {}
    for kind, rs in runs.items():
        summary[kind] = {k: _median([r.get(k) for r in rs]) for k in
                         ("requests_per_s", "events_per_s", "events_per_cpu_s", "server_cpu", "p50_ms", "p99_ms")}
        summary[kind]["errors"] = sum(r["errors"] for r in rs)
    hub, floor = summary["hub"], summary["floor"]
    ratios = {"vs_floor.events_per_s": _ratio(hub["events_per_s"], floor["events_per_s"]),
              "vs_floor.events_per_cpu_s": _ratio(hub["events_per_cpu_s"], floor["events_per_cpu_s"])}
    if "baseline" in summary:
        for per in ("events_per_s", "events_per_cpu_s"):
            ratios[f"vs_baseline.{per}"] = _ratio(hub[per], summary["baseline"][per])
    for store in ("sqlite", "redis"):
        if f"hub/{store}" in summary:
            for per in ("events_per_s", "events_per_cpu_s"):
                ratios[f"{store}_vs_memory.{per}"] = _ratio(summary[f"hub/{store}"][per], hub[per])
    return {"scenario": "http", "format": "ndjson", "batch": opts.http_batch, "connections": opts.connections,
            "cases": summary,
            "ratios": ratios,
            "targets": {"http_vs_floor": TARGETS["http_vs_floor"],
                        "sqlite_vs_memory": STORE_TARGETS["http.sqlite_vs_memory"]}}


# --- command line ------------------------------------------------------------------------------------


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", choices=("all", "throughput", "latency", "floor", "peer", "idle", "http", "sqlite-floor",
                                        "readback", "streams", "metrics"))
    p.add_argument("--quick", action="store_true", help="small and short: a smoke run of the figures")
    p.add_argument("--dry-run", action="store_true", help="import everything and print the plan; run nothing")
    p.add_argument("--repeat", type=int, help="rounds per case (medians are reported)")
    p.add_argument("--seconds", type=float, help="measured seconds per case")
    p.add_argument("--warmup", type=float, help="seconds before the measured window")
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--inflight", type=int, default=50)
    p.add_argument("--batches", default=None, help="events per invocation, comma-separated (default 1,10,100)")
    p.add_argument("--count", type=int, help="idle connections (default 19000; --quick 1000)")
    p.add_argument("--hold", type=float, help="idle hold in seconds (default 300; --quick 10)")
    p.add_argument("--server-processes", type=int, default=1, help="idle: hub processes on one port (SO_REUSEPORT)")
    p.add_argument("--http-batch", type=int, default=1000, help="events per NDJSON request")
    p.add_argument("--events", type=int, help="readback: events stored in the stream read back (default 1000000; "
                   "--quick 20000)")
    p.add_argument("--stream-counts", default="20000,1000", help="streams: how many streams the writes spread "
                   "over, a case each (default 20000, twice the sqlite store's open-stream cache, and 1000)")
    p.add_argument("--page", type=int, default=readback.PAGE, help="readback: events a GET asks for (limit)")
    p.add_argument("--baseline", help="a checkout whose hub/ runs beside this one (cases 'baseline/...'), "
                   "e.g. `git worktree add /tmp/before HEAD~1` for before/after figures")
    p.add_argument("--stores", default=DEFAULT_STORES, help="hub stores, comma-separated (default "
                   f"{DEFAULT_STORES}; redis is skipped when redis-server is missing): throughput and http run "
                   "hub cases on each beside memory and the floor, and baseline ones with --baseline")
    opts = p.parse_args(argv)
    quick = opts.quick
    opts.repeat = opts.repeat or (1 if quick else 3)
    opts.seconds = opts.seconds or (2.0 if quick else 8.0)
    opts.warmup = opts.warmup if opts.warmup is not None else (0.5 if quick else 1.0)
    default_batches = "1,10" if opts.scenario == "metrics" else "1,10,100"
    opts.batches = [int(b) for b in (opts.batches or default_batches).split(",")]
    opts.count = opts.count or (1000 if quick else 19000)
    opts.events = opts.events or (20_000 if quick else 1_000_000)
    opts.stream_counts = [int(n) for n in opts.stream_counts.split(",")]
    opts.stores = [s.strip() for s in opts.stores.split(",") if s.strip()]
    opts.hold = opts.hold if opts.hold is not None else (10.0 if quick else 300.0)
    return opts


def main(argv=None) -> int:
    opts = parse(argv)
    if opts.dry_run:
        modules = {}
        for name in ("floor", "idle", "multihub", "peer", "wire", "sqlite_floor", "readback", "manystreams"):
            try:
                importlib.import_module(f"bench.{name}")
                modules[name] = "ok"
            except ImportError as exc:  # the peer needs the bench extra (python-socketio)
                modules[name] = f"missing: {exc}"
        emit({"scenario": "dry-run", "plan": opts.scenario, "options": vars(opts), "modules": modules})
        return 0
    servers.pin_self()
    if opts.baseline:
        os.environ["BENCH_BASELINE"] = os.path.abspath(opts.baseline)
    s = opts.scenario
    if s in ("all", "throughput"):
        result = throughput(opts)
        emit(result)
        max_rate = result["cases"].get("hub/json/b1", {}).get("invocations_per_s")
    else:
        max_rate = None
    if s == "floor":
        emit({**throughput(opts, ("floor",)), "scenario": "floor"})
    if s == "peer":
        emit({**throughput(SimpleNamespace(**{**vars(opts), "batches": [1]}), ("peer", "hub")), "scenario": "peer"})
    if s in ("all", "latency"):
        # Its own probe of the maximum, right before: the machine's load changes from minute to minute.
        emit({**latency(opts), "throughput_max_rate": max_rate})
    if s in ("all", "http"):
        emit(http(opts))
    if s in ("all", "sqlite-floor"):
        emit(sqlite_floor.measure(rounds=opts.repeat, seconds=1.0 if opts.quick else 3.0, log=log))
    if s in ("all", "readback"):
        emit(_run_async(readback.run(opts, log)))
    if s in ("all", "streams"):
        emit(_run_async(manystreams.run(opts, log)))
    if s == "metrics":
        emit(metrics_cost(opts))
    if s in ("all", "idle"):
        emit(idle(opts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
