"""The SQLite floor: the least a durable store of this layout can cost. In one Python process, on a
fresh file in WAL mode with synchronous=FULL, the rows of the hub's `events` table (a row per event:
stream, timestamp, id, value, tags as JSON) are made from the benchmark's events and committed with a
bare `executemany` + COMMIT: no futures, no threads, no savepoints, no counters, no collector.

    python -m bench.sqlite_floor                     # 1 and 10 events per write, 200 writes a commit, 3 rounds x 3 s
    python -m bench.sqlite_floor --quick

A "write" is one invocation's events; `--writes-per-commit` of them (200: 4 connections x 50 in
flight, what one group commit sees under bench's load) go into one transaction, spread over
`--streams` streams. Three variants a round:
- `per_commit`: one executemany of every row of the transaction;
- `per_write`: one executemany a write (what a store that inserts each write alone cannot beat);
- `multi_row`: every row of the transaction in multi-row `INSERT … VALUES (…),(…)` statements of at
  most 256 rows (as the store wrote them up to schema version 2): the cheapest of the three per row;
- `blocks`: the layout of schema version 3 (hub/streams/store/sqlite/blocks.py): a row per stream
  and transaction, its events as one JSON array of `{"id", "timestamp", "value", "tags"}` objects with
  the lowest and highest timestamp, in one multi-row INSERT. The floor of the store as it is now.
Reports CPU µs per event (process CPU time, so sqlite's own work and the fsync's system time count)
and events/s (wall), medians over the rounds; the ceiling a store implies at a given hub cost is
1 / (hub CPU µs/event + floor µs/event). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sqlite3
import statistics
import tempfile
import time

import orjson

from . import wire
from .servers import machine

# The hub's events table (hub/streams/store/sqlite/schema.py, schema version 2), copied so the floor
# stays the same while the store's layout changes.
EVENTS_TABLE = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    stream INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    id TEXT NOT NULL,
    value TEXT,
    tags TEXT
);
CREATE INDEX events_by_stream ON events (stream);
"""
INSERT = "INSERT INTO events (stream, timestamp, id, value, tags) VALUES (?, ?, ?, ?, ?)"
# The hub's event blocks (schema version 3), copied likewise.
BLOCKS_TABLE = """
CREATE TABLE event_blocks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    stream INTEGER NOT NULL,
    first INTEGER NOT NULL DEFAULT 0,
    count INTEGER NOT NULL,
    low INTEGER NOT NULL,
    high INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX event_blocks_by_stream ON event_blocks (stream);
"""
MAX_ROWS_PER_INSERT = 256


