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
from dataclasses import dataclass
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
    items: list[Any]  # Events, or [timestamp, values] parameter rows
    low: int
    high: int
    seq: int = 0


class _Stream:
    """A stream's share of the writes taken since the last flush: its key, its open block in each
    table, the time of its last write (the counters are summed from its blocks at the flush)."""

    __slots__ = ("key", "now", "open")

    def __init__(self, key: int, now: float):
        self.key = key
        self.open: list[_Block | None] = [None, None]  # by table
        self.now = now


@dataclass(slots=True, eq=False)
class DataWrite(AfterCommit):
    """Events (`events`) or parameter rows (`parameter_data`) appended to one stream at `now`. Its
    own result once committed (`after_commit`: publish it on `feed`; `outcome`: its count). The writer
    fills in where its items went (`block`, the index of its first item there, `more`: the blocks
    its items continued into, if they did not fit) and `info` (the stream's state, when this write
    made or reopened it)."""

    topic: str
    stream_id: str
    now: float
    feed: ChangeBroadcast
    events: list[Event] | None = None
    parameter_data: ParameterData | None = None
    block: _Block | None = None
    first: int = 0
    more: list[_Block] | None = None
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
        """Its items' cursors: from `first` in `block`, then from 0 in each of `more` (a write is
        split only where a block is full)."""
        cursors: list[str] = []
        left, block, index = self.count, self.block, self.first
        following = iter(self.more or ())
        while left:
            assert block is not None
            taken = min(left, MAX_BLOCK_ITEMS - index)
            cursors += [block_cursor(block.seq, i) for i in range(index, index + taken)]
            left -= taken
            if left:
                block, index = next(following), 0
        return cursors

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
    rollback leaves nothing here to forget.

    `add` is the writer's per-write work, so the usual write (a stream already seen since the last
    flush, items that fit its open block) takes a few steps: everything per stream (its key, its
    counters) is done once a flush."""

    def __init__(self, open_streams: OpenStreamKeys):
        self.open_streams = open_streams
        self._streams: dict[tuple[str, str], _Stream] = {}  # since the last flush, by (topic, stream id)
        self._new: tuple[list[_Block], list[_Block]] = ([], [])  # to insert, in the order they were begun

    def add(self, conn: sqlite3.Connection, write: DataWrite) -> int:
        """Take `write`; its stream's key (made now if new)."""
        if write.block is not None or write.info is not None:  # applied before, in a transaction rolled back since
            write.block, write.more, write.info = None, None, None
        stream = self._streams.get((write.topic, write.stream_id))
        changed = False
        if stream is None:
            key, changed = self.open_streams.key_for_data_write(conn, write.topic, write.stream_id)
            stream = self._streams[write.topic, write.stream_id] = _Stream(key, write.now)
        else:
            stream.now = write.now  # the last write's time, as if each had set it in turn
        events = write.events
        if events is not None:
            if events:  # one event (the usual invocation) needs no list of its one timestamp
                timestamps = None if len(events) == 1 else [e.timestamp for e in events]
                self._place(stream, _EVENTS, events, timestamps, write)
        else:
            data = write.parameter_data
            assert data is not None
            if data.rows:
                rows = [[ts, values] for ts, values in split_rows(data)]
                self._place(stream, _PARAMETERS, rows, data.timestamps, write)
        if changed:
            self.flush(conn)
            write.info = read_info(conn, stream.key)
        return stream.key

    def _place(
        self, stream: _Stream, table: int, items: list[Any], timestamps: list[int] | None, write: DataWrite
    ) -> None:
        """Append `items` to the stream's open block, beginning new ones at MAX_BLOCK_ITEMS
        (`timestamps`: the items', or None for a single event)."""
        block = stream.open[table]
        if block is not None and len(block.items) + len(items) <= MAX_BLOCK_ITEMS:  # it fits: the usual case
            if timestamps is None:
                low = high = items[0].timestamp
            else:
                low, high = min(timestamps), max(timestamps)
            write.block, write.first = block, len(block.items)
            block.items += items
            if low < block.low:
                block.low = low
            if high > block.high:
                block.high = high
            return
        if timestamps is None:
            timestamps = [items[0].timestamp]
        start = 0
        while start < len(items):
            if block is None or len(block.items) >= MAX_BLOCK_ITEMS:
                block = stream.open[table] = _Block(stream.key, [], timestamps[start], timestamps[start])
                self._new[table].append(block)
            end = start + MAX_BLOCK_ITEMS - len(block.items)
            part, stamps = items[start:end], timestamps[start:end]
            if start == 0:
                write.block, write.first = block, len(block.items)
            else:
                write.more = [*(write.more or ()), block]
            block.items += part
            block.low, block.high = min(block.low, *stamps), max(block.high, *stamps)
            start += len(part)

    def flush(self, conn: sqlite3.Connection) -> None:
        """Insert the blocks begun so far (their writes then know their seqs), update each stream's
        counters once: its items and timestamps summed from its blocks, the time of its last write."""
        if not self._streams:
            return
        counters: dict[int, list[Any]] = {s.key: [0, 0, None, None, s.now] for s in self._streams.values()}
        for table in (_EVENTS, _PARAMETERS):
            blocks = self._new[table]
            if not blocks:
                continue
            _insert(conn, table, blocks)
            for block in blocks:
                counter = counters[block.key]
                counter[table] += len(block.items)  # events, or parameter rows
                counter[2] = block.low if counter[2] is None else min(counter[2], block.low)
                counter[3] = block.high if counter[3] is None else max(counter[3], block.high)
            blocks.clear()
        self._streams = {}
        touch_many(conn, counters.items())


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
