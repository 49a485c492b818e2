"""Blocks: how the sqlite store keeps events and parameter rows, as log stores keep record batches.

A block is one row of `event_blocks` or `parameter_blocks` (schema.py): the items one transaction
wrote to one stream (at most MAX_BLOCK_ITEMS), as one JSON array, with the lowest and highest
timestamp among them. An event is the JSON object msgspec makes of an `Event` (`{"id", "timestamp",
"value", "tags"}`): a block of events is encoded and decoded in one call each, with no object made
per event on the way (bench/RESULTS.md); a parameter row is `[timestamp, values]`
(parameter_rows.py). Items before a block's `first` were trimmed (count retention keeps exactly the
newest n of a stream, and a block is never rewritten for it).

A cursor is `<block seq>-<index in the block>`: blocks grow with arrival, so cursors order a stream's
items. A bare `<seq>` is a cursor of schema version 2 (a row a block: its migration keeps each row's
seq as the seq of a block of one) and continues after that whole block.

Reads here run on the reader thread; `trim_to` on the writer thread.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Callable, TypeVar

import msgspec

from ...models import Event, Page, ReadWindow
from ..encoding import dumps, loads

T = TypeVar("T")

#: Items a block holds at most: a larger write is split. Bounds what a page read decodes to continue
#: from a cursor in the middle of a block (one block, ~100 KB of JSON at most for common events).
MAX_BLOCK_ITEMS = 1024

_MAX_SEQ = 2**63 - 1
_WHOLE_BLOCK = _MAX_SEQ  # the index "after" which a bare (version 2) cursor continues


def block_cursor(seq: int, index: int) -> str:
    return f"{seq}-{index}"


def parse_block_cursor(cursor: str | None) -> tuple[int, int]:
    """(block seq, index) to continue after; (-1, -1) for None. ValueError for text this store did
    not make."""
    if cursor is None:
        return -1, -1
    if type(cursor) is not str or not cursor.isascii() or len(cursor) > 40:
        raise ValueError(f"not a cursor from this store: {cursor!r}")
    seq, dash, index = cursor.partition("-")
    if not seq.isdigit() or (dash and not index.isdigit()):
        raise ValueError(f"not a cursor from this store: {cursor!r}")
    position = int(seq), int(index) if dash else _WHOLE_BLOCK
    if position[0] > _MAX_SEQ or position[1] > _MAX_SEQ:
        raise ValueError(f"not a cursor from this store: {cursor!r}")
    return position


_EVENTS_ENCODER = msgspec.json.Encoder()
_EVENTS_DECODER = msgspec.json.Decoder(list[Event])


def encode_block(events: bool) -> Callable[[list[Any]], bytes]:
    """How a block's items are written: a list of Events (`events`) or of parameter rows."""
    return _EVENTS_ENCODER.encode if events else dumps


def decode_events(data: bytes | str) -> list[Event]:
    return _EVENTS_DECODER.decode(data)


def decode_parameter_rows(data: bytes | str) -> list[list[Any]]:
    return loads(data)


def event_timestamp(event: Event) -> int:
    return event.timestamp


def row_timestamp(row: list[Any]) -> int:
    return row[0]


_STREAM_KEY = "(SELECT key FROM streams WHERE topic = :topic AND stream_id = :stream_id)"


def read_page(
    conn: sqlite3.Connection, table: str, topic: str, stream_id: str, window: ReadWindow, after: tuple[int, int],
    decode: Callable[[Any], list[Any]], timestamp: Callable[[Any], int], make: Callable[[list[Any]], list[T]],
) -> Page[T]:
    """A page of a stream's items in `table` (`after`: the parsed window.after): `decode` reads a
    block's data, `timestamp` an item's, `make` turns the chosen items into what the page holds."""
    after_seq, after_index = after
    from_ts, to_ts, limit = window.from_ts, window.to_ts, window.limit
    rows = conn.execute(
        f"SELECT seq, first, data FROM {table} WHERE stream = {_STREAM_KEY} AND seq >= :after"
        " AND (:from_ts IS NULL OR high >= :from_ts) AND (:to_ts IS NULL OR low < :to_ts) ORDER BY seq",
        {"topic": topic, "stream_id": stream_id, "after": after_seq, "from_ts": from_ts, "to_ts": to_ts},
    )
    wanted = limit + 1  # one more than asked tells whether a next page exists
    items: list[Any] = []
    marks: list[tuple[int, int, Any]] = []  # (items taken so far, block seq, indices of its items taken)
    try:
        for seq, first, data in rows:
            decoded = decode(data)
            start = max(first, after_index + 1) if seq == after_seq else first
            if from_ts is None and to_ts is None:
                indices: Any = range(start, min(len(decoded), start + wanted - len(items)))
                items += decoded[indices.start : indices.stop]
            else:
                indices = [
                    i for i in range(start, len(decoded))
                    if (from_ts is None or timestamp(decoded[i]) >= from_ts) and (to_ts is None or timestamp(decoded[i]) < to_ts)
                ][: wanted - len(items)]
                items += [decoded[i] for i in indices]
            if len(indices):
                marks.append((len(items), seq, indices))
            if len(items) >= wanted:
                break
    finally:
        rows.close()
    if len(items) > limit:
        cursor = _cursor_at(marks, limit - 1)
        return Page(make(items[:limit]), cursor, cursor)
    return Page(make(items), None, _cursor_at(marks, len(items) - 1) if items else None)


def _cursor_at(marks: list[tuple[int, int, Any]], position: int) -> str:
    """The cursor of the page's item at `position`."""
    for taken, seq, indices in marks:
        if position < taken:
            return block_cursor(seq, indices[position - (taken - len(indices))])
    raise IndexError(position)


def trim_to(conn: sqlite3.Connection, table: str, key: int, keep: int) -> None:
    """Keep the newest `keep` items of stream `key` in `table`: older blocks are deleted, and the
    block holding the oldest kept item hides those before it (`first`)."""
    found = None
    kept = 0
    newest_first = conn.execute(f"SELECT seq, first, count FROM {table} WHERE stream = ? ORDER BY seq DESC", (key,))
    try:
        for seq, first, count in newest_first:
            if kept + count - first >= keep:
                found = seq, first, count - (keep - kept)
                break
            kept += count - first
    finally:
        newest_first.close()  # done with it before this connection changes the table
    if found is None:
        return  # fewer than `keep` items: nothing to trim
    seq, first, new_first = found
    if new_first > first:
        conn.execute(f"UPDATE {table} SET first = ? WHERE seq = ?", (new_first, seq))
    conn.execute(f"DELETE FROM {table} WHERE stream = ? AND seq < ?", (key, seq))
