"""What the sqlite backend promises beyond the shared contract: durability and failure isolation."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from hub.streams.models import Event, ParameterData, ReadWindow, StreamProperties
from hub.streams.store import SqliteStore, StoreUnavailable
from hub.streams.store.retention import Retention
from hub.streams.store.sqlite import schema

T, S = "telemetry", "car-1"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = SqliteStore(str(tmp_path / "hub.db"))
    await store.start()
    yield store
    await store.close()


async def test_restart_recovers_everything(tmp_path: Path) -> None:
    path = str(tmp_path / "data" / "hub.db")  # the folder is created on start
    store = SqliteStore(path)
    await store.start()
    await store.put_properties(T, S, StreamProperties("lap", "/car", {"k": "v"}, ["p"], "2024-01-01T00:00:00Z"))
    await store.set_definitions(T, S, "events", [{"id": "crash", "level": "Critical"}])
    await store.set_definitions(T, S, "parameters", [{"id": "speed", "unit": "km/h"}])
    await store.append_events(T, S, [Event(f"e{i}", 100 - i, "v", {"i": str(i)}) for i in range(1500)])
    await store.append_parameter_data(T, S, ParameterData([1, 2], {"speed": [1.0, None]}, {"gear": [None, "2"]}))
    store.append_events(T, "closed", [Event("x", 1)])
    await store.close_stream(T, "closed")
    before_info = [s.to_json() for s in await store.list_streams(T)]
    before_defs = await store.get_stream(T, S)
    first_page = await store.read_events(T, S, ReadWindow(limit=1000))
    await store.close()

    reopened = SqliteStore(path)
    await reopened.start()
    try:
        assert [s.to_json() for s in await reopened.list_streams(T)] == before_info
        assert await reopened.get_stream(T, S) == before_defs
        assert [t.to_json() for t in await reopened.list_topics()] == [{"topic": T, "streams": 2}]
        rest = await reopened.read_events(T, S, ReadWindow(limit=1000, after=first_page.next_cursor))  # cursors survive
        assert [e.id for e in first_page.items + rest.items] == [f"e{i}" for i in range(1500)]
        assert rest.items[0] == Event("e1000", -900, "v", {"i": "1000"})
        [data] = (await reopened.read_parameter_data(T, S)).items
        assert data.to_json() == ParameterData([1, 2], {"speed": [1.0, None]}, {"gear": [None, "2"]}).to_json()
        await reopened.append_events(T, S, [Event("after-restart", 0)])  # and writing goes on
        assert (await reopened.get_stream(T, S)).events == 1501  # type: ignore[union-attr]
    finally:
        await reopened.close()


async def test_an_awaited_write_is_visible_from_a_fresh_connection(store: SqliteStore) -> None:
    await store.append_events(T, S, [Event("a", 1), Event("b", 2)])
    with sqlite3.connect(store.path) as conn:
        [(data,)] = conn.execute("SELECT data FROM event_blocks").fetchall()  # one write, one block
        assert [item["id"] for item in json.loads(data)] == ["a", "b"]
        assert conn.execute("SELECT events FROM streams").fetchone() == (2,)


async def test_a_failing_operation_fails_alone(store: SqliteStore) -> None:
    # Validation refuses lone surrogates; written directly, they cannot be encoded.
    good = store.append_events(T, S, [Event("before", 1)])
    bad = store.append_events(T, S, [Event("fine", 2), Event("\ud800", 3)])
    also_good = store.append_events(T, S, [Event("after", 4)])
    assert await good == 1
    with pytest.raises(UnicodeEncodeError):
        await bad
    assert await also_good == 1
    page = await store.read_events(T, S)
    assert [e.id for e in page.items] == ["before", "after"]  # all or nothing for the bad batch
    assert (await store.get_stream(T, S)).events == 2  # type: ignore[union-attr]


async def test_a_failed_commit_fails_the_whole_transaction(store: SqliteStore, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    real_commit = store.writer.commit

    def failing_commit(conn: sqlite3.Connection) -> None:
        monkeypatch.setattr(store.writer, "commit", real_commit)  # only once
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store.writer, "commit", failing_commit)
    writes = [store.append_events(T, S, [Event(f"e{i}", i)]) for i in range(5)]
    results = await asyncio.gather(*writes, return_exceptions=True)
    assert all(isinstance(r, StoreUnavailable) for r in results)
    assert await store.get_stream(T, S) is None  # rolled back: nothing acknowledged, nothing stored
    assert await store.append_events(T, S, [Event("later", 1)]) == 1
    # the stream the rolled-back batch had created is made again, not taken from memory
    assert (await store.get_stream(T, S)).events == 1  # type: ignore[union-attr]
    assert [e.id for e in (await store.read_events(T, S)).items] == ["later"]


async def test_a_failed_first_write_to_a_stream_leaves_no_stream_behind(store: SqliteStore) -> None:
    with pytest.raises(UnicodeEncodeError):
        await store.append_events(T, "new", [Event("\ud800", 1)])  # creates the stream, then fails
    assert await store.get_stream(T, "new") is None
    assert await store.append_events(T, "new", [Event("ok", 2)]) == 1
    assert (await store.get_stream(T, "new")).events == 1  # type: ignore[union-attr]
    assert [e.id for e in (await store.read_events(T, "new")).items] == ["ok"]


async def test_a_write_after_close_stream_reopens_it_and_says_so(store: SqliteStore) -> None:
    await store.append_events(T, S, [Event("a", 1)])
    await store.close_stream(T, S)
    subscription = store.changes.subscribe()
    try:
        await store.append_events(T, S, [Event("b", 2)])
        assert (await store.get_stream(T, S)).status == "open"  # type: ignore[union-attr]
        first = await asyncio.wait_for(subscription.__anext__(), 5)
        second = await asyncio.wait_for(subscription.__anext__(), 5)
        assert (first.kind, first.info.status) == ("stream", "open")  # type: ignore[union-attr]  # reopened, said first
        assert (second.kind, [e.id for e in second.events]) == ("events", ["b"])
    finally:
        subscription.close()


async def test_writes_fail_after_close(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "hub.db"))
    with pytest.raises(StoreUnavailable):
        await store.append_events(T, S, [])  # not started
    await store.start()
    pending = store.append_events(T, S, [Event("a", 1)])
    await store.close()
    assert await pending == 1  # close drains what was queued
    with pytest.raises(StoreUnavailable):
        await store.append_events(T, S, [])
    with pytest.raises(StoreUnavailable):
        await store.read_events(T, S)


def test_synchronous_levels(tmp_path: Path) -> None:
    assert SqliteStore(str(tmp_path / "a.db")).synchronous == "FULL"
    assert SqliteStore(str(tmp_path / "a.db"), "normal").synchronous == "NORMAL"
    with pytest.raises(ValueError, match="synchronous"):
        SqliteStore(str(tmp_path / "a.db"), "OFF")


async def test_the_wal_file_stays_bounded(tmp_path: Path) -> None:
    """The commit that brings the WAL to schema.WAL_AUTOCHECKPOINT_PAGES checkpoints it, and the file
    is then written again from its start: three times that much data leaves it no larger than the
    bound and one commit's pages."""
    path = str(tmp_path / "hub.db")
    page, frame = 4096, 4096 + 24  # a WAL frame: a 24-byte header and the page
    store = SqliteStore(path)
    await store.start()
    try:
        value = "v" * 2000
        largest = written = 0
        while written < 3 * schema.WAL_AUTOCHECKPOINT_PAGES * page:
            events = [Event(id=f"e{written}-{i}", timestamp=written + i, value=value) for i in range(100)]
            await store.append_events("t", "s", events)
            written += 100 * len(value)
            largest = max(largest, os.path.getsize(path + "-wal"))
        assert (largest - 32) // frame <= schema.WAL_AUTOCHECKPOINT_PAGES + 100  # 100: one commit's pages, and then some
        assert os.path.getsize(path) >= 2 * schema.WAL_AUTOCHECKPOINT_PAGES * page  # checkpointed into the file
        info = await store.get_stream("t", "s")
        assert info is not None and info.events == written // len(value)
    finally:
        await store.close()


