"""Data writes (events, parameter rows) as the sqlite writer applies them, and the blocks they are
kept in.

A block is one row of `event_blocks` or `parameter_blocks`: items of one stream, in arrival order, as
one JSON array (blocks.py). The consecutive data writes of a transaction to a stream share one block
(up to MAX_BLOCK_ITEMS items), so what the database pays per row (a B-tree insert, its index entry,
binding each column) is paid per stream and transaction, not per event. Per transaction, then:

- each stream's writes are appended to its open block, in call order; the blocks go in as multi-row
  INSERTs (multirow.py), and the last one's rowid gives every block its seq (the writer thread is the
  file's only writer: a table's new seqs are consecutive);
- each stream's counters are updated once (`touch_many`: one UPDATE for all of them), not once per write.

A write that makes or reopens a stream is flushed at once with those before it, so the stream state
it publishes is the one right after it, as if written alone. Anything else that reads or deletes
these rows (another operation, a count trim) runs after a `flush`: its owner calls it first. After a
flush a stream's next write starts a new block: a stored block is never appended to.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from ...models import Event, ParameterData, StreamInfo
from ..broadcast import Change, ChangeBroadcast, ChangeKind
from ..parameter_rows import split_rows
from .blocks import MAX_BLOCK_ITEMS, block_cursor, encode_block
from .group_commit import AfterCommit
from .multirow import MultiRow, values_list
from .streams_table import OpenStreamKeys, read_info, touch_many

#: Blocks one INSERT statement carries at most (multirow.py; 64 rows x 5 columns is far below
#: sqlite's limit on variables).
MAX_BLOCKS_PER_INSERT = 64

_TABLES = ("event_blocks (stream, count, low, high, data)", "parameter_blocks (stream, count, low, high, data)")
_EVENTS, _PARAMETERS = 0, 1


@dataclass(slots=True, eq=False)
class _Block:
    """A block being filled in this transaction: its stream, items, timestamps' range; its seq once
    inserted."""

    key: int
    items: list[Any] = field(default_factory=list)  # Events, or [timestamp, values] parameter rows
    low: int = 0
    high: int = 0
    seq: int = 0


@dataclass(slots=True, eq=False)
class DataWrite(AfterCommit):
    """Events (`events`) or parameter rows (`parameter_data`) appended to one stream at `now`. Its
    own result once committed (`after_commit`: publish it on `feed`; `outcome`: its count). The writer
    fills in `placed` (where its items went: (block, first index, how many)) and `info` (the stream's
    state, when this write made or reopened it)."""

    topic: str
    stream_id: str
    now: float
    feed: ChangeBroadcast
    events: list[Event] | None = None
    parameter_data: ParameterData | None = None
    placed: list[tuple[_Block, int, int]] = field(default_factory=list)
    info: StreamInfo | None = None

    @property
    def count(self) -> int:
        return len(self.events) if self.events is not None else self.parameter_data.rows  # type: ignore[union-attr]

    def after_commit(self) -> None:
        """On the loop, after the commit: the stream's new state (made or reopened), then the data."""
        feed = self.feed
        if feed.count and feed.wants(self.topic, self.stream_id):
            self._publish(feed)

    def outcome(self) -> int:
        return self.count

    def cursors(self) -> list[str]:
        return [block_cursor(block.seq, i) for block, first, n in self.placed for i in range(first, first + n)]

    def _publish(self, feed: ChangeBroadcast) -> None:
        topic, stream_id = self.topic, self.stream_id
        if self.info is not None:
            feed.publish(Change(ChangeKind.STREAM, topic, stream_id, info=self.info))
        if self.count:
            cursors = self.cursors()
            if self.events is not None:
                feed.publish(Change(ChangeKind.EVENTS, topic, stream_id, events=list(self.events), cursors=cursors))
            else:
                data = self.parameter_data
                feed.publish(Change(ChangeKind.PARAMETERS, topic, stream_id, parameter_data=data, cursors=cursors))


