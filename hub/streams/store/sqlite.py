"""The durable embedded store: one SQLite file in WAL mode, written by one thread with group commit.

Write path: a write call builds an operation and enqueues it, with an asyncio future, on a
SimpleQueue (so the queue order is the call order). The writer thread takes everything queued,
applies it in one transaction (a SAVEPOINT per operation, so a failing operation fails alone),
commits once, then resolves the futures on their loops. One fsync thus acknowledges every write
that arrived while the previous commit was on disk: throughput grows with concurrency instead of
being capped at one write per fsync.

Read path: a second connection, used only from one reader thread, so the event loop never waits on
the disk. In WAL mode readers never block the writer and see every committed transaction.

See protocol-notes/stream-store.md for the schema, and for why `synchronous` defaults to FULL.
"""

from __future__ import annotations

import asyncio
import json
import queue
import sqlite3
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Sequence, TypeVar

from ..models import Event, Page, ParameterData, StreamInfo, StreamProperties, StreamStatus, TopicSummary
from .base import DefinitionKind, StoreUnavailable, StreamStore
from .cursor import check_limit, decode_cursor, encode_cursor
from .parameter_rows import join_rows, split_rows

T = TypeVar("T")

# OFF is refused: it can corrupt the database on power loss, not just lose the last commits.
SYNCHRONOUS_LEVELS = ("NORMAL", "FULL", "EXTRA")
SCHEMA_VERSION = 1

