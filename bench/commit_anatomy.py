"""What one commit of the sqlite store writes and costs, taken apart (issue 15, sixth round).

On the store's own file (hub/streams/store/sqlite/schema.py: its tables, pragmas and autocheckpoint)
and with its own statements (the multi-row block INSERT of data_writes.py, `touch_many` of
streams_table.py), transactions of the shape the group commit makes under bench's load are committed
in one process: `--streams` streams, one block each of `--items` events (6: what a commit holds at
half the store's maximum rate, about 25 writes over 4 streams; 50: at saturation, 200 writes).

    python -m bench.commit_anatomy                 # 6 and 50 items a block, 4 streams, 2,000 commits a case
    python -m bench.commit_anatomy --quick

For each case:
- `frames_per_commit`: the WAL frames (4 KB pages) a commit appends, by the b-tree they belong to
  (SQLite's `dbstat`; page 1 is the file's header, rewritten whenever the file grows);
- `cpu_us_per_commit` with synchronous=FULL (the store's) and NORMAL (no fsync at the commit), so
  their difference is what the fsync costs in CPU;
- `file_floor_us`: the same number of frame-sized `pwrite`s and one `fdatasync` on a plain file, and
  the `fdatasync` alone with nothing to write: what the kernel charges whatever SQLite does.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import sqlite3
import struct
import tempfile
import time

from hub.streams.store.sqlite.data_writes import _INSERTS
from hub.streams.store.sqlite.schema import close_connections, open_connections
from hub.streams.store.sqlite.streams_table import ensure_stream, touch_many

from .servers import machine

_WAL_HEADER, _FRAME_HEADER = 32, 24


def _block(items: int) -> bytes:
    event = {"id": "Bench", "timestamp": 1_700_000_000_000_000_000, "value": "x" * 16, "tags": {"k": "v"}}
    return json.dumps([event] * items, separators=(",", ":")).encode()


def _commits(write: sqlite3.Connection, keys: list[int], items: int, count: int, first: int = 0) -> None:
    data = _block(items)
    for i in range(first, first + count):
        write.execute("BEGIN IMMEDIATE")
        _INSERTS[0].run(write, [(key, items, i, i, data) for key in keys])
        touch_many(write, [(key, [items, 0, i, i, float(i)]) for key in keys])
        write.execute("COMMIT")


def _wal_frames(path: str) -> tuple[list[int], int]:
    """(page number of each frame, commits) in the WAL file at `path`."""
    wal = open(path, "rb").read()
    page_size = struct.unpack(">I", wal[8:12])[0]
    pages, commits, offset = [], 0, _WAL_HEADER
    while offset + _FRAME_HEADER + page_size <= len(wal):
        page, size_after_commit = struct.unpack(">II", wal[offset : offset + 8])
        pages.append(page)
        commits += size_after_commit != 0
        offset += _FRAME_HEADER + page_size
    return pages, commits


def frames_per_commit(folder: str, items: int, streams: int, commits: int) -> dict:
    """The WAL frames `commits` transactions append, by owner, a commit."""
    path = os.path.join(folder, "frames.db")
    write, read = open_connections(path, "FULL")
    try:
        write.execute("PRAGMA wal_autocheckpoint=0")  # keep every frame of the measured commits
        keys = [ensure_stream(write, "Bench", f"s{i}") for i in range(streams)]
        _commits(write, keys, items, 3 * commits)  # indexes and tables past their first pages
        write.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _commits(write, keys, items, commits, first=3 * commits)
        shutil.copy(path + "-wal", path + ".measured-wal")
        owners = {}
        try:
            owners = {p: f"{name} {kind}" for name, p, kind in read.execute("SELECT name, pageno, pagetype FROM dbstat")}
        except sqlite3.Error:  # an SQLite built without dbstat: frames are counted, not attributed
            pass
        owners[1] = "page 1 (header and sqlite_schema)"
    finally:
        close_connections(write, read)
    pages, counted = _wal_frames(path + ".measured-wal")
    by_owner = collections.Counter(owners.get(p, "unknown") for p in pages)
    return {"total": round(len(pages) / counted, 2),
            **{owner: round(n / counted, 2) for owner, n in by_owner.most_common()}}


def cpu_per_commit(folder: str, items: int, streams: int, commits: int, synchronous: str) -> float:
    path = os.path.join(folder, f"cpu-{synchronous}.db")
    write, read = open_connections(path, synchronous)
    try:
        keys = [ensure_stream(write, "Bench", f"s{i}") for i in range(streams)]
        _commits(write, keys, items, commits // 4)  # warm up: pages allocated, statements cached
        c0 = time.process_time()
        _commits(write, keys, items, commits, first=commits)
        return round((time.process_time() - c0) / commits * 1e6, 1)
    finally:
        close_connections(write, read)


def file_floor(folder: str, frames: int, page_size: int = 4096, rounds: int = 2000) -> dict:
    """CPU µs of `frames` frame-sized pwrites + one fdatasync on a plain file, and of the fdatasync
    alone, each over `rounds` rounds (the file is written once first: no block is allocated then)."""
    path = os.path.join(folder, "plain")
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        span = page_size * 4000
        os.pwrite(fd, bytes(span + page_size * 2), 0)
        os.fsync(fd)
        frame = b"x" * (page_size + _FRAME_HEADER)
        out, offset = {}, 0
        for label, n in (("frames_and_fdatasync", frames), ("fdatasync_alone", 0)):
            c0 = time.process_time()
            for _ in range(rounds):
                for _ in range(n):
                    os.pwrite(fd, frame, offset % span)
                    offset += len(frame)
                os.fdatasync(fd)
            out[label] = round((time.process_time() - c0) / rounds * 1e6, 1)
        return out
    finally:
        os.close(fd)


def measure(items=(6, 50), streams: int = 4, commits: int = 2000) -> dict:
    cases = {}
    for n in items:
        folder = tempfile.mkdtemp(prefix="bench-commit-anatomy-")
        try:
            frames = frames_per_commit(folder, n, streams, max(commits // 20, 10))
            cases[f"items{n}"] = {
                "frames_per_commit": frames,
                "cpu_us_per_commit": {level: cpu_per_commit(folder, n, streams, commits, level) for level in ("FULL", "NORMAL")},
                "file_floor_us": file_floor(folder, round(frames["total"]), rounds=commits),
            }
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return {"scenario": "commit_anatomy", "streams": streams, "commits": commits, "cases": cases}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", default="6,50", help="events a block (a stream's share of one commit)")
    p.add_argument("--streams", type=int, default=4)
    p.add_argument("--commits", type=int, default=2000)
    p.add_argument("--quick", action="store_true", help="200 commits a case")
    args = p.parse_args()
    result = measure(tuple(int(n) for n in args.items.split(",")), args.streams, 200 if args.quick else args.commits)
    result["machine"] = machine()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
