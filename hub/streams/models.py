"""The stream domain: topics hold streams, streams hold events and parameter data.

Plain values; nothing here knows of SignalR or HTTP. Validation from raw JSON/MessagePack values into
these lives in validation.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, Literal, TypeVar

import msgspec

from .errors import ValidationError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
DEFAULT_PAGE = 1000  # items a read returns when the caller names no limit
MAX_PAGE = 100_000  # the most a read returns at once

StreamStatus = Literal["open", "closed"]


class Event(msgspec.Struct, frozen=True, gc=False, forbid_unknown_fields=True):
    """One event. gc=False: the garbage collector never walks events (they hold only strings and
    ints), so a store holding millions of them does not make each full collection pause the loop
    for longer (bench/RESULTS.md, "Second round").

    The constraints in the annotations (and forbid_unknown_fields) hold only where an event is
    decoded straight from the wire into this type (msgspec); building one checks nothing:
    validation.py is what makes events from client data."""

    id: Annotated[str, msgspec.Meta(min_length=1)]
    timestamp: Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]  # nanoseconds since the Unix epoch
    value: str | None = None
    tags: dict[str, str] = msgspec.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "timestamp": self.timestamp, "value": self.value, "tags": self.tags}


@dataclass(slots=True)
class ParameterData:
    """Rows aligned by index with `timestamps` (epoch already applied).

    Each value section maps a parameter (or tag) name to one entry a row, None where that row lacks it.
    binary values are kept as the base64 text they were sent as."""

    timestamps: list[int]
    numeric_values: dict[str, list[float | None]] = field(default_factory=dict)
    string_values: dict[str, list[str | None]] = field(default_factory=dict)
    binary_values: dict[str, list[str | None]] = field(default_factory=dict)
    tag_values: dict[str, list[str | None]] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return len(self.timestamps)

    def to_json(self) -> dict[str, Any]:
        return {
            "timestamps": self.timestamps,
            "numericValues": self.numeric_values,
            "stringValues": self.string_values,
            "binaryValues": self.binary_values,
            "tagValues": self.tag_values,
        }


@dataclass(slots=True)
class StreamProperties:
    name: str | None = None
    location: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    parents: list[str] = field(default_factory=list)
    time_of_recording: str | None = None  # ISO 8601 as sent

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "location": self.location,
            "metadata": self.metadata,
            "parents": self.parents,
            "timeOfRecording": self.time_of_recording,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> StreamProperties:
        """The inverse of to_json (missing keys read as empty)."""
        return cls(
            name=value.get("name"),
            location=value.get("location"),
            metadata=value.get("metadata") or {},
            parents=value.get("parents") or [],
            time_of_recording=value.get("timeOfRecording"),
        )

    def copy(self) -> StreamProperties:
        """A copy sharing no mutable part with this one."""
        return StreamProperties(self.name, self.location, dict(self.metadata), list(self.parents), self.time_of_recording)


@dataclass(slots=True)
class StreamInfo:
    """What the store knows of one stream: its properties and counters."""

    topic: str
    stream_id: str
    properties: StreamProperties = field(default_factory=StreamProperties)
    status: StreamStatus = "open"
    events: int = 0
    parameter_rows: int = 0
    first_timestamp: int | None = None
    last_timestamp: int | None = None
    last_activity: float | None = None  # wall clock seconds of the last write
    event_definitions: list[dict[str, Any]] = field(default_factory=list)
    parameter_definitions: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "streamId": self.stream_id,
            "topic": self.topic,
            **self.properties.to_json(),
            "status": self.status,
            "events": self.events,
            "parameterRows": self.parameter_rows,
            "firstTimestamp": self.first_timestamp,
            "lastTimestamp": self.last_timestamp,
            "lastActivity": self.last_activity,
        }

    def copy(self) -> StreamInfo:
        """A copy sharing no mutable part with this one (a store hands these out; callers may edit them)."""
        return StreamInfo(
            self.topic,
            self.stream_id,
            self.properties.copy(),
            self.status,
            self.events,
            self.parameter_rows,
            self.first_timestamp,
            self.last_timestamp,
            self.last_activity,
            list(self.event_definitions),
            list(self.parameter_definitions),
        )


@dataclass(slots=True, frozen=True)
class TopicSummary:
    topic: str
    streams: int

    def to_json(self) -> dict[str, Any]:
        return {"topic": self.topic, "streams": self.streams}


@dataclass(slots=True, frozen=True)
class QuarantinedRow:
    """A row of a lenient batch (lenient.py) that was not a valid event: kept, not lost, with why.

    line is the row's 1-based line within its batch; raw is the row's text as sent (UTF-8, invalid
    bytes replaced); received_at is wall-clock seconds."""

    stream_id: str
    line: int
    reason: str
    raw: str
    received_at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "streamId": self.stream_id,
            "line": self.line,
            "reason": self.reason,
            "raw": self.raw,
            "receivedAt": self.received_at,
        }


@dataclass(slots=True, frozen=True)
class ReadWindow:
    """Which stored items one read returns: those whose own timestamp is in [from_ts, to_ts) (None:
    unbounded on that side), in arrival order, at most `limit`, after the cursor `after` (from a
    previous Page.next_cursor; None: from the start). Checked here, once, when made: a window that
    exists is well formed (a cursor's meaning is the store's, which raises ValueError for one it did
    not make). The quarantine, whose rows have no timestamp of their own, uses limit and after only."""

    from_ts: int | None = None
    to_ts: int | None = None
    limit: int = DEFAULT_PAGE
    after: str | None = None

    def __post_init__(self) -> None:
        for name, value in (("from", self.from_ts), ("to", self.to_ts)):
            if value is not None and (type(value) is not int or not INT64_MIN <= value <= INT64_MAX):
                raise ValidationError(name, "expected an integer of nanoseconds")
        if type(self.limit) is not int or not 1 <= self.limit <= MAX_PAGE:
            raise ValidationError("limit", f"expected an integer from 1 to {MAX_PAGE}")
        if self.after is not None and type(self.after) is not str:
            raise ValidationError("after", "expected a cursor string")

    @property
    def filtered(self) -> bool:
        """Whether a timestamp bound is set (an unfiltered read is a plain slice of arrival order)."""
        return self.from_ts is not None or self.to_ts is not None

    def positions_only(self) -> ReadWindow:
        """This window without its timestamp bounds (for rows with no timestamp: the quarantine)."""
        return ReadWindow(limit=self.limit, after=self.after) if self.filtered else self

    def admits(self, timestamp: int) -> bool:
        """Whether an item with this timestamp is inside [from_ts, to_ts)."""
        return (self.from_ts is None or timestamp >= self.from_ts) and (self.to_ts is None or timestamp < self.to_ts)


T = TypeVar("T")


@dataclass(slots=True)
class Page(Generic[T]):
    """One page of a listing in arrival order; next_cursor (opaque) continues it, None at the end."""

    items: list[T]
    next_cursor: str | None = None
    # The position of the last item on the page (None when empty): a live reader that read stored
    # data first skips changes at or before it (see store/broadcast.py). Not a paging cursor.
    last_cursor: str | None = None
