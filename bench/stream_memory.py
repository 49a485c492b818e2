"""RSS per stream ever written, on the sqlite store (issue 12, item 6): one event to each of N
distinct streams, the process's resident memory before and after. Not a timed test.

    python -m bench.stream_memory [--streams 200000] [--topics 1]

Run against another checkout (e.g. before a change) with that checkout first on the path:
    PYTHONPATH=/path/to/checkout python bench/stream_memory.py
Prints one JSON line. Writes go in pipelined groups (group commit) with synchronous=NORMAL so the
run takes seconds, not an fsync per stream; the caches measured do not depend on either.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
import time


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def run(streams: int, topics: int, group: int) -> dict[str, object]:
    from hub.streams.models import Event
    from hub.streams.store import Retention, SqliteStore

    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(os.path.join(tmp, "hub.db"), synchronous="NORMAL", retention=Retention(max_count=1000))
        await store.start()
        try:
            # warm up: the code paths, the statement cache and the first pages of the file
            await asyncio.gather(*(store.append_events("warm", f"w{i}", [Event("e", i)]) for i in range(group)))
            gc.collect()
            before = rss_bytes()
            started = time.perf_counter()
            for start in range(0, streams, group):
                await asyncio.gather(
                    *(store.append_events(f"t{i % topics}", f"s{i}", [Event("e", i)])
                      for i in range(start, min(start + group, streams)))
                )
            elapsed = time.perf_counter() - started
            gc.collect()
            after = rss_bytes()
            sizes = store.cache_sizes() if hasattr(store, "cache_sizes") else None
        finally:
            await store.close()
    return {
        "scenario": "stream_memory",
        "store": "sqlite",
        "streams": streams,
        "topics": topics,
        "rss_before_mb": round(before / 2**20, 1),
        "rss_after_mb": round(after / 2**20, 1),
        "rss_per_stream_bytes": round((after - before) / streams, 1),
        "cache_sizes": sizes,
        "seconds": round(elapsed, 1),
        "python": sys.version.split()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=200_000)
    parser.add_argument("--topics", type=int, default=1)
    parser.add_argument("--group", type=int, default=2000, help="writes in flight at once")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.streams, args.topics, args.group))))


if __name__ == "__main__":
    main()
