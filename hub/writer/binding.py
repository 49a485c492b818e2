"""SendEventData's MessagePack arguments bound at decode time (ASP.NET's argument binding): the
Writer hub owns that method's argument shape, `[topic, streamId, [event, ...]]`, so the binder that
decodes it straight into validated events lives here, beside the method (hub.py).

Anything unusual is left to the generic path (decode, then validation.parse_events), which judges
and names the error; tests/unit/test_messagepack_binding.py holds the two paths equal.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from ..signalr.protocols.base import TypedArguments
from ..signalr.protocols.msgpack_binding import typed_binder
from ..streams.models import INT64_MAX, INT64_MIN, Event
from ..streams.validation import EventBatch


class _JavaScriptEvent(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    """An event as @microsoft/signalr-protocol-msgpack sends it: integers above 2**53 (nanosecond
    timestamps) come as float64."""

    id: Annotated[str, msgspec.Meta(min_length=1)]
    timestamp: Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)] | float
    value: str | None = None
    tags: dict[str, str] = msgspec.field(default_factory=dict)


def _names_and_javascript_events(arguments: tuple[str, str, list[_JavaScriptEvent]]) -> list[Any] | None:
    """The events with their float64 timestamps made ints; None if one is not a whole int64."""
    topic, stream_id, sent = arguments
    batch = EventBatch()
    for event in sent:
        timestamp = event.timestamp
        if type(timestamp) is float:
            if not timestamp.is_integer():
                return None
            timestamp = int(timestamp)
            if not INT64_MIN <= timestamp <= INT64_MAX:
                return None
        batch.append(Event(event.id, timestamp, event.value, event.tags))
    return [topic, stream_id, batch]


def _names_and_events(arguments: tuple[str, str, list[Event]]) -> list[Any]:
    topic, stream_id, events = arguments
    return [topic, stream_id, EventBatch(events)]


#: SendEventData's MessagePack arguments `[name, name, [event, ...]]` decoded in C straight into
#: events, or None when in any doubt: then the generic decoding and parse_events judge, and name the
#: error. Accepts only what parse_event accepts, and builds the same events: camelCase fields and no
#: others, a non-empty id, an int64 timestamp (a whole float64 one too: JavaScript's), a string or nil
#: value, a map of string to string for tags; MessagePack strings are valid UTF-8 by decoding, so no
#: lone surrogate gets through. The names are checked later (check_name), as on the generic path. A
#: hypothesis test holds the two paths equal. One declaration (protocols/base.py `TypedArguments`)
#: serves both the one-call reading of the whole record and this binder of the arguments alone.
messagepack_names_and_events = typed_binder(
    TypedArguments(
        tuple[str, str, list[Event]],  # integer timestamps: straight into Events
        _names_and_events,
        alternative=TypedArguments(tuple[str, str, list[_JavaScriptEvent]], _names_and_javascript_events),
    )
)
