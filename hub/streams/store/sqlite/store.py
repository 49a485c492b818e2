"""The sqlite store: one file in WAL mode (schema.py), written by one thread in group commits
(group_commit.py), read by another.

Write path: a write call builds an operation (a function of the connection; for events and
parameter rows a `DataWrite`, applied together with the others of its transaction: data_writes.py)
and submits it at once, so writes are ordered at call time. The group-commit writer runs every
operation queued while the previous transaction was committing in one transaction (`_apply`, which
also does the retention work due before or after them) and commits once. A failing operation fails alone: the writer then redoes
that batch one operation a transaction. The writer's queue has no bound of its own: every caller
awaits its writes and bounds what it keeps in flight (a SignalR connection stops being read at
--max-invocations-per-connection, a streamed write keeps STREAM_WRITE_WINDOW writes in flight, an
HTTP request awaits its one write).

Read path: a second connection, used only from one reader thread, so the event loop never waits on
the disk. In WAL mode readers never block the writer and see every committed transaction.

Live changes are published on the event loop when a transaction's futures are resolved, i.e. after
its COMMIT returned, in queue order. Retention (trim.py) runs as an operation on the writer thread.

See protocol-notes/stream-store.md for the schema, and for why `synchronous` defaults to FULL.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable, TypeVar

from ...models import Event, Page, ParameterData, QuarantinedRow, ReadWindow, StreamInfo, StreamProperties
from ...models import TopicSummary
from ..base import DefinitionKind, IdempotencyRecord, StoreUnavailable, StreamStore
from ..broadcast import DEFAULT_MAX_PENDING, Change, ChangeBroadcast, ChangeKind, ChangeSubscription
from ..cursor import decode_cursor, encode_cursor
from ..encoding import dumps_text, stream_info
from ..parameter_rows import join_rows
from ..retention import KEEP_EVERYTHING, Retention, trim_every
from .blocks import decode_events, decode_parameter_rows, event_timestamp, parse_block_cursor, read_page, row_timestamp
from .data_writes import DataWrite, DataWriteBatch
from .group_commit import GroupCommitWriter, Then
from .schema import check_synchronous, close_connections, open_connections
from .streams_table import INFO_COLUMNS, OpenStreamKeys, ensure_stream, read_info, touch
from .trim import Trimmer

T = TypeVar("T")

#: Streams each in-process cache of the store remembers at most (~300-400 B an entry); see
#: OpenStreamKeys and Trimmer.touched for what happens at the bound.
MAX_CACHED_STREAMS = 10_000

Operation = Callable[[sqlite3.Connection], Any]  # one write, run on the writer thread


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
        level = check_synchronous(synchronous)
        if max_cached_streams < 1:
            raise ValueError(f"max_cached_streams must be at least 1, not {max_cached_streams!r}")
        self.path = path
        self.synchronous = level
        self.writer: GroupCommitWriter[Operation | DataWrite] = GroupCommitWriter(
            self._apply, name=f"sqlite store {path}", unavailable=StoreUnavailable, rolled_back=self._rolled_back
        )
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-read")
        self._write_conn: sqlite3.Connection | None = None
        self._read_conn: sqlite3.Connection | None = None
        self.retention = retention
        self.trim_interval = trim_interval
        self.changes = ChangeBroadcast()
        self._trim_task: asyncio.Task[None] | None = None
        self.max_cached_streams = max_cached_streams
        self._trimmer = Trimmer(retention, max_touched=max_cached_streams)  # writer thread
        self._open_streams = OpenStreamKeys(max_cached_streams)  # writer thread

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        self._write_conn, self._read_conn = await asyncio.to_thread(open_connections, self.path, self.synchronous)
        self._trimmer.started()  # a restart must trim streams written before it
        self.writer.start(self._write_conn)
        self._trim_task = asyncio.create_task(trim_every(self, self.trim_interval))

    async def close(self) -> None:
        if self._trim_task is not None:
            self._trim_task.cancel()
            try:
                await self._trim_task
            except asyncio.CancelledError:
                pass
            self._trim_task = None
        await self.writer.close()
        await asyncio.to_thread(self._reader.shutdown, True)
        await asyncio.to_thread(close_connections, self._write_conn, self._read_conn)
        self._write_conn = self._read_conn = None
        self.changes.close()

    # --- the writer thread ------------------------------------------------------------------------

    def _apply(self, conn: sqlite3.Connection, writes: list[Operation | DataWrite]) -> list[Any]:
        """One transaction's writes, with the retention work due before and after them. Data writes
        are applied together (data_writes.py): flushed before anything else runs."""
        trimmer = self._trimmer
        trimmer.began()
        data = DataWriteBatch(self._open_streams)
        results: list[Any] = []
        counting = trimmer.counts_written()  # count retention: what each write touches is remembered
        try:
            for write in writes:
                if counting and trimmer.trim_due():
                    data.flush(conn)
                    trimmer.trim_counts(conn)
                if type(write) is DataWrite:
                    key = data.add(conn, write)
                    if counting:
                        trimmer.written(key)
                    results.append(write)  # its own result: DataWrite.after_commit, .outcome
                else:
                    data.flush(conn)
                    results.append(write(conn))  # type: ignore[operator]
            data.flush(conn)
            trimmer.after_writes(conn)
        except sqlite3.OperationalError as error:
            # Disk full, I/O errors, a locked file: the client may retry. Anything else is a bug; keep it.
            raise StoreUnavailable(str(error)) from error
        return results

    def _rolled_back(self) -> None:
        self._open_streams.clear()  # it may hold a stream the rollback unmade
        self._trimmer.rolled_back()

    def observe_commits(self, observe: Callable[[float], None]) -> None:
        self.writer.on_commit = observe

    # --- writes -----------------------------------------------------------------------------------

    def append_events(self, topic: str, stream_id: str, events: list[Event]) -> Awaitable[int]:
        return self.writer.submit(DataWrite(topic, stream_id, time.time(), self.changes, events))  # positional: every write

    def append_parameter_data(self, topic: str, stream_id: str, data: ParameterData) -> Awaitable[int]:
        return self.writer.submit(DataWrite(topic, stream_id, time.time(), self.changes, parameter_data=data))

    def _publish_stream(self, info: StreamInfo) -> None:
        if self.changes.wants(info.topic, info.stream_id):
            # a copy: the writer's caller gets `info` itself and may change it
            self.changes.publish(Change(ChangeKind.STREAM, info.topic, info.stream_id, info=info.copy()))

    def put_properties(
        self, topic: str, stream_id: str, properties: StreamProperties, *, reopen: bool = True
    ) -> Awaitable[StreamInfo]:
        now, encoded = time.time(), dumps_text(properties.to_json())

        def apply(conn: sqlite3.Connection) -> Then:
            key = ensure_stream(conn, topic, stream_id)
            conn.execute("UPDATE streams SET properties = ? WHERE key = ?", (encoded, key))
            touch(conn, key, now, reopen=reopen)
            info = read_info(conn, key)
            return Then(info, lambda: self._publish_stream(info))

        return self.writer.submit(apply)

    def close_stream(self, topic: str, stream_id: str) -> Awaitable[StreamInfo]:
        now = time.time()

        def apply(conn: sqlite3.Connection) -> Then:
            self._open_streams.closed(topic, stream_id)
            key = ensure_stream(conn, topic, stream_id, status="closed")
            conn.execute("UPDATE streams SET status = 'closed' WHERE key = ?", (key,))
            touch(conn, key, now, reopen=False)
            info = read_info(conn, key)
            return Then(info, lambda: self._publish_stream(info))

        return self.writer.submit(apply)

    def set_definitions(
        self, topic: str, stream_id: str, kind: DefinitionKind, definitions: list[dict[str, Any]]
    ) -> Awaitable[StreamInfo]:
        column = {DefinitionKind.EVENTS: "event_definitions", DefinitionKind.PARAMETERS: "parameter_definitions"}.get(kind)
        now, encoded = time.time(), dumps_text(definitions)

        def apply(conn: sqlite3.Connection) -> Then:
            if column is None:
                raise ValueError(f"unknown definition kind {kind!r}")
            key = ensure_stream(conn, topic, stream_id)
            conn.execute(f"UPDATE streams SET {column} = ? WHERE key = ?", (encoded, key))
            touch(conn, key, now, reopen=False)
            info = read_info(conn, key)
            return Then(info, lambda: self._publish_stream(info))

        return self.writer.submit(apply)

    def append_quarantine(self, topic: str, rows: list[QuarantinedRow]) -> Awaitable[int]:
        values = [(topic, r.stream_id, r.line, r.reason, r.raw, r.received_at) for r in rows]

        def apply(conn: sqlite3.Connection) -> int:
            conn.executemany(
                "INSERT INTO quarantine (topic, stream_id, line, reason, raw, received_at) VALUES (?, ?, ?, ?, ?, ?)",
                values,
            )
            return len(values)

        return self.writer.submit(apply)

    # --- reads ------------------------------------------------------------------------------------

    async def read_quarantine(
        self, topic: str, window: ReadWindow = ReadWindow(), newest_first: bool = False
    ) -> Page[QuarantinedRow]:
        limit = window.limit
        after = decode_cursor(window.after)
        if newest_first:  # a cursor continues with the rows before it
            params = {"topic": topic, "before": 2**63 - 1 if window.after is None else after, "fetch": limit + 1}
            where = "seq < :before ORDER BY seq DESC"
        else:
            params = {"topic": topic, "after": after, "fetch": limit + 1}
            where = "seq > :after ORDER BY seq"

        def query(conn: sqlite3.Connection) -> Page[QuarantinedRow]:
            rows = conn.execute(
                "SELECT seq, stream_id, line, reason, raw, received_at FROM quarantine"
                f" WHERE topic = :topic AND {where} LIMIT :fetch",
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
            sql = f"SELECT {INFO_COLUMNS} FROM streams WHERE topic = ? ORDER BY key"
            return [stream_info(*row) for row in conn.execute(sql, (topic,)).fetchall()]

        return await self._read(query)

    async def get_stream(self, topic: str, stream_id: str) -> StreamInfo | None:
        def query(conn: sqlite3.Connection) -> StreamInfo | None:
            sql = f"SELECT {INFO_COLUMNS} FROM streams WHERE topic = ? AND stream_id = ?"
            row = conn.execute(sql, (topic, stream_id)).fetchone()
            return None if row is None else stream_info(*row)

        return await self._read(query)

    async def read_events(self, topic: str, stream_id: str, window: ReadWindow = ReadWindow()) -> Page[Event]:
        after = parse_block_cursor(window.after)  # on the caller's side, so a bad cursor raises ValueError

        def query(conn: sqlite3.Connection) -> Page[Event]:
            return read_page(conn, "event_blocks", topic, stream_id, window, after, decode_events, event_timestamp, list)

        return await self._read(query)

    async def read_parameter_data(
        self, topic: str, stream_id: str, window: ReadWindow = ReadWindow()
    ) -> Page[ParameterData]:
        after = parse_block_cursor(window.after)

        def query(conn: sqlite3.Connection) -> Page[ParameterData]:
            return read_page(
                conn, "parameter_blocks", topic, stream_id, window, after, decode_parameter_rows, row_timestamp, _parameter_data
            )

        return await self._read(query)

    # --- live changes -----------------------------------------------------------------------------

    async def subscribe(
        self, topic: str | None = None, stream_id: str | None = None, *, max_pending: int = DEFAULT_MAX_PENDING
    ) -> ChangeSubscription:
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

        return self.writer.submit(apply)

    def finish_idempotency(
        self, scope: str, key: str, fingerprint: str, status: int, body: bytes, ttl: float
    ) -> Awaitable[None]:
        def apply(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO idempotency (scope, key, fingerprint, status, body, expires) VALUES (?, ?, ?, ?, ?, ?)",
                (scope, key, fingerprint, status, body, time.time() + ttl),
            )

        return self.writer.submit(apply)

    def release_idempotency(self, scope: str, key: str, fingerprint: str, attempt: str = "") -> Awaitable[None]:
        def apply(conn: sqlite3.Connection) -> None:
            conn.execute(
                "DELETE FROM idempotency WHERE scope = ? AND key = ? AND fingerprint = ? AND status IS NULL AND body = ?",
                (scope, key, fingerprint, attempt.encode()),
            )

        return self.writer.submit(apply)

    # --- retention --------------------------------------------------------------------------------

    def cache_sizes(self) -> dict[str, int]:
        return {"open streams": len(self._open_streams), "touched streams": len(self._trimmer.touched)}

    async def trim(self, now: float | None = None) -> None:
        """One retention pass, as an operation on the writer thread (between two transactions'
        worth of writes; the deletes commit like any write)."""
        at = time.time() if now is None else now
        await self.writer.submit(lambda conn: self._trimmer.run_pass(conn, at))


# --- helpers run on the reader thread -------------------------------------------------------------

def _parameter_data(items: list[list[Any]]) -> list[ParameterData]:
    return [join_rows((timestamp, values) for timestamp, values in items)]


def _to_page(rows: list[Any], items: list[T], limit: int) -> Page[T]:
    if len(rows) > limit:
        last = encode_cursor(rows[limit - 1][0])
        return Page(items[:limit], last, last)
    return Page(items, None, encode_cursor(rows[-1][0]) if rows else None)