async def test_many_pipelined_writes_share_commits(store: SqliteStore) -> None:
    commits = 0
    real_commit = store.writer.commit

    def counting_commit(conn: sqlite3.Connection) -> None:
        nonlocal commits
        commits += 1
        real_commit(conn)

    store.writer.commit = counting_commit  # type: ignore[method-assign]
    await asyncio.gather(*[store.append_events(T, S, [Event(f"e{i}", i)]) for i in range(500)])
    assert (await store.get_stream(T, S)).events == 500  # type: ignore[union-attr]
    assert commits < 500  # group commit: writes queued during a commit go in the next one
    with sqlite3.connect(store.path) as conn:  # and a transaction's writes to a stream share a block
        # (but for the write that made the stream: flushed alone, so that it publishes the state after it)
        assert conn.execute("SELECT count(*), sum(count) FROM event_blocks").fetchone() == (commits + 1, 500)
    page = await store.read_events(T, S, ReadWindow(limit=500))
    assert [e.id for e in page.items] == [f"e{i}" for i in range(500)]


async def _in_one_transaction(store: SqliteStore, make_writes: Callable[[], list[Awaitable[int]]]) -> list[int]:
    """The writes `make_writes` starts, all queued while the writer is held: one transaction."""
    started, hold = threading.Event(), threading.Event()

    def busy(conn: sqlite3.Connection) -> None:
        started.set()
        hold.wait(5)

    held = store.writer.submit(busy)
    assert await asyncio.to_thread(started.wait, 5)
    writes = make_writes()
    hold.set()
    await held
    return await asyncio.gather(*writes)


