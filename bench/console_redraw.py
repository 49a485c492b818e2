"""The console chart's redraw cost: the longest task on Chromium's performance timeline while the
chart holds 50,000 points a series (3 series) and redraws them, live at 1,000 rows/s and forced.

    python -m bench.console_redraw [--live-seconds 20] [--forced 20] [--rounds 3]

A hub on the memory store gets 70,000 rows of 3 parameters (the last 70 s at 1 ms apart), then a
writer keeps sending 1,000 rows/s while headless Chromium (bench/console_redraw.mjs) opens the
stream's page with the 5-minute window: the chart reads the rows over HTTP, keeps the newest 50,000
a series, and redraws every 250 ms as rows arrive. Reported per round: the load's long tasks,
every long task (>= 50 ms) during the live phase, and the duration of forced full redraws (paused,
one after another). Prints one JSON line; figures are written down in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-console-token"
TOPIC, STREAM = "bench", "car"
NAMES = ("Speed", "Rpm", "Temp")


def _rows(first: int, count: int, t0: int) -> dict:
    rows = range(first, first + count)
    return {
        "timestamps": [t0 + i * 1_000_000 for i in rows],
        "numericValues": {
            "Speed": [150 + 60 * math.sin(i / 700) for i in rows],
            "Rpm": [9000 + 2500 * math.cos(i / 450) for i in rows],
            "Temp": [85 + (i % 3000) / 300 for i in rows],
        },
    }


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_round(args: argparse.Namespace) -> dict:
    port = _port()
    hub = subprocess.Popen(
        [sys.executable, "-m", "hub", "serve", "--port", str(port), "--store", "memory", "--token", TOKEN,
         "--data-dir", f"/tmp/bench-console-{port}", "--log-level", "warning"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    try:
        for _ in range(100):
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        t0 = time.time_ns() - 70_000 * 1_000_000
        for first in range(0, 70_000, 10_000):
            client.post(f"/topics/{TOPIC}/streams/{STREAM}/parameters/data", json=_rows(first, 10_000, t0)).raise_for_status()
        running = threading.Event()
        running.set()

        def write() -> None:  # 1,000 rows/s, 100 every 100 ms, timestamped from now on
            row, started = 70_000, time.monotonic()
            base = time.time_ns() - row * 1_000_000
            while running.is_set():
                client.post(f"/topics/{TOPIC}/streams/{STREAM}/parameters/data", json=_rows(row, 100, base))
                row += 100
                time.sleep(max(0.0, (row - 70_000) / 1000 - (time.monotonic() - started)))

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        spec = {"pageUrl": f"{url}/", "token": TOKEN, "topic": TOPIC, "stream": STREAM,
                "liveSeconds": args.live_seconds, "forcedRedraws": args.forced}
        out = subprocess.run([shutil.which("node") or "node", str(ROOT / "bench" / "console_redraw.mjs"), json.dumps(spec)],
                             capture_output=True, text=True, timeout=300)
        running.clear()
        writer.join(5)
        if out.returncode != 0:
            raise SystemExit(f"console_redraw.mjs failed: {out.stderr[-2000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        client.close()
        hub.terminate()
        hub.wait(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--live-seconds", type=int, default=20)
    parser.add_argument("--forced", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = []
    for n in range(args.rounds):
        print(f"round {n + 1}/{args.rounds}", file=sys.stderr)
        rounds.append(one_round(args))
    live_max = [max(r["live"]["longTasksMs"], default=0) for r in rounds]
    forced = [ms for r in rounds for ms in r["forced"]["redrawMs"]]
    print(json.dumps({
        "rounds": rounds,
        "summary": {
            "points_per_series": [r["held"]["points"] for r in rounds],
            "live_longest_task_ms_per_round": live_max,
            "live_long_tasks_per_round": [len(r["live"]["longTasksMs"]) for r in rounds],
            "forced_redraw_ms_median": statistics.median(forced),
            "forced_redraw_ms_max": max(forced),
            "load_ms_median": statistics.median(r["load"]["ms"] for r in rounds),
            "target_ms": 200,
        },
        "machine": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()},
    }))


if __name__ == "__main__":
    main()
