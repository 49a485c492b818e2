"""SendEventData events/s on each store backend: memory, sqlite (the durable default), redis.

    python -m bench.backends                       # 3 rounds x 8 s each, 4 connections x 50 in flight, batches of 10
    python -m bench.backends --rounds 1 --seconds 3 --backends memory,sqlite

Same load, same run: each round starts a fresh hub per backend (pinned to core 1 as in bench/servers.py)
and runs bench/loadgen.py against it; rounds alternate the backends so drift on a shared machine hits
them alike; figures are medians. redis: bench/servers.py's redis-server (`appendfsync always`:
acknowledged = on disk, like sqlite's FULL). `python -m bench throughput` runs these cases too.
Prints one JSON line per case on stderr and the summary JSON on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys

from . import servers


def run_case(store: str, args: argparse.Namespace) -> dict:
    with servers.running("hub", extra=["--store", store, "--log-level", "warning"]) as hub:
        out = subprocess.run(
            [sys.executable, "-m", "bench.loadgen", "--url", f"{hub.url}/hub", "--token", servers.TOKEN,
             "--connections", str(args.connections), "--inflight", str(args.inflight), "--batch", str(args.batch),
             "--seconds", str(args.seconds), *sum((["--server-pid", str(p)] for p in hub.pids), [])],
            cwd=servers.ROOT, capture_output=True, text=True, check=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", default="memory,sqlite,redis")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=8)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--inflight", type=int, default=50)
    p.add_argument("--batch", type=int, default=10)
    args = p.parse_args()
    backends = args.backends.split(",")
    rates: dict[str, list[float]] = {b: [] for b in backends}
    cpu: dict[str, list[float]] = {b: [] for b in backends}
    with contextlib.ExitStack() as stack:
        urls = {"memory": "memory", "sqlite": "sqlite"}
        if "redis" in backends:
            urls["redis"], _ = stack.enter_context(servers.redis_server())
        for round_ in range(args.rounds):
            order = backends if round_ % 2 == 0 else list(reversed(backends))
            for backend in order:
                result = run_case(urls[backend], args)
                print(json.dumps({"backend": backend, "round": round_, **result}), file=sys.stderr, flush=True)
                rates[backend].append(result["events_per_s"])
                if result.get("server_cpu") is not None:
                    cpu[backend].append(result["server_cpu"])
    medians = {b: round(statistics.median(r)) for b, r in rates.items()}
    summary = {
        "scenario": "backends",
        "load": {k: getattr(args, k) for k in ("connections", "inflight", "batch", "seconds", "rounds")},
        "events_per_s": medians,
        "runs": rates,
        "server_cpu": {b: round(statistics.median(c), 2) for b, c in cpu.items() if c},
        "vs_memory": {b: round(medians[b] / medians["memory"], 2) for b in backends if "memory" in medians},
        "machine": servers.machine(),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
