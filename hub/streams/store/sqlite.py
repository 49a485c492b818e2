"""The durable embedded store: one SQLite file in WAL mode, written by one thread with group commit.

Write path: a write call builds an operation and enqueues it, with an asyncio future, on a
SimpleQueue (so the queue order is the call order). The writer thread takes everything queued,
applies it in one transaction (a SAVEPOINT per operation, so a failing operation fails alone),
commits once, then resolves the futures on their loops. One fsync thus acknowledges every write
that arrived while the previous commit was on disk: throughput grows with concurrency instead of
being capped at one write per fsync.

Read path: a second connection, used only from one reader thread, so the event loop never waits on
the disk. In WAL mode readers never block the writer and see every committed transaction.

Live changes are published on the event loop when a transaction's futures are resolved, i.e. after
its COMMIT returned, in queue order. Retention runs as an operation on the writer thread, in passes.

See protocol-notes/stream-store.md for the schema, and for why `synchronous` defaults to FULL.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import time
from collections import OrderedDict, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Sequence, TypeVar


from ..models import Event, Page, ParameterData, QuarantinedRow, StreamInfo, StreamProperties, StreamStatus
from ..models import ReadWindow, TopicSummary
from .base import DefinitionKind, IdempotencyRecord, StoreUnavailable, StreamStore
from .broadcast import DEFAULT_MAX_PENDING, Change, ChangeBroadcast as ChangeFeed, ChangeSubscription as Subscription
from .cursor import decode_cursor, encode_cursor
from .encoding import dumps_text, loads, stream_info
from .parameter_rows import join_rows, split_rows
from .retention import KEEP_EVERYTHING, Retention, trim_every

T = TypeVar("T")

#: Streams each in-process cache of the store remembers at most (~300-400 B an entry); see
#: `_open_keys` and `_touched` for what happens at the bound.
MAX_CACHED_STREAMS = 10_000

# OFF is refused: it can corrupt the database on power loss, not just lose the last commits.
SYNCHRONOUS_LEVELS = ("NORMAL", "FULL", "EXTRA")
SCHEMA_VERSION = 2

# `seq` is the rowid: it grows with arrival, so it is both the read order and the page cursor.
# An index on (stream) alone is enough for (stream, seq) reads: every SQLite index ends with the
# rowid. AUTOINCREMENT: retention deletes rows, and a seq must never be reused (cursors).
_DATA_TABLES = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    stream INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    id TEXT NOT NULL,
    value TEXT,
    tags TEXT                                 -- JSON object, NULL when empty
);
CREATE INDEX IF NOT EXISTS events_by_stream ON events (stream);
CREATE TABLE IF NOT EXISTS parameter_rows (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    stream INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    row_values TEXT NOT NULL                  -- JSON, see parameter_rows.py
);
CREATE INDEX IF NOT EXISTS parameter_rows_by_stream ON parameter_rows (stream);
"""