async def _one_block(store: SqliteStore, stream: str, events: list[Event]) -> None:
    """`events` written one a write in one transaction: one block."""
    written = await _in_one_transaction(store, lambda: [store.append_events(T, stream, [event]) for event in events])
    assert written == [1] * len(events)


async def test_one_transaction_over_more_streams_than_one_statement_carries(store: SqliteStore) -> None:
    streams = [f"s{i}" for i in range(150)]  # > 64: several multi-row INSERTs and UPDATEs (multirow.py)
    for stream in streams:
        await store.append_events(T, stream, [Event("made", 100)])
    await _in_one_transaction(store, lambda: [
        store.append_events(T, stream, [Event(f"{stream}-{k}", 50 + k * 100) for k in range(i % 3 + 1)])
        for _ in range(2) for i, stream in enumerate(streams)
    ])
    for i, stream in enumerate(streams):
        n = i % 3 + 1
        info = await store.get_stream(T, stream)
        assert info is not None and (info.events, info.first_timestamp, info.last_timestamp) == (1 + 2 * n, 50, max(100, 50 + (n - 1) * 100))
        ids = [e.id for e in (await store.read_events(T, stream)).items]
        assert ids == ["made"] + [f"{stream}-{k}" for k in range(n)] * 2


async def test_pages_and_time_windows_inside_blocks(store: SqliteStore) -> None:
    await store.append_events(T, S, [Event("first", 50)])  # makes the stream: a block of its own
    await _one_block(store, S, [Event(f"e{i}", ts) for i, ts in enumerate([5, 40, 10, 30, 20, 60, 0])])
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT count, low, high FROM event_blocks ORDER BY seq").fetchall() == [(1, 50, 50), (7, 0, 60)]
    ids, after = [], None  # pages of 2 across and inside blocks, with a window that skips some items
    while True:
        page = await store.read_events(T, S, ReadWindow(from_ts=10, to_ts=50, limit=2, after=after))
        ids.append([e.id for e in page.items])
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert ids == [["e1", "e2"], ["e3", "e4"]]
    assert page.last_cursor is not None and page.last_cursor.endswith("-4")
    assert (await store.read_events(T, S, ReadWindow(from_ts=61))).items == []
    assert [e.id for e in (await store.read_events(T, S, ReadWindow(after=page.last_cursor))).items] == ["e5", "e6"]
    for bad in ("1-x", "-1", "1-", "x", "1--2", "99999999999999999999-0", " 1-2"):
        with pytest.raises(ValueError):
            await store.read_events(T, S, ReadWindow(after=bad))


