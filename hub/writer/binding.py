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
from ..streams.models import INT64_MAX, INT64_MIN, Event
from ..streams.validation import EventBatch


class _JavaScriptEvent(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    """An event as @microsoft/signalr-protocol-msgpack sends it: integers above 2**53 (nanosecond
    timestamps) come as float64."""

    id: Annotated[str, msgspec.Meta(min_length=1)]
    timestamp: Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)] | float
    value: str | None = None
    tags: dict[str, str] = msgspec.field(default_factory=dict)


_NAMES_AND_EVENTS = msgspec.msgpack.Decoder(tuple[str, str, list[Event]])
_NAMES_AND_JAVASCRIPT_EVENTS = msgspec.msgpack.Decoder(tuple[str, str, list[_JavaScriptEvent]])
_FLOAT_TIMESTAMP = b"\xa9timestamp\xcb"


def messagepack_names_and_events(raw: bytes) -> list[Any] | None:
    """MessagePack arguments `[name, name, [event, ...]]` (SendEventData's) decoded in C straight
    into events, or None when in any doubt: then the generic decoding and parse_events judge, and
    name the error. Accepts only what parse_event accepts, and builds the same events: camelCase
    fields and no others, a non-empty id, an int64 timestamp (a whole float64 one too), a string or
    nil value, a map of string to string for tags; MessagePack strings are valid UTF-8 by decoding,
    so no lone surrogate gets through. The names are checked later (check_name), as on the generic
    path. A hypothesis test holds the two paths equal."""
    # Any failure (wrong type, bad UTF-8, too deep, ...) only means "not the usual arguments".
    # Integer timestamps decode straight into Events; float64 ones (a "timestamp" key followed by
    # the float64 marker 0xcb) go the JavaScript way at once, not after a failed first try.
    if _FLOAT_TIMESTAMP not in raw:
        try:  # not contextlib.suppress: this runs for every write, and a with-block costs more than the decode
            return _names_and_events(_NAMES_AND_EVENTS.decode(raw))
        except Exception:  # noqa: BLE001 - decided again below, then by the generic path
            pass
    try:
        arguments = _NAMES_AND_JAVASCRIPT_EVENTS.decode(raw)
    except Exception:  # noqa: BLE001 - the generic path judges, and names the error
        return None
    return _names_and_javascript_events(arguments)


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


# MessagePack reads the usual SendEventData record straight into these (protocols/base.py): the same
# types and results as the binder's two decodes above, integer timestamps and float64 ones.
messagepack_names_and_events.typed = TypedArguments(  # type: ignore[attr-defined]
    tuple[str, str, list[Event]],
    _names_and_events,
    alternative=TypedArguments(tuple[str, str, list[_JavaScriptEvent]], _names_and_javascript_events),
)