# `seq` is the rowid: it grows with arrival, so it is both the read order and the page cursor.
# An index on (stream) alone is enough for (stream, seq) reads: every SQLite index ends with the
# rowid. Rows are never deleted, so seq is never reused.
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
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    stream INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    id TEXT NOT NULL,
    value TEXT,
    tags TEXT                                 -- JSON object, NULL when empty
);
CREATE INDEX IF NOT EXISTS events_by_stream ON events (stream);
CREATE TABLE IF NOT EXISTS parameter_rows (
    seq INTEGER PRIMARY KEY,
    stream INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    row_values TEXT NOT NULL                  -- JSON, see parameter_rows.py
);
CREATE INDEX IF NOT EXISTS parameter_rows_by_stream ON parameter_rows (stream);
"""

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


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class SqliteStore(StreamStore):
    def __init__(self, path: str, synchronous: str = "FULL"):
        level = synchronous.upper()
        if level not in SYNCHRONOUS_LEVELS:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS_LEVELS)}, not {synchronous!r}")
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

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self._open)
        self._accepting = True
        self._writer = threading.Thread(target=self._write_loop, name="sqlite-writer", daemon=True)
        self._writer.start()

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
        with self._state_lock:
            self._accepting = False
            if self._writer is not None:
                self._queue.put(None)  # after every write already queued
        if self._writer is not None:
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        await asyncio.to_thread(self._reader.shutdown, True)
        await asyncio.to_thread(self._close_connections)

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
        try:
            conn.execute("BEGIN IMMEDIATE")
            for write in writes:
                conn.execute("SAVEPOINT op")
                try:
                    result = write.apply(conn)
                except Exception as error:
                    conn.execute("ROLLBACK TO op")
                    outcomes.append((write, None, _store_error(error)))
                else:
                    outcomes.append((write, result, None))
                conn.execute("RELEASE op")
            self._commit(conn)
        except sqlite3.Error as error:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            failure = StoreUnavailable(f"sqlite store {self.path}: transaction not committed: {error}")
            outcomes = [(w, None, failure) for w in writes]
        except BaseException as error:  # not ours to handle, but first answer this batch's writers
            _settle([(w, None, StoreUnavailable(f"sqlite writer stopped: {error!r}")) for w in writes])
            raise
        _settle(outcomes)

    def _commit(self, conn: sqlite3.Connection) -> None:
        # A method of its own so that a test can make the commit fail.
        conn.execute("COMMIT")

    # --- writes -----------------------------------------------------------------------------------

    def append_events(self, topic: str, stream_id: str, events: list[Event]) -> Awaitable[int]:
        now = time.time()

        def apply(conn: sqlite3.Connection) -> int:
            key = _ensure_stream(conn, topic, stream_id)
            conn.executemany(
                "INSERT INTO events (stream, timestamp, id, value, tags) VALUES (?, ?, ?, ?, ?)",
                [(key, e.timestamp, e.id, e.value, _dumps(e.tags) if e.tags else None) for e in events],
            )
            _touch(conn, key, now, [e.timestamp for e in events], events=len(events))
            return len(events)

        return self._submit(apply)

    def append_parameter_data(self, topic: str, stream_id: str, data: ParameterData) -> Awaitable[int]:
        now = time.time()

        def apply(conn: sqlite3.Connection) -> int:
            key = _ensure_stream(conn, topic, stream_id)
            conn.executemany(
                "INSERT INTO parameter_rows (stream, timestamp, row_values) VALUES (?, ?, ?)",
                [(key, timestamp, _dumps(values)) for timestamp, values in split_rows(data)],
            )
            _touch(conn, key, now, data.timestamps, rows=data.rows)
            return data.rows

        return self._submit(apply)

    def put_properties(
        self, topic: str, stream_id: str, properties: StreamProperties, *, reopen: bool = True
    ) -> Awaitable[StreamInfo]:
        now, encoded = time.time(), _dumps(properties.to_json())

        def apply(conn: sqlite3.Connection) -> StreamInfo:
            key = _ensure_stream(conn, topic, stream_id)
            conn.execute("UPDATE streams SET properties = ? WHERE key = ?", (encoded, key))
            _touch(conn, key, now, (), reopen=reopen)
            return _stream_info(conn, key)

        return self._submit(apply)

    def close_stream(self, topic: str, stream_id: str) -> Awaitable[StreamInfo]:
        now = time.time()

        def apply(conn: sqlite3.Connection) -> StreamInfo:
            key = _ensure_stream(conn, topic, stream_id, status="closed")
            conn.execute("UPDATE streams SET status = 'closed' WHERE key = ?", (key,))
            _touch(conn, key, now, (), reopen=False)
            return _stream_info(conn, key)

        return self._submit(apply)

    def set_definitions(
        self, topic: str, stream_id: str, kind: DefinitionKind, definitions: list[dict[str, Any]]
    ) -> Awaitable[StreamInfo]:
        column = {"events": "event_definitions", "parameters": "parameter_definitions"}.get(kind)
        now, encoded = time.time(), _dumps(definitions)

        def apply(conn: sqlite3.Connection) -> StreamInfo:
            if column is None:
                raise ValueError(f"unknown definition kind {kind!r}")
            key = _ensure_stream(conn, topic, stream_id)
            conn.execute(f"UPDATE streams SET {column} = ? WHERE key = ?", (encoded, key))
            _touch(conn, key, now, (), reopen=False)
            return _stream_info(conn, key)

        return self._submit(apply)

    # --- reads ------------------------------------------------------------------------------------

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

    async def read_events(
        self,
        topic: str,
        stream_id: str,
        *,
        from_ts: int | None = None,
        to_ts: int | None = None,
        limit: int = 1000,
        after: str | None = None,
    ) -> Page[Event]:
        params = _page_params(topic, stream_id, from_ts, to_ts, limit, after)

        def query(conn: sqlite3.Connection) -> Page[Event]:
            rows = conn.execute(_page_sql("events", "id, timestamp, value, tags"), params).fetchall()
            items = [Event(id, ts, value, json.loads(tags) if tags else {}) for _, id, ts, value, tags in rows]
            return _to_page(rows, items, limit)

        return await self._read(query)

    async def read_parameter_data(
        self,
        topic: str,
        stream_id: str,
        *,
        from_ts: int | None = None,
        to_ts: int | None = None,
        limit: int = 1000,
        after: str | None = None,
    ) -> Page[ParameterData]:
        params = _page_params(topic, stream_id, from_ts, to_ts, limit, after)

        def query(conn: sqlite3.Connection) -> Page[ParameterData]:
            rows = conn.execute(_page_sql("parameter_rows", "timestamp, row_values"), params).fetchall()
            page = _to_page(rows, rows, limit)
            return Page([join_rows((ts, json.loads(values)) for _, ts, values in page.items)], page.next_cursor)

        return await self._read(query)


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
        if future.done():  # cancelled by its caller; the write happened anyway
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


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
    topic, stream_id, properties, status, events, rows, first, last, activity, event_defs, parameter_defs = row
    p = json.loads(properties)
    return StreamInfo(
        topic=topic,
        stream_id=stream_id,
        properties=StreamProperties(
            name=p.get("name"),
            location=p.get("location"),
            metadata=p.get("metadata") or {},
            parents=p.get("parents") or [],
            time_of_recording=p.get("timeOfRecording"),
        ),
        status=status,
        events=events,
        parameter_rows=rows,
        first_timestamp=first,
        last_timestamp=last,
        last_activity=activity,
        event_definitions=json.loads(event_defs),
        parameter_definitions=json.loads(parameter_defs),
    )


def _page_params(
    topic: str, stream_id: str, from_ts: int | None, to_ts: int | None, limit: int, after: str | None
) -> dict[str, Any]:
    check_limit(limit)  # validated here, on the caller's side, so bad input raises ValueError
    return {
        "topic": topic,
        "stream_id": stream_id,
        "after": decode_cursor(after),
        "from_ts": from_ts,
        "to_ts": to_ts,
        "fetch": limit + 1,  # one more than asked tells whether a next page exists
    }


def _page_sql(table: str, columns: str) -> str:
    return (
        f"SELECT seq, {columns} FROM {table} WHERE stream = {_STREAM_KEY} AND seq > :after"
        " AND (:from_ts IS NULL OR timestamp >= :from_ts) AND (:to_ts IS NULL OR timestamp < :to_ts)"
        " ORDER BY seq LIMIT :fetch"
    )


def _to_page(rows: list[Any], items: list[T], limit: int) -> Page[T]:
    if len(rows) > limit:
        return Page(items[:limit], encode_cursor(rows[limit - 1][0]))
    return Page(items, None)
