"""The store path alone: CPU per write of `append_events` on the memory and sqlite stores, driven
directly in one process (no SignalR, no HTTP), so that what a store's write costs can be told apart
from what the hub around it costs. 200 writers each await their write and send the next (4 streams),
as bench's 4 connections x 50 in flight; the process runs with the hub's collector settings
(hub/cli.py tune_gc) on uvloop, pinned to the server's core.

    python -m bench.store_path                         # 1 and 10 events a write, 3 rounds x 2 s
    python -m bench.store_path --baseline /tmp/before  # the same for another tree, alternating

CPU µs per write is the process's CPU time (both threads, and the kernel's work for the fsyncs) over
the writes done in the measured window; the sqlite figure includes the awaiting Task's wake-up, which
a hub answering from a done-callback does not pay. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from .servers import SERVER_CPUS, machine

_CASE = r"""
import asyncio, gc, json, os, sys, tempfile, time
from hub.streams.models import Event
from hub.streams.store.memory import MemoryStore
from hub.streams.store.sqlite import SqliteStore

async def main(kind, batch, seconds, writers=200):
    folder = tempfile.mkdtemp(prefix="bench-store-path-")
    store = MemoryStore() if kind == "memory" else SqliteStore(os.path.join(folder, "hub.db"))
    await store.start()
    events = [Event("Bench", 1_700_000_000_000_000_000 + i, "x" * 16, {"k": "v"}) for i in range(batch)]
    done, stop = 0, False

    async def writer(i):
        nonlocal done
        while not stop:
            await store.append_events("bench", f"s{i % 4}", list(events))
            done += 1
            if done % 50 == 0:
                await asyncio.sleep(0)  # the memory store never suspends: let the clock run

    tasks = [asyncio.create_task(writer(i)) for i in range(writers)]
    await asyncio.sleep(0.5)
    n0, c0, t0 = done, time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    n1, c1, t1 = done, time.process_time(), time.perf_counter()
    stop = True
    await asyncio.gather(*tasks)
    await store.close()
    print(json.dumps({"cpu_us_per_write": (c1 - c0) / (n1 - n0) * 1e6, "writes_per_s": (n1 - n0) / (t1 - t0)}))

gc.collect(); gc.freeze(); gc.set_threshold(20_000, 10, 10)  # as hub/cli.py tune_gc
import uvloop
uvloop.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
"""


def run_case(tree: str, kind: str, batch: int, seconds: float) -> dict:
    out = subprocess.run(
        ["taskset", "-c", SERVER_CPUS, sys.executable, "-c", _CASE, kind, str(batch), str(seconds)],
        cwd=tree, env={**os.environ, "PYTHONPATH": tree}, capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(batches=(1, 10), rounds: int = 3, seconds: float = 2.0, baseline: str | None = None, log=None) -> dict:
    trees = {"hub": os.getcwd()} | ({"baseline": baseline} if baseline else {})
    cases = [(name, kind, b) for b in batches for name in trees for kind in ("memory", "sqlite")]
    runs: dict[str, list[dict]] = {}
    for r in range(rounds):
        for name, kind, batch in cases if r % 2 == 0 else list(reversed(cases)):
            result = run_case(trees[name], kind, batch, seconds)
            if log:
                log(f"  {name:8} {kind:6} batch={batch:<3}: {result}")
            runs.setdefault(f"{name}/{kind}/b{batch}", []).append(result)
    cases_out = {k: {m: round(statistics.median(r[m] for r in v), 3) for m in ("cpu_us_per_write", "writes_per_s")}
                 for k, v in runs.items()}
    ratios = {}
    for name in trees:
        for b in batches:
            memory, sqlite = cases_out[f"{name}/memory/b{b}"], cases_out[f"{name}/sqlite/b{b}"]
            ratios[f"{name}.sqlite_minus_memory_us.b{b}"] = round(sqlite["cpu_us_per_write"] - memory["cpu_us_per_write"], 3)
    return {"scenario": "store_path", "rounds": rounds, "seconds": seconds, "cases": cases_out, "ratios": ratios}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", default="1,10")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--baseline", help="another checkout's root, measured alternately in the same run")
    args = p.parse_args()
    result = measure([int(b) for b in args.batches.split(",")], args.rounds, args.seconds, args.baseline,
                     log=lambda line: print(line, file=sys.stderr, flush=True))
    result["machine"] = machine()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