def insert_rows(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    """`rows` in multi-row INSERTs of at most MAX_ROWS_PER_INSERT rows (one statement text per size)."""
    for start in range(0, len(rows), MAX_ROWS_PER_INSERT):
        chunk = rows[start : start + MAX_ROWS_PER_INSERT]
        sql = "INSERT INTO events (stream, timestamp, id, value, tags) VALUES " + ",".join(["(?, ?, ?, ?, ?)"] * len(chunk))
        conn.execute(sql, [value for row in chunk for value in row])


def open_file(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(EVENTS_TABLE + BLOCKS_TABLE)
    return conn


def insert_blocks(conn: sqlite3.Connection, writes: list[tuple[int, list[dict]]]) -> None:
    """A transaction's writes as the store keeps them: a block per stream, one INSERT."""
    by_stream: dict[int, list[dict]] = {}
    for stream, events in writes:
        by_stream.setdefault(stream, []).extend(events)
    values = []
    for stream, items in by_stream.items():
        stamps = [item["timestamp"] for item in items]
        values += (stream, len(items), min(stamps), max(stamps), orjson.dumps(items))
    conn.execute("INSERT INTO event_blocks (stream, count, low, high, data) VALUES "
                 + ", ".join(["(?, ?, ?, ?, ?)"] * len(by_stream)), values)


def rows_of(stream: int, events: list[dict]) -> list[tuple]:
    """The hub's rows for one write: what any store of this layout must build per event."""
    dumps = orjson.dumps
    return [(stream, e["timestamp"], e["id"], e["value"], dumps(e["tags"]).decode() if e["tags"] else None)
            for e in events]


def run(variant: str, batch: int, writes_per_commit: int, streams: int, seconds: float, folder: str) -> dict:
    """Commit transactions of `writes_per_commit` writes of `batch` events for `seconds`."""
    path = os.path.join(folder, f"floor-{variant}-{batch}-{time.monotonic_ns()}.db")
    conn = open_file(path)
    events = wire.events(batch)
    writes = [(w % streams, events) for w in range(writes_per_commit)]
    commits = 0
    gc.disable()  # a floor pays no collector: its rows make no cycles
    try:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        deadline = wall0 + seconds
        while time.perf_counter() < deadline:
            conn.execute("BEGIN")
            if variant == "per_commit":
                conn.executemany(INSERT, [row for stream, evs in writes for row in rows_of(stream, evs)])
            elif variant == "multi_row":
                insert_rows(conn, [row for stream, evs in writes for row in rows_of(stream, evs)])
            elif variant == "blocks":
                insert_blocks(conn, writes)
            else:
                for stream, evs in writes:
                    conn.executemany(INSERT, rows_of(stream, evs))
            conn.execute("COMMIT")
            commits += 1
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    finally:
        gc.enable()
    stored = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    stored += conn.execute("SELECT coalesce(sum(count), 0) FROM event_blocks").fetchone()[0]
    conn.close()
    n = commits * writes_per_commit * batch
    if stored != n:  # a floor that dropped rows would look cheap
        raise RuntimeError(f"sqlite floor {variant}: {stored} rows stored of {n}")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    return {"variant": variant, "batch": batch, "commits": commits, "events": n,
            "events_per_s": round(n / wall, 1), "cpu_us_per_event": round(cpu / n * 1e6, 3),
            "cpu": round(cpu / wall, 3), "commit_ms": round(wall / commits * 1000, 3)}


def measure(batches=(1, 10), rounds: int = 3, seconds: float = 3.0, writes_per_commit: int = 200,
            streams: int = 4, log=None) -> dict:
    """Every (variant, batch) case `rounds` times, alternating the order; medians."""
    cases = [(v, b) for b in batches for v in ("blocks", "multi_row", "per_commit", "per_write")]
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-sqlite-floor-") as folder:
        for r in range(rounds):
            for variant, batch in cases if r % 2 == 0 else list(reversed(cases)):
                result = run(variant, batch, writes_per_commit, streams, seconds, folder)
                if log:
                    log(f"  sqlite floor {variant:10} batch={batch:<3}: {result}")
                runs.setdefault(f"{variant}/b{batch}", []).append(result)
    summary = {name: {k: round(statistics.median(r[k] for r in rs), 3)
                      for k in ("events_per_s", "cpu_us_per_event", "cpu", "commit_ms")} | {"runs": len(rs)}
               for name, rs in runs.items()}
    return {"scenario": "sqlite_floor", "writes_per_commit": writes_per_commit, "streams": streams,
            "seconds": seconds, "rounds": rounds, "synchronous": "FULL", "journal_mode": "WAL",
            "sqlite": sqlite3.sqlite_version, "cases": summary}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", default="1,10")
    p.add_argument("--rounds", type=int)
    p.add_argument("--seconds", type=float)
    p.add_argument("--writes-per-commit", type=int, default=200)
    p.add_argument("--streams", type=int, default=4)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    result = measure([int(b) for b in args.batches.split(",")], args.rounds or (1 if args.quick else 3),
                     args.seconds or (1.0 if args.quick else 3.0), args.writes_per_commit, args.streams)
    result["machine"] = machine()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