class DataWriteBatch:
    """The data writes of one transaction not yet in the database (writer thread). `add` takes them
    in call order; `flush` inserts their blocks and counts them. Nothing is kept after a flush, so a
    rollback leaves nothing here to forget."""

    def __init__(self, open_streams: OpenStreamKeys):
        self.open_streams = open_streams
        self._open: tuple[dict[int, _Block], dict[int, _Block]] = ({}, {})  # by stream key, a table each
        self._new: tuple[list[_Block], list[_Block]] = ([], [])  # to insert, in the order they were begun
        # stream key -> [events, rows, lowest timestamp, highest timestamp, time of the last write]
        self._counters: dict[int, list[Any]] = {}

    def add(self, conn: sqlite3.Connection, write: DataWrite) -> int:
        """Take `write`; its stream's key (made now if new)."""
        if write.placed or write.info is not None:  # applied before, in a transaction rolled back since
            write.placed, write.info = [], None
        key, changed = self.open_streams.key_for_data_write(conn, write.topic, write.stream_id)
        events = write.events
        timestamps: list[int] | None = None
        if events is not None:
            # the Events themselves (never tracked by the collector): no object made per event here
            items: list[Any] = events
            table, n_events, n_rows = _EVENTS, len(events), 0
            if n_events == 1:  # the usual invocation: no list of one timestamp
                low = high = events[0].timestamp
            elif n_events:
                timestamps = [e.timestamp for e in events]
                low, high = min(timestamps), max(timestamps)
        else:
            data = write.parameter_data
            assert data is not None
            items = [[ts, values] for ts, values in split_rows(data)]
            table, n_events, n_rows = _PARAMETERS, 0, data.rows
            timestamps = data.timestamps
            if timestamps:
                low, high = min(timestamps), max(timestamps)
        if items:
            self._place(table, key, items, timestamps, low, high, write)
        else:
            low = high = None
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

    def _place(
        self, table: int, key: int, items: list[Any], timestamps: list[int] | None, low: int, high: int, write: DataWrite
    ) -> None:
        """Append `items` to the stream's open block, beginning new ones at MAX_BLOCK_ITEMS
        (`timestamps`: the items', or None for a single item of timestamp `low`)."""
        open_blocks = self._open[table]
        block = open_blocks.get(key)
        if block is not None and len(block.items) + len(items) <= MAX_BLOCK_ITEMS:  # the usual case
            write.placed.append((block, len(block.items), len(items)))
            block.items += items
            if low < block.low:
                block.low = low
            if high > block.high:
                block.high = high
            return
        if timestamps is None:
            timestamps = [low]
        start = 0
        while start < len(items):
            if block is None or len(block.items) >= MAX_BLOCK_ITEMS:
                block = open_blocks[key] = _Block(key, low=timestamps[start], high=timestamps[start])
                self._new[table].append(block)
            end = start + MAX_BLOCK_ITEMS - len(block.items)
            part, stamps = items[start:end], timestamps[start:end]
            write.placed.append((block, len(block.items), len(part)))
            block.items += part
            block.low, block.high = min(block.low, *stamps), max(block.high, *stamps)
            start += len(part)

    def flush(self, conn: sqlite3.Connection) -> None:
        """Insert the blocks begun so far (their writes' `placed` then carry their seqs), update each
        stream's counters once."""
        for table in (_EVENTS, _PARAMETERS):
            blocks = self._new[table]
            if blocks:
                _insert(conn, table, blocks)
                self._new[table].clear()
                self._open[table].clear()
        if self._counters:
            touch_many(conn, self._counters.items())
            self._counters = {}


def _insert(conn: sqlite3.Connection, table: int, blocks: list[_Block]) -> None:
    encode = encode_block(table == _EVENTS)
    cursor = _INSERTS[table].run(conn, [(b.key, len(b.items), b.low, b.high, encode(b.items)) for b in blocks])
    assert cursor is not None
    last = cursor.lastrowid
    for block in reversed(blocks):  # consecutive seqs, in the order begun: count back from the last
        block.seq = last
        last -= 1


_INSERTS = tuple(
    MultiRow(lambda n, columns=columns: f"INSERT INTO {columns} VALUES {values_list(5, n)}", 5, MAX_BLOCKS_PER_INSERT)
    for columns in _TABLES
)
