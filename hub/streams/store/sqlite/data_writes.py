"""Data writes (events, parameter rows) as the sqlite writer applies them: not one by one, but the
consecutive data writes of a transaction together, so that their cost is paid per transaction:

- the rows of all of them go in together, in call order, so each row gets the seq it would have got
  alone (the writer thread is the file's only writer: a table's new seqs are consecutive, and one
  `last_insert_rowid()` after the insert gives them all). They go in as multi-row INSERTs of up to
  MAX_ROWS_PER_INSERT rows, not an `executemany`: one statement for many rows halves sqlite's CPU a
  row (one AUTOINCREMENT update a statement; figures in bench/RESULTS.md);
- each stream's counters are updated once (`touch`, summed), not once per write.

A write that makes or reopens a stream is flushed at once with those before it, so the stream state
it publishes is the one right after it, as if written alone. Anything else that reads or deletes
these rows (another operation, a count trim) runs after a `flush`: its owner calls it first.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from itertools import chain
from typing import Any

from ...models import Event, ParameterData, StreamInfo
from ..encoding import dumps_text
from ..parameter_rows import split_rows
from .streams_table import OpenStreamKeys, read_info, touch_many

#: Rows one INSERT statement carries at most. A flush of n rows runs n // MAX_ROWS_PER_INSERT full
#: statements, then one for each power of two in the rest: at most 9 statement texts a table, which
#: sqlite3's statement cache keeps prepared (256 rows × 5 columns is far below sqlite's variable limit).
MAX_ROWS_PER_INSERT = 256

_EVENT_COLUMNS = "events (stream, timestamp, id, value, tags)"
_PARAMETER_COLUMNS = "parameter_rows (stream, timestamp, row_values)"


@dataclass(slots=True, eq=False)
class DataWrite:
    """Events (`events`) or parameter rows (`parameter_data`) appended to one stream at `now`. The
    writer fills in `last` (the seq of its last row) and `info` (the stream's state, when this write
    made or reopened it)."""

    topic: str
    stream_id: str
    now: float
    events: list[Event] | None = None
    parameter_data: ParameterData | None = None
    last: int = 0
    info: StreamInfo | None = None

    @property
    def count(self) -> int:
        return len(self.events) if self.events is not None else self.parameter_data.rows  # type: ignore[union-attr]


class DataWriteBatch:
    """The data writes of one transaction not yet in the database (writer thread). `add` takes them
    in call order; `flush` inserts them and counts them. Nothing is kept after a flush, so a rollback
    leaves nothing here to forget."""

    def __init__(self, open_streams: OpenStreamKeys):
        self.open_streams = open_streams
        self._event_rows: list[tuple[Any, ...]] = []
        self._parameter_rows: list[tuple[Any, ...]] = []
        self._event_writes: list[DataWrite] = []
        self._parameter_writes: list[DataWrite] = []
        # stream key -> [events, rows, lowest timestamp, highest timestamp, time of the last write]
        self._counters: dict[int, list[Any]] = {}

    def add(self, conn: sqlite3.Connection, write: DataWrite) -> int:
        """Take `write`; its stream's key (made now if new)."""
        key, changed = self.open_streams.key_for_data_write(conn, write.topic, write.stream_id)
        events = write.events
        if events is not None:
            self._event_rows += [
                (key, e.timestamp, e.id, e.value, dumps_text(e.tags) if e.tags else None) for e in events
            ]
            self._event_writes.append(write)
            timestamps: list[int] = [e.timestamp for e in events]
            n_events, n_rows = len(events), 0
        else:
            data = write.parameter_data
            assert data is not None
            self._parameter_rows += [(key, ts, dumps_text(values)) for ts, values in split_rows(data)]
            self._parameter_writes.append(write)
            timestamps = data.timestamps
            n_events, n_rows = 0, data.rows
        low, high = (min(timestamps), max(timestamps)) if timestamps else (None, None)
        counter = self._counters.get(key)
        if counter is None:
            self._counters[key] = [n_events, n_rows, low, high, write.now]
        else:
            counter[0] += n_events
            counter[1] += n_rows
            if low is not None:
                counter[2] = low if counter[2] is None else min(counter[2], low)
                counter[3] = high if counter[3] is None else max(counter[3], high)
            counter[4] = write.now  # the last write's time, as if each had set it in turn
        if changed:
            self.flush(conn)
            write.info = read_info(conn, key)
        return key

    def flush(self, conn: sqlite3.Connection) -> None:
        """Insert the rows taken so far, set each write's `last`, update each stream's counters once."""
        if self._event_writes:
            _insert(conn, _EVENT_COLUMNS, self._event_rows, self._event_writes)
            self._event_rows, self._event_writes = [], []
        if self._parameter_writes:
            _insert(conn, _PARAMETER_COLUMNS, self._parameter_rows, self._parameter_writes)
            self._parameter_rows, self._parameter_writes = [], []
        if self._counters:
            touch_many(conn, self._counters.items())
            self._counters = {}


def _insert(conn: sqlite3.Connection, table: str, rows: list[tuple[Any, ...]], writes: list[DataWrite]) -> None:
    if not rows:
        return  # writes of nothing: no seq to give (their `last` is not read)
    width = len(rows[0])
    values = list(chain.from_iterable(rows))
    start = 0
    for size in _statement_sizes(len(rows)):
        end = start + size * width
        conn.execute(_insert_sql(table, size, width), values[start:end])
        start = end
    last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
    for write in reversed(writes):  # consecutive seqs, in call order: count back from the last
        write.last = last
        last -= write.count


def _statement_sizes(rows: int) -> list[int]:
    """How many rows each INSERT of a flush of `rows` rows carries (see MAX_ROWS_PER_INSERT)."""
    full, rest = divmod(rows, MAX_ROWS_PER_INSERT)
    sizes = [MAX_ROWS_PER_INSERT] * full
    bit = MAX_ROWS_PER_INSERT // 2
    while bit:
        if rest & bit:
            sizes.append(bit)
        bit //= 2
    return sizes


_INSERT_SQL: dict[tuple[str, int], str] = {}  # at most 2 tables × 9 sizes (MAX_ROWS_PER_INSERT)


def _insert_sql(table: str, size: int, width: int) -> str:
    sql = _INSERT_SQL.get((table, size))
    if sql is None:
        row = "(" + ", ".join("?" * width) + ")"
        sql = _INSERT_SQL[(table, size)] = f"INSERT INTO {table} VALUES " + ", ".join([row] * size)
    return sql
