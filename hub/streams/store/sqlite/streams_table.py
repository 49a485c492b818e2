"""The `streams` table as the writer uses it: a stream's key (made on its first write), its counters,
its info; and the open-stream cache, which spares a data write the key lookup."""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from typing import Any, Iterable

from ...models import StreamInfo, StreamStatus
from ..encoding import stream_info
from .multirow import MultiRow, values_list

INFO_COLUMNS = (
    "topic, stream_id, properties, status, events, parameter_rows, first_timestamp, last_timestamp,"
    " last_activity, event_definitions, parameter_definitions"
)


def ensure_stream(conn: sqlite3.Connection, topic: str, stream_id: str, status: StreamStatus = "open") -> int:
    """The stream's key; a new stream is made with `status`."""
    row = conn.execute("SELECT key FROM streams WHERE topic = ? AND stream_id = ?", (topic, stream_id)).fetchone()
    if row is not None:
        return int(row[0])
    cursor = conn.execute("INSERT INTO streams (topic, stream_id, status) VALUES (?, ?, ?)", (topic, stream_id, status))
    return int(cursor.lastrowid)  # type: ignore[arg-type]


def _touch(rows: int) -> str:
    """Count writes to `rows` streams at once: values (key, events, rows, lowest timestamp or NULL,
    highest timestamp or NULL, time of the last write, reopen) a stream, each key once."""
    return f"""
UPDATE streams SET
    events = events + c.column2,
    parameter_rows = parameter_rows + c.column3,
    first_timestamp = coalesce(min(first_timestamp, c.column4), first_timestamp, c.column4),
    last_timestamp = coalesce(max(last_timestamp, c.column5), last_timestamp, c.column5),
    last_activity = c.column6,
    status = CASE WHEN c.column7 THEN 'open' ELSE status END
FROM (VALUES {values_list(7, rows)}) AS c
WHERE streams.key = c.column1
"""


_TOUCH = MultiRow(_touch, 7, 64)


def touch(conn: sqlite3.Connection, key: int, now: float, *, reopen: bool) -> None:
    """A write that adds no data (properties, definitions, a close): the stream's time; reopen it if asked."""
    _TOUCH.run(conn, [(key, 0, 0, None, None, now, reopen)])


def touch_many(conn: sqlite3.Connection, counters: Iterable[tuple[int, list[Any]]]) -> None:
    """Count data writes, one UPDATE for up to 64 streams (multirow.py): (key, [events, rows, lowest
    timestamp or None, highest timestamp or None, time of the last write]) pairs, each key once; each
    stream is reopened."""
    _TOUCH.run(conn, [(key, *counter, True) for key, counter in counters])


def read_info(conn: sqlite3.Connection, key: int) -> StreamInfo:
    return stream_info(*conn.execute(f"SELECT {INFO_COLUMNS} FROM streams WHERE key = ?", (key,)).fetchone())


def every_stream_key(conn: sqlite3.Connection, chunk: int = 1000) -> Iterable[int]:
    """Every stream's key, read a chunk at a time so that memory does not grow with the streams."""
    after = 0
    while True:
        keys = [k for (k,) in conn.execute("SELECT key FROM streams WHERE key > ? ORDER BY key LIMIT ?", (after, chunk))]
        yield from keys
        if len(keys) < chunk:
            return
        after = keys[-1]


class OpenStreamKeys:
    """Streams a data write left open, by (topic, stream id) -> key (writer thread): a data write to
    one of them needs no SELECT first.

    Filled as writes are applied, before their commit, so its owner clears it whenever a transaction
    is rolled back (a write in it may have made the stream); an entry is dropped when its stream is
    closed. Bound: `bound` entries, the least recently written first out; a write to an evicted
    stream looks its key up again (one SELECT)."""

    def __init__(self, bound: int):
        self.bound = bound
        self._keys: OrderedDict[tuple[str, str], int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def key_for_data_write(self, conn: sqlite3.Connection, topic: str, stream_id: str) -> tuple[int, bool]:
        """The stream's key, and whether this data write makes or reopens it (it then stays open)."""
        keys, name = self._keys, (topic, stream_id)
        key = keys.get(name)
        if key is not None:
            keys.move_to_end(name)
            return key, False
        row = conn.execute("SELECT key, status FROM streams WHERE topic = ? AND stream_id = ?", (topic, stream_id)).fetchone()
        if row is not None:
            key, changed = int(row[0]), row[1] == "closed"
        else:
            key, changed = ensure_stream(conn, topic, stream_id), True
        keys[name] = key
        if len(keys) > self.bound:
            keys.popitem(last=False)  # the least recently written: its next write SELECTs its key
        return key, changed

    def closed(self, topic: str, stream_id: str) -> None:
        self._keys.pop((topic, stream_id), None)

    def clear(self) -> None:
        self._keys.clear()