async def test_count_retention_keeps_exactly_n_inside_a_block(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "kept.db"), retention=Retention(max_count=3))
    await store.start()
    try:
        await store.append_events(T, S, [Event("old", 0)])
        early = await store.read_events(T, S, ReadWindow(limit=1))
        await _one_block(store, S, [Event(f"e{i}", i) for i in range(6)])
        await store.trim()
        assert [e.id for e in (await store.read_events(T, S)).items] == ["e3", "e4", "e5"]
        assert [e.id for e in (await store.read_events(T, S, ReadWindow(after=early.last_cursor))).items] == ["e3", "e4", "e5"]
        with sqlite3.connect(store.path) as conn:  # the older block deleted, the head of this one hidden
            assert conn.execute("SELECT first, count FROM event_blocks").fetchall() == [(3, 6)]
        assert (await store.get_stream(T, S)).events == 7  # type: ignore[union-attr]  # counters count what was written
        await store.append_events(T, S, [Event("new", 9)])
        await store.trim()
        assert [e.id for e in (await store.read_events(T, S)).items] == ["e4", "e5", "new"]
    finally:
        await store.close()


KILLED_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from hub.streams.models import Event
    from hub.streams.store import SqliteStore

    async def main():
        store = SqliteStore(sys.argv[1])
        await store.start()
        batch = 0
        while True:
            await store.append_events("t", "s", [Event(f"b{batch}-{i}", i) for i in range(10)])
            batch += 1
            print(batch, flush=True)  # acknowledged: this many batches must survive

    asyncio.run(main())
    """
)


async def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    path = str(tmp_path / "hub.db")
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, path], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    acknowledged = 0
    try:
        for line in child.stdout:
            acknowledged = int(line)
            if acknowledged >= 50:
                break
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert acknowledged >= 50

    store = SqliteStore(path)
    await store.start()
    try:
        info = await store.get_stream("t", "s")
        assert info is not None and info.events >= acknowledged * 10
        page = await store.read_events("t", "s", ReadWindow(limit=acknowledged * 10))
        assert [e.id for e in page.items][-1] == f"b{acknowledged - 1}-9"
    finally:
        await store.close()


async def test_a_version_1_file_is_migrated(tmp_path: Path) -> None:
    """Version 1 had no AUTOINCREMENT; its data moves over, seqs (cursors) unchanged."""
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE streams (key INTEGER PRIMARY KEY, topic TEXT NOT NULL, stream_id TEXT NOT NULL,
                properties TEXT NOT NULL DEFAULT '{}', status TEXT NOT NULL DEFAULT 'open',
                events INTEGER NOT NULL DEFAULT 0, parameter_rows INTEGER NOT NULL DEFAULT 0,
                first_timestamp INTEGER, last_timestamp INTEGER, last_activity REAL,
                event_definitions TEXT NOT NULL DEFAULT '[]', parameter_definitions TEXT NOT NULL DEFAULT '[]',
                UNIQUE (topic, stream_id));
            CREATE TABLE events (seq INTEGER PRIMARY KEY, stream INTEGER NOT NULL, timestamp INTEGER NOT NULL,
                id TEXT NOT NULL, value TEXT, tags TEXT);
            CREATE INDEX events_by_stream ON events (stream);
            CREATE TABLE parameter_rows (seq INTEGER PRIMARY KEY, stream INTEGER NOT NULL,
                timestamp INTEGER NOT NULL, row_values TEXT NOT NULL);
            CREATE INDEX parameter_rows_by_stream ON parameter_rows (stream);
            INSERT INTO streams (key, topic, stream_id, events) VALUES (1, 't', 's', 2);
            INSERT INTO events VALUES (7, 1, 10, 'a', NULL, NULL), (9, 1, 11, 'b', 'v', '{"k":"x"}');
            PRAGMA user_version = 1;
            """
        )
    store = SqliteStore(str(path))
    await store.start()
    try:
        page = await store.read_events("t", "s", ReadWindow(limit=1))
        assert [e.id for e in page.items] == ["a"] and page.next_cursor == "7-0"
        await store.append_events("t", "s", [Event("c", 12)])
        # a cursor of the old file (the row's seq) continues after that row
        assert [e.id for e in (await store.read_events("t", "s", ReadWindow(after="7"))).items] == ["b", "c"]
        assert [e.to_json() for e in (await store.read_events("t", "s", ReadWindow(after="7-0"))).items][0] == {
            "id": "b", "timestamp": 11, "value": "v", "tags": {"k": "x"}}
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (3,)
        assert conn.execute("SELECT seq FROM event_blocks ORDER BY seq").fetchall() == [(7,), (9,), (10,)]


