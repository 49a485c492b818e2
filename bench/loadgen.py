"""SendEventData load generator: N WebSocket connections, each keeping W invocations in flight.

    python -m bench.loadgen --url http://127.0.0.1:8080/hub --token T --connections 4 --inflight 50 \
        --batch 10 --seconds 10

Frames are pre-encoded and replies parsed minimally (only the invocation id and whether an error came
back), so the generator costs little next to the server. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from urllib.parse import urlsplit, urlunsplit

import websockets

RS = "\x1e"
_ID = re.compile(r'"invocationId":"(\d+)"')


def _ws_url(url: str, token: str) -> str:
    parts = urlsplit(url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path, f"access_token={token}", ""))


def _events(batch: int, base: int) -> list[dict]:
    return [{"id": "Bench", "timestamp": base + i, "value": "x" * 16, "tags": {"k": "v"}} for i in range(batch)]


async def connection(url: str, inflight: int, batch: int, deadline: float, stats: dict, index: int) -> None:
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        await ws.send(json.dumps({"protocol": "json", "version": 1}) + RS)
        reply = await ws.recv()
        if reply != "{}" + RS:
            raise RuntimeError(f"handshake failed: {reply!r}")
        body = json.dumps(["bench", f"s{index}", _events(batch, 1_700_000_000_000_000_000)])
        prefix = '{"type":1,"target":"SendEventData","arguments":' + body + ',"invocationId":"'
        sent_at: dict[str, float] = {}
        counter = 0
        latencies = stats["latencies"]

        async def send_one() -> None:
            nonlocal counter
            counter += 1
            iid = str(counter)
            sent_at[iid] = time.perf_counter()
            await ws.send(prefix + iid + '"}' + RS)

        for _ in range(inflight):
            await send_one()
        while sent_at:
            frame = await ws.recv()
            now = time.perf_counter()
            for record in frame.split(RS):
                if '"type":3' not in record:
                    continue
                match = _ID.search(record)
                if match is None:
                    continue
                start = sent_at.pop(match.group(1), None)
                if start is None:
                    continue
                if '"error"' in record:
                    stats["errors"] += 1
                else:
                    stats["ok"] += 1
                    latencies.append(now - start)
                if now < deadline:
                    await send_one()


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def run(args: argparse.Namespace) -> dict:
    url = _ws_url(args.url, args.token)
    stats = {"ok": 0, "errors": 0, "latencies": []}
    start = time.perf_counter()
    deadline = start + args.seconds
    await asyncio.gather(
        *(connection(url, args.inflight, args.batch, deadline, stats, i) for i in range(args.connections))
    )
    elapsed = time.perf_counter() - start
    lat = stats["latencies"]
    return {
        "scenario": "send_event_data",
        "protocol": "json",
        "connections": args.connections,
        "inflight": args.inflight,
        "batch": args.batch,
        "seconds": round(elapsed, 2),
        "invocations_per_s": round(stats["ok"] / elapsed, 1),
        "events_per_s": round(stats["ok"] * args.batch / elapsed, 1),
        "errors": stats["errors"],
        "p50_ms": round(percentile(lat, 50) * 1000, 3),
        "p99_ms": round(percentile(lat, 99) * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8080/hub")
    parser.add_argument("--token", required=True)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--inflight", type=int, default=50)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10)
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
