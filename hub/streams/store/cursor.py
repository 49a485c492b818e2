"""Page cursors: the arrival position of the last item returned, as decimal text.

Opaque to callers (they only pass back what a Page gave them), so a backend may change what the
number means; each backend documents its own (memory: index in the stream, sqlite: row id).
"""

from __future__ import annotations

_MAX = 2**63 - 1


def encode_cursor(position: int) -> str:
    return str(position)


def decode_cursor(cursor: str | None) -> int:
    """The position to continue after; -1 (before the first item) for None.
    Raises ValueError for text no store of ours made."""
    if cursor is None:
        return -1
    if type(cursor) is not str or not cursor.isascii() or not cursor.isdigit() or len(cursor) > 19:
        raise ValueError(f"not a cursor from this store: {cursor!r}")
    position = int(cursor)
    if position > _MAX:
        raise ValueError(f"not a cursor from this store: {cursor!r}")
    return position


def cursor_key(cursor: str) -> tuple[int, ...]:
    """A sort key for the cursors of one stream of one store: decimal text (memory, sqlite) or a
    Redis stream id `ms-seq` (redis). Later positions compare greater."""
    return tuple(int(part) for part in cursor.split("-"))
