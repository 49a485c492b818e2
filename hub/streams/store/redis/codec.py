"""What the Redis store writes into its entries and records, and how Redis' replies read back as
models (JSON by ../encoding.py, the stores' one codec)."""

from __future__ import annotations

import re
from typing import Any, Iterable

from ...models import Event, ParameterData, StreamInfo
from ..base import IdempotencyRecord
from ..encoding import dumps, loads, stream_info
from ..parameter_rows import join_rows

Entry = tuple[bytes, dict[bytes, bytes]]  # a stream entry as XRANGE/XREAD reply: (id, fields)

_CURSOR = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def range_start(after: str | None) -> str:
    """The XRANGE start for a page after the cursor `after` (exclusive): an entry id."""
    if after is None:
        return "-"
    if type(after) is not str or not after.isascii() or _CURSOR.fullmatch(after) is None:
        raise ValueError(f"not a cursor from this store: {after!r}")
    ms, seq = after.split("-")
    if int(ms) >= 2**64 or int(seq) >= 2**64:
        raise ValueError(f"not a cursor from this store: {after!r}")
    return "(" + after


def stream_info_of(fields: Any) -> StreamInfo | None:
    """A stream hash (HGETALL as a dict, or the flat list a function returns) -> StreamInfo."""
    if isinstance(fields, list):
        fields = dict(zip(fields[0::2], fields[1::2]))
    if not fields:
        return None
    f = {text(k): v for k, v in fields.items()}
    first, last, activity = f.get("first"), f.get("last"), f.get("activity")
    return stream_info(
        text(f["topic"]),
        text(f["stream_id"]),
        f["properties"],
        text(f["status"]),  # type: ignore[arg-type]
        int(f["events"]),
        int(f["rows"]),
        None if first is None else int(first),
        None if last is None else int(last),
        None if activity is None else float(activity),
        f["edefs"],
        f["pdefs"],
    )


def event_data(event: Event) -> bytes:
    """An event entry's `d`."""
    return dumps((event.id, event.value, event.tags or None))


def event_of(fields: dict[bytes, bytes]) -> Event:
    id_, value, tags = loads(fields[b"d"])
    return Event(id_, int(fields[b"t"]), value, tags or {})


def parameter_data_of(entries: Iterable[Entry]) -> ParameterData:
    """One ParameterData of parameter-row entries."""
    return join_rows((int(fields[b"t"]), loads(fields[b"d"])) for _, fields in entries)


def record_value(fingerprint: str, status: int | None, body: bytes) -> bytes:
    """An idempotency record as stored: `fingerprint\\nstatus\\nbody` (no status while pending)."""
    return fingerprint.encode() + b"\n" + (b"" if status is None else str(status).encode()) + b"\n" + body


def record_of(value: bytes) -> IdempotencyRecord:
    fingerprint, status, body = value.split(b"\n", 2)
    return IdempotencyRecord(fingerprint.decode(), int(status) if status else None, body)