# Version 1 had no AUTOINCREMENT (rows were never deleted then): copy into the new tables.
_MIGRATE_1_TO_2 = (
    """
BEGIN;
ALTER TABLE events RENAME TO events_v1;
ALTER TABLE parameter_rows RENAME TO parameter_rows_v1;
DROP INDEX IF EXISTS events_by_stream;
DROP INDEX IF EXISTS parameter_rows_by_stream;
"""
    + _DATA_TABLES
    + """
INSERT INTO events SELECT * FROM events_v1;
INSERT INTO parameter_rows SELECT * FROM parameter_rows_v1;
DROP TABLE events_v1;
DROP TABLE parameter_rows_v1;
PRAGMA user_version = 2;
COMMIT;
"""
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS streams (
    key INTEGER PRIMARY KEY,                  -- creation order
    topic TEXT NOT NULL,
    stream_id TEXT NOT NULL,
    properties TEXT NOT NULL DEFAULT '{}',    -- StreamProperties.to_json()
    status TEXT NOT NULL DEFAULT 'open',
    events INTEGER NOT NULL DEFAULT 0,
    parameter_rows INTEGER NOT NULL DEFAULT 0,
    first_timestamp INTEGER,
    last_timestamp INTEGER,
    last_activity REAL,
    event_definitions TEXT NOT NULL DEFAULT '[]',
    parameter_definitions TEXT NOT NULL DEFAULT '[]',
    UNIQUE (topic, stream_id)
);
CREATE TABLE IF NOT EXISTS idempotency (     -- X-Idempotency-Key records
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER,                           -- NULL while the first request runs
    body BLOB NOT NULL DEFAULT x'',
    expires REAL NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE TABLE IF NOT EXISTS arrivals (         -- for age retention: data up to these seqs had arrived by `at`
    at REAL NOT NULL,
    events_seq INTEGER NOT NULL,
    rows_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (       -- rows of lenient batches that were not valid events
    seq INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    stream_id TEXT NOT NULL,
    line INTEGER NOT NULL,
    reason TEXT NOT NULL,
    raw TEXT NOT NULL,
    received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS quarantine_by_topic ON quarantine (topic);
""" + _DATA_TABLES

_INFO_COLUMNS = (
    "topic, stream_id, properties, status, events, parameter_rows, first_timestamp, last_timestamp,"
    " last_activity, event_definitions, parameter_definitions"
)
_STREAM_KEY = "(SELECT key FROM streams WHERE topic = :topic AND stream_id = :stream_id)"
_TOUCH = """
UPDATE streams SET
    events = events + :events,
    parameter_rows = parameter_rows + :rows,
    first_timestamp = coalesce(min(first_timestamp, :low), first_timestamp, :low),
    last_timestamp = coalesce(max(last_timestamp, :high), last_timestamp, :high),
    last_activity = :now,
    status = CASE WHEN :reopen THEN 'open' ELSE status END
WHERE key = :key
"""

Apply = Callable[[sqlite3.Connection], Any]


@dataclass(slots=True)
class _Write:
    apply: Apply
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


@dataclass(slots=True)
class _Published:
    """What an apply returns when its write has live changes: `publish` runs on the event loop once
    the transaction is committed, before the write's future resolves to `result`."""

    result: Any
    publish: Callable[[], None]


class SqliteStore(StreamStore):
    def __init__(
        self,
        path: str,
        synchronous: str = "FULL",
        retention: Retention = KEEP_EVERYTHING,
        trim_interval: float = 60.0,
        *,
        max_cached_streams: int = MAX_CACHED_STREAMS,
    ):
        level = synchronous.upper()
        if level not in SYNCHRONOUS_LEVELS:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS_LEVELS)}, not {synchronous!r}")
        if max_cached_streams < 1:
            raise ValueError(f"max_cached_streams must be at least 1, not {max_cached_streams!r}")
        self.path = path
        self.synchronous = level
        self._queue: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-read")
        self._write_conn: sqlite3.Connection | None = None
        self._read_conn: sqlite3.Connection | None = None
        # Guards accepting writes against the writer stopping, so no write is queued unanswered.
        self._state_lock = threading.Lock()
        self._accepting = False
        self._broken: BaseException | None = None
        self.retention = retention
        self.trim_interval = trim_interval
        self.changes = ChangeFeed()
        self._trimmer: asyncio.Task[None] | None = None
        self.max_cached_streams = max_cached_streams
        # Stream keys written since the last count-retention pass (writer thread). Bound: at most
        # max_cached_streams; before a write would add one more, the streams already in it are
        # trimmed at once (in that write's transaction) and it is emptied, so retention stays exact.
        # `_trim_all` stands for "every stream" (after a start, or when a transaction holding a trim
        # was rolled back): the next pass walks the streams table instead, holding nothing in memory.
        self._touched: set[int] = set()
        self._trim_all = False
        self._trims = 0  # count-retention trims run (writer thread): tells whether a rollback undid one
        # Streams a data write left open, by (topic, stream id) -> key (writer thread): a data write
        # to one of them needs no SELECT first. Filled as writes are applied, before their commit, so
        # cleared whenever a write or a batch is rolled back (it may have created the stream); an
        # entry is dropped when its stream is closed. Bound: max_cached_streams, least recently
        # written first out; a write to an evicted stream looks its key up again (one SELECT).
        self._open_keys: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._last_arrival_mark = 0.0  # writer thread

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self._open)
        self._accepting = True
        self._writer = threading.Thread(target=self._write_loop, name="sqlite-writer", daemon=True)
        self._writer.start()
        # a restart must trim streams written before it
        self._trim_all = self.retention.max_count is not None
        self._trimmer = asyncio.create_task(trim_every(self, self.trim_interval))

    def _open(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves. check_same_thread=False: each
        # connection is opened here but used only by its own thread afterwards.
        write = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            mode = write.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreUnavailable(f"{self.path}: could not switch to WAL mode (got {mode})")
            write.execute(f"PRAGMA synchronous={self.synchronous}")
            write.execute("PRAGMA busy_timeout=5000")
            version = write.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreUnavailable(f"{self.path}: schema version {version} is newer than this hub knows")
            if version == 1:
                write.executescript(_MIGRATE_1_TO_2)
            write.executescript(SCHEMA)
            write.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            read = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            read.execute("PRAGMA query_only=ON")
            read.execute("PRAGMA busy_timeout=5000")
        except BaseException:
            write.close()
            raise
        self._write_conn, self._read_conn = write, read

    async def close(self) -> None:
        if self._trimmer is not None:
            self._trimmer.cancel()
            try:
                await self._trimmer
            except asyncio.CancelledError:
                pass
            self._trimmer = None
        with self._state_lock:
            self._accepting = False
            if self._writer is not None:
                self._queue.put(None)  # after every write already queued
        if self._writer is not None:
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        await asyncio.to_thread(self._reader.shutdown, True)
        await asyncio.to_thread(self._close_connections)
        self.changes.close()

    def _close_connections(self) -> None:
        if self._write_conn is not None:
            try:
                self._write_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # keep the WAL small
            except sqlite3.Error:
                pass
            self._write_conn.close()
        if self._read_conn is not None:
            self._read_conn.close()
        self._write_conn = self._read_conn = None

    # --- the writer thread ------------------------------------------------------------------------

    def _submit(self, apply: Apply) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._state_lock:
            if not self._accepting:
                reason = self._broken or "the store is not started or already closed"
                future.set_exception(StoreUnavailable(f"sqlite store {self.path}: {reason}"))
            else:
                self._queue.put(_Write(apply, future, loop))
        return future

    def _write_loop(self) -> None:
        assert self._write_conn is not None
        conn = self._write_conn
        try:
            while True:
                batch = [self._queue.get()]
                while True:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                writes = [w for w in batch if w is not None]
                if writes:
                    self._apply_batch(conn, writes)
                if len(writes) < len(batch):  # the stop marker: nothing is queued after it
                    return
        except BaseException as error:  # a bug here must not leave writers waiting forever
            with self._state_lock:
                self._accepting = False
                self._broken = error
                leftovers = []
                while True:
                    try:
                        leftovers.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
            failure = StoreUnavailable(f"sqlite writer stopped: {error!r}")
            _settle([(w, None, failure) for w in leftovers if w is not None])
            raise

    def _apply_batch(self, conn: sqlite3.Connection, writes: list[_Write]) -> None:
        outcomes: list[tuple[_Write, Any, BaseException | None]] = []
        trims_before_batch = self._trims
        try:
            conn.execute("BEGIN IMMEDIATE")
            for write in writes:
                if len(self._touched) >= self.max_cached_streams:
                    self._trim_counts(conn)  # outside the write's savepoint: its failure cannot undo it
                trims_before = self._trims
                conn.execute("SAVEPOINT op")
                try:
                    result = write.apply(conn)
                except Exception as error:
                    conn.execute("ROLLBACK TO op")
                    self._open_keys.clear()
                    if self._trims != trims_before:
                        self._trim_all = True  # the trim it ran is undone: redo it for every stream
                    outcomes.append((write, None, _store_error(error)))
                else:
                    outcomes.append((write, result, None))
                conn.execute("RELEASE op")
            if self.retention.max_age is not None:
                self._mark_arrival(conn)
            self._commit(conn)
        except sqlite3.Error as error:
            self._open_keys.clear()
            if self._trims != trims_before_batch:
                self._trim_all = True
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            failure = StoreUnavailable(f"sqlite store {self.path}: transaction not committed: {error}")
            outcomes = [(w, None, failure) for w in writes]
        except BaseException as error:  # not ours to handle, but first answer this batch's writers
            self._open_keys.clear()
            if self._trims != trims_before_batch:
                self._trim_all = True
            _settle([(w, None, StoreUnavailable(f"sqlite writer stopped: {error!r}")) for w in writes])
            raise
        _settle(outcomes)

    def _mark_arrival(self, conn: sqlite3.Connection) -> None:
        """At most once a second: the highest seqs that have arrived by now (age retention)."""
        now = time.time()
        if now - self._last_arrival_mark < 1.0:
            return
        self._last_arrival_mark = now
        conn.execute(
            "INSERT INTO arrivals (at, events_seq, rows_seq) SELECT ?,"
            " coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),"
            " coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'parameter_rows'), 0)",
            (now,),
        )

    def _commit(self, conn: sqlite3.Connection) -> None:
        # A method of its own so that a test can make the commit fail.
        conn.execute("COMMIT")

    # --- writes -----------------------------------------------------------------------------------

    def _data_stream(self, conn: sqlite3.Connection, topic: str, stream_id: str) -> tuple[int, bool]:
        """On the writer thread, for a data write (which leaves the stream open): the stream's key,
        and whether the write creates or reopens it."""
        cache = self._open_keys
        key = cache.get((topic, stream_id))
        if key is not None:
            cache.move_to_end((topic, stream_id))
            return key, False
        key, changed = _ensure_stream_changed(conn, topic, stream_id)
        cache[(topic, stream_id)] = key
        if len(cache) > self.max_cached_streams:
            cache.popitem(last=False)  # the least recently written: its next write SELECTs its key
        return key, changed

    def append_events(self, topic: str, stream_id: str, events: list[Event]) -> Awaitable[int]:
        now = time.time()

        def apply(conn: sqlite3.Connection) -> _Published:
            key, changed = self._data_stream(conn, topic, stream_id)
            conn.executemany(
                "INSERT INTO events (stream, timestamp, id, value, tags) VALUES (?, ?, ?, ?, ?)",
                [(key, e.timestamp, e.id, e.value, dumps_text(e.tags) if e.tags else None) for e in events],
            )
            last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
            _touch(conn, key, now, [e.timestamp for e in events], events=len(events))
            if self.retention.max_count is not None:
                self._touched.add(key)
            info = _stream_info(conn, key) if changed else None
            return _Published(len(events), lambda: self._publish_data(topic, stream_id, info, "events", events, last))

        return self._submit(apply)

    def append_parameter_data(self, topic: str, stream_id: str, data: ParameterData) -> Awaitable[int]:
        now = time.time()

        def apply(conn: sqlite3.Connection) -> _Published:
            key, changed = self._data_stream(conn, topic, stream_id)
            conn.executemany(
                "INSERT INTO parameter_rows (stream, timestamp, row_values) VALUES (?, ?, ?)",
                [(key, timestamp, dumps_text(values)) for timestamp, values in split_rows(data)],
            )
            last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
            _touch(conn, key, now, data.timestamps, rows=data.rows)
            if self.retention.max_count is not None:
                self._touched.add(key)
            info = _stream_info(conn, key) if changed else None
            return _Published(data.rows, lambda: self._publish_data(topic, stream_id, info, "parameters", data, last))

        return self._submit(apply)

    def _publish_data(
        self, topic: str, stream_id: str, info: StreamInfo | None, kind: str, items: Any, last: int
    ) -> None:
        """On the loop, after the commit: the stream's new state (created or reopened), then the data."""
        feed = self.changes
        if not feed.wants(topic, stream_id):
            return
        if info is not None:
            feed.publish(Change("stream", topic, stream_id, info=info))
        count = len(items) if kind == "events" else items.rows
        if count:
            cursors = [encode_cursor(seq) for seq in range(last - count + 1, last + 1)]
            if kind == "events":
                feed.publish(Change("events", topic, stream_id, events=list(items), cursors=cursors))
            else:
                feed.publish(Change("parameters", topic, stream_id, parameter_data=items, cursors=cursors))

    def _publish_stream(self, info: StreamInfo) -> StreamInfo:
        if self.changes.wants(info.topic, info.stream_id):
            self.changes.publish(Change("stream", info.topic, info.stream_id, info=_copy_info(info)))
        return info

    def put_properties(
        self, topic: str, stream_id: str, properties: StreamProperties, *, reopen: bool = True
    ) -> Awaitable[StreamInfo]:
        now, encoded = time.time(), dumps_text(properties.to_json())

        def apply(conn: sqlite3.Connection) -> StreamInfo:
            key = _ensure_stream(conn, topic, stream_id)
            conn.execute("UPDATE streams SET properties = ? WHERE key = ?", (encoded, key))
            _touch(conn, key, now, (), reopen=reopen)
            info = _stream_info(conn, key)
            return _Published(info, lambda: self._publish_stream(info))

        return self._submit(apply)

    def close_stream(self, topic: str, stream_id: str) -> Awaitable[StreamInfo]:
        now = time.time()

        def apply(conn: sqlite3.Connection) -> StreamInfo:
            self._open_keys.pop((topic, stream_id), None)
            key = _ensure_stream(conn, topic, stream_id, status="closed")
            conn.execute("UPDATE streams SET status = 'closed' WHERE key = ?", (key,))
            _touch(conn, key, now, (), reopen=False)
            info = _stream_info(conn, key)
            return _Published(info, lambda: self._publish_stream(info))

        return self._submit(apply)

    def set_definitions(
        self, topic: str, stream_id: str, kind: DefinitionKind, definitions: list[dict[str, Any]]
    ) -> Awaitable[StreamInfo]:
        column = {"events": "event_definitions", "parameters": "parameter_definitions"}.get(kind)
        now, encoded = time.time(), dumps_text(definitions)

        def apply(conn: sqlite3.Connection) -> StreamInfo:
            if column is None:
                raise ValueError(f"unknown definition kind {kind!r}")
            key = _ensure_stream(conn, topic, stream_id)
            conn.execute(f"UPDATE streams SET {column} = ? WHERE key = ?", (encoded, key))
            _touch(conn, key, now, (), reopen=False)
            info = _stream_info(conn, key)
            return _Published(info, lambda: self._publish_stream(info))

        return self._submit(apply)

    def append_quarantine(self, topic: str, rows: list[QuarantinedRow]) -> Awaitable[int]:
        values = [(topic, r.stream_id, r.line, r.reason, r.raw, r.received_at) for r in rows]

        def apply(conn: sqlite3.Connection) -> int:
            conn.executemany(
                "INSERT INTO quarantine (topic, stream_id, line, reason, raw, received_at) VALUES (?, ?, ?, ?, ?, ?)",
                values,
            )
            return len(values)

        return self._submit(apply)

    # --- reads ------------------------------------------------------------------------------------

    async def read_quarantine(self, topic: str, window: ReadWindow = ReadWindow()) -> Page[QuarantinedRow]:
        limit = window.limit
        params = {"topic": topic, "after": decode_cursor(window.after), "fetch": limit + 1}

        def query(conn: sqlite3.Connection) -> Page[QuarantinedRow]:
            rows = conn.execute(
                "SELECT seq, stream_id, line, reason, raw, received_at FROM quarantine"
                " WHERE topic = :topic AND seq > :after ORDER BY seq LIMIT :fetch",
                params,
            ).fetchall()
            return _to_page(rows, [QuarantinedRow(*row[1:]) for row in rows], limit)

        return await self._read(query)

    async def _read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._read_conn
        if conn is None:
            raise StoreUnavailable(f"sqlite store {self.path}: not started or already closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._reader, query, conn)
        except sqlite3.OperationalError as error:
            raise StoreUnavailable(f"sqlite store {self.path}: {error}") from error

    async def list_topics(self) -> list[TopicSummary]:
        def query(conn: sqlite3.Connection) -> list[TopicSummary]:
            rows = conn.execute("SELECT topic, count(*) FROM streams GROUP BY topic ORDER BY topic").fetchall()
            return [TopicSummary(topic, count) for topic, count in rows]

        return await self._read(query)

    async def list_streams(self, topic: str) -> list[StreamInfo]:
        def query(conn: sqlite3.Connection) -> list[StreamInfo]:
            sql = f"SELECT {_INFO_COLUMNS} FROM streams WHERE topic = ? ORDER BY key"
            return [_info_from_row(row) for row in conn.execute(sql, (topic,)).fetchall()]

        return await self._read(query)

    async def get_stream(self, topic: str, stream_id: str) -> StreamInfo | None:
        def query(conn: sqlite3.Connection) -> StreamInfo | None:
            sql = f"SELECT {_INFO_COLUMNS} FROM streams WHERE topic = ? AND stream_id = ?"
            row = conn.execute(sql, (topic, stream_id)).fetchone()
            return None if row is None else _info_from_row(row)

        return await self._read(query)

    async def read_events(self, topic: str, stream_id: str, window: ReadWindow = ReadWindow()) -> Page[Event]:
        params = _page_params(topic, stream_id, window)
        limit = window.limit

        def query(conn: sqlite3.Connection) -> Page[Event]:
            rows = conn.execute(_page_sql("events", "id, timestamp, value, tags"), params).fetchall()
            items = [Event(id, ts, value, loads(tags) if tags else {}) for _, id, ts, value, tags in rows]
            return _to_page(rows, items, limit)

        return await self._read(query)

    async def read_parameter_data(
        self, topic: str, stream_id: str, window: ReadWindow = ReadWindow()
    ) -> Page[ParameterData]:
        params = _page_params(topic, stream_id, window)
        limit = window.limit

        def query(conn: sqlite3.Connection) -> Page[ParameterData]:
            rows = conn.execute(_page_sql("parameter_rows", "timestamp, row_values"), params).fetchall()
            page = _to_page(rows, rows, limit)
            data = join_rows((ts, loads(values)) for _, ts, values in page.items)
            return Page([data], page.next_cursor, page.last_cursor)

        return await self._read(query)

    # --- live changes -----------------------------------------------------------------------------

    async def subscribe(
        self, topic: str | None = None, stream_id: str | None = None, *, max_pending: int = DEFAULT_MAX_PENDING
    ) -> Subscription:
        return self.changes.subscribe(topic, stream_id, max_pending)

    # --- idempotency ------------------------------------------------------------------------------

    def claim_idempotency(
        self, scope: str, key: str, fingerprint: str, lease: float, attempt: str = ""
    ) -> Awaitable[IdempotencyRecord | None]:
        def apply(conn: sqlite3.Connection) -> IdempotencyRecord | None:
            now = time.time()
            row = conn.execute(
                "SELECT fingerprint, status, body FROM idempotency WHERE scope = ? AND key = ? AND expires > ?",
                (scope, key, now),
            ).fetchone()
            if row is not None:
                return IdempotencyRecord(row[0], row[1], bytes(row[2]))
            conn.execute(
                "INSERT OR REPLACE INTO idempotency (scope, key, fingerprint, status, body, expires)"
                " VALUES (?, ?, ?, NULL, ?, ?)",
                (scope, key, fingerprint, attempt.encode(), now + lease),
            )
            return None

        return self._submit(apply)

    def finish_idempotency(
        self, scope: str, key: str, fingerprint: str, status: int, body: bytes, ttl: float
    ) -> Awaitable[None]:
        def apply(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO idempotency (scope, key, fingerprint, status, body, expires) VALUES (?, ?, ?, ?, ?, ?)",
                (scope, key, fingerprint, status, body, time.time() + ttl),
            )

        return self._submit(apply)

    def release_idempotency(self, scope: str, key: str, fingerprint: str, attempt: str = "") -> Awaitable[None]:
        def apply(conn: sqlite3.Connection) -> None:
            conn.execute(
                "DELETE FROM idempotency WHERE scope = ? AND key = ? AND fingerprint = ? AND status IS NULL AND body = ?",
                (scope, key, fingerprint, attempt.encode()),
            )

        return self._submit(apply)

    # --- retention --------------------------------------------------------------------------------

    def cache_sizes(self) -> dict[str, int]:
        return {"open streams": len(self._open_keys), "touched streams": len(self._touched)}

    def _trim_counts(self, conn: sqlite3.Connection) -> None:
        """Count retention (writer thread, in the current transaction) for the touched streams, or
        for every stream when `_trim_all`; empties the touched set."""
        keep = self.retention.max_count
        if keep is not None:
            if self._trim_all:
                keys: Iterable[int] = _every_stream_key(conn)
            else:
                keys = self._touched
            for key in keys:
                for table in ("events", "parameter_rows"):
                    # the index on (stream) ends with seq: OFFSET walks it from the newest
                    conn.execute(
                        f"DELETE FROM {table} WHERE stream = :key AND seq <= (SELECT seq FROM {table}"
                        " WHERE stream = :key ORDER BY seq DESC LIMIT 1 OFFSET :keep)",
                        {"key": key, "keep": keep},
                    )
            self._trims += 1
        self._touched = set()
        self._trim_all = False

    async def trim(self, now: float | None = None) -> None:
        """One retention pass, as an operation on the writer thread (between two transactions'
        worth of writes; the deletes commit like any write)."""
        at = time.time() if now is None else now
        retention = self.retention

        def apply(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM idempotency WHERE expires <= ?", (at,))
            if retention.max_age is not None:
                # Everything stored so far has arrived by now: a mark for the tail the last (at most
                # once a second) mark missed, so a stream that stopped receiving ages out too.
                self._last_arrival_mark = 0.0
                self._mark_arrival(conn)
                cutoff = at - retention.max_age
                row = conn.execute("SELECT max(events_seq), max(rows_seq) FROM arrivals WHERE at < ?", (cutoff,)).fetchone()
                if row[0] is not None:
                    conn.execute("DELETE FROM events WHERE seq <= ?", (row[0],))
                    conn.execute("DELETE FROM parameter_rows WHERE seq <= ?", (row[1],))
                    conn.execute("DELETE FROM arrivals WHERE at < ?", (cutoff,))
            if retention.max_count is not None:
                self._trim_counts(conn)

        await self._submit(apply)



# --- helpers run on the writer or reader thread ---------------------------------------------------


def _store_error(error: Exception) -> Exception:
    # Disk full, I/O errors, a locked file: the client may retry. Anything else is a bug; keep it.
    if isinstance(error, sqlite3.OperationalError):
        return StoreUnavailable(str(error))
    return error


def _settle(outcomes: Iterable[tuple[_Write, Any, BaseException | None]]) -> None:
    """Resolve futures on their own loops, with one wake-up per loop rather than per write."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, BaseException | None]]]
    by_loop = defaultdict(list)
    for write, result, error in outcomes:
        by_loop[write.loop].append((write.future, result, error))
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, settled)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass


def _resolve(settled: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, error in settled:
        if isinstance(result, _Published):
            result.publish()  # committed: live readers hear of it before the writer's ack
            result = result.result
        if future.done():  # cancelled by its caller; the write happened anyway
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


def _ensure_stream_changed(conn: sqlite3.Connection, topic: str, stream_id: str) -> tuple[int, bool]:
    """For a data write: the stream's key, and whether the write creates or reopens it."""
    row = conn.execute("SELECT key, status FROM streams WHERE topic = ? AND stream_id = ?", (topic, stream_id)).fetchone()
    if row is not None:
        return int(row[0]), row[1] == "closed"
    return _ensure_stream(conn, topic, stream_id), True


def _every_stream_key(conn: sqlite3.Connection, chunk: int = 1000) -> Iterable[int]:
    """Every stream's key, read a chunk at a time so that memory does not grow with the streams."""
    after = 0
    while True:
        keys = [k for (k,) in conn.execute("SELECT key FROM streams WHERE key > ? ORDER BY key LIMIT ?", (after, chunk))]
        yield from keys
        if len(keys) < chunk:
            return
        after = keys[-1]


def _copy_info(info: StreamInfo) -> StreamInfo:
    """A StreamInfo the feed may hand out while the writer's caller keeps its own."""
    return _info_from_row(
        (info.topic, info.stream_id, dumps_text(info.properties.to_json()), info.status, info.events, info.parameter_rows,
         info.first_timestamp, info.last_timestamp, info.last_activity, dumps_text(info.event_definitions),
         dumps_text(info.parameter_definitions))
    )


def _ensure_stream(conn: sqlite3.Connection, topic: str, stream_id: str, status: StreamStatus = "open") -> int:
    row = conn.execute("SELECT key FROM streams WHERE topic = ? AND stream_id = ?", (topic, stream_id)).fetchone()
    if row is not None:
        return int(row[0])
    cursor = conn.execute("INSERT INTO streams (topic, stream_id, status) VALUES (?, ?, ?)", (topic, stream_id, status))
    return int(cursor.lastrowid)  # type: ignore[arg-type]


def _touch(
    conn: sqlite3.Connection,
    key: int,
    now: float,
    timestamps: Sequence[int],
    *,
    events: int = 0,
    rows: int = 0,
    reopen: bool = True,
) -> None:
    low, high = (min(timestamps), max(timestamps)) if timestamps else (None, None)
    conn.execute(
        _TOUCH,
        {"events": events, "rows": rows, "low": low, "high": high, "now": now, "reopen": reopen, "key": key},
    )


def _stream_info(conn: sqlite3.Connection, key: int) -> StreamInfo:
    return _info_from_row(conn.execute(f"SELECT {_INFO_COLUMNS} FROM streams WHERE key = ?", (key,)).fetchone())


def _info_from_row(row: tuple[Any, ...]) -> StreamInfo:
    return stream_info(*row)


def _page_params(topic: str, stream_id: str, window: ReadWindow) -> dict[str, Any]:
    return {
        "topic": topic,
        "stream_id": stream_id,
        "after": decode_cursor(window.after),  # on the caller's side, so a bad cursor raises ValueError
        "from_ts": window.from_ts,
        "to_ts": window.to_ts,
        "fetch": window.limit + 1,  # one more than asked tells whether a next page exists
    }


def _page_sql(table: str, columns: str) -> str:
    return (
        f"SELECT seq, {columns} FROM {table} WHERE stream = {_STREAM_KEY} AND seq > :after"
        " AND (:from_ts IS NULL OR timestamp >= :from_ts) AND (:to_ts IS NULL OR timestamp < :to_ts)"
        " ORDER BY seq LIMIT :fetch"
    )


def _to_page(rows: list[Any], items: list[T], limit: int) -> Page[T]:
    if len(rows) > limit:
        last = encode_cursor(rows[limit - 1][0])
        return Page(items[:limit], last, last)
    return Page(items, None, encode_cursor(rows[-1][0]) if rows else None)