async def test_a_version_2_file_is_migrated_to_blocks(tmp_path: Path) -> None:
    """Version 2 kept a row per item. Each becomes a block of one with its seq, so that old cursors
    still continue where they did, and the sequences carry over: a seq handed out before (even of a
    row retention deleted since) is never given again."""
    path = tmp_path / "v2.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(schema.SCHEMA.split("CREATE TABLE IF NOT EXISTS event_blocks")[0] + schema.DATA_TABLES_2)
        conn.executescript(
            """
            INSERT INTO streams (key, topic, stream_id, events, parameter_rows) VALUES (1, 't', 's', 3, 2);
            INSERT INTO events (seq, stream, timestamp, id, value, tags)
                VALUES (3, 1, 10, 'a', NULL, NULL), (5, 1, 11, 'b', 'v', '{"k":"x"}'), (20, 1, 9, 'gone', 'x', NULL);
            DELETE FROM events WHERE seq = 20;
            INSERT INTO parameter_rows (seq, stream, timestamp, row_values)
                VALUES (4, 1, 10, '{"n":{"x":1.5}}'), (6, 1, 12, '{"n":{"x":null},"s":{"g":"b"}}');
            PRAGMA user_version = 2;
            """
        )
    store = SqliteStore(str(path))
    await store.start()
    try:
        page = await store.read_events("t", "s")
        assert [e.to_json() for e in page.items] == [
            {"id": "a", "timestamp": 10, "value": None, "tags": {}},
            {"id": "b", "timestamp": 11, "value": "v", "tags": {"k": "x"}},
        ]
        assert [e.id for e in (await store.read_events("t", "s", ReadWindow(after="3"))).items] == ["b"]
        [rows] = (await store.read_parameter_data("t", "s")).items
        assert rows.to_json() == ParameterData([10, 12], {"x": [1.5, None]}, {"g": [None, "b"]}).to_json()
        [rows] = (await store.read_parameter_data("t", "s", ReadWindow(after="4"))).items
        assert rows.timestamps == [12]
        await store.append_events("t", "s", [Event("c", 12)])
        page = await store.read_events("t", "s", ReadWindow(after="5"))
        assert [e.id for e in page.items] == ["c"] and page.last_cursor == "21-0"  # after the deleted 20
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (3,)
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"events", "parameter_rows"}.isdisjoint(tables)
