"""Raw decoded JSON/MessagePack values -> stream models, or a ValidationError a user can act on.

This is the edge where client data enters the stream domain: everything after it (service, store)
may assume well-formed values. Field names are accepted in camelCase and PascalCase (Quix samples
use both); when both spellings are present the camelCase one wins. Unknown fields are ignored.
"""

from __future__ import annotations

import base64
import binascii
import math
from datetime import datetime
from typing import Any, Callable, TypeVar

from .errors import ValidationError
from .lenient import LenientRows
from .models import INT64_MAX, INT64_MIN, Event, ParameterData, StreamProperties
from .store.base import DefinitionKind

MAX_NAME_LENGTH = 256
EVENT_LEVELS = ("Trace", "Debug", "Information", "Warning", "Error", "Critical")

T = TypeVar("T")
_MISSING: Any = object()
_ARRAY = (list, tuple)  # MessagePack decoders may hand arrays over as tuples


# --- scalars ------------------------------------------------------------------------------------


def _field(raw: dict[Any, Any], camel: str) -> Any:
    value = raw.get(camel, _MISSING)
    if value is _MISSING:
        value = raw.get(camel[0].upper() + camel[1:], _MISSING)
    return value


def _is_unicode(text: str) -> bool:
    # JSON may carry lone surrogates ("\ud800"), which no UTF-8 store can hold; refuse them here
    # so that every backend accepts exactly the same values.
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _string(value: Any, path: str, problem: str = "expected a string") -> str:
    if type(value) is not str:
        raise ValidationError(path, problem)
    if not _is_unicode(value):
        raise ValidationError(path, "contains a lone surrogate, not valid Unicode text")
    return value


def _optional_string(value: Any, path: str) -> str | None:
    if value is None or value is _MISSING:
        return None
    return _string(value, path, "expected a string or null")


def _non_empty_string(value: Any, path: str) -> str:
    if value is _MISSING or type(value) is not str or not value:
        raise ValidationError(path, "expected a non-empty string")
    return _string(value, path)


def parse_timestamp(value: Any, path: str) -> int:
    """An int64 of nanoseconds. A float is accepted when it holds a whole number: JavaScript
    MessagePack encoders write integers above 2**53 as float64. Anything else, an integer outside
    int64 included, is refused with the same text: `<path>: expected an integer of nanoseconds`."""
    if type(value) is int:  # the hot path; also excludes bool
        ts = value
    elif type(value) is float and math.isfinite(value) and value.is_integer():
        ts = int(value)
    else:
        raise ValidationError(path, "expected an integer of nanoseconds")
    if not INT64_MIN <= ts <= INT64_MAX:  # never clamped nor wrapped: refused as any other non-int64
        raise ValidationError(path, "expected an integer of nanoseconds")
    return ts


def _number(value: Any, path: str, problem: str) -> float:
    if type(value) is not float and (type(value) is not int):  # bool is rejected here too
        raise ValidationError(path, problem)
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        raise ValidationError(path, "expected a finite number") from None
    if not math.isfinite(number):
        raise ValidationError(path, "expected a finite number")
    return number


def _string_map(value: Any, path: str) -> dict[str, str]:
    if value is None or value is _MISSING:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(path, "expected a map of string to string")
    for key, item in value.items():
        if type(key) is not str or not _is_unicode(key):
            raise ValidationError(path, "expected a map of string to string")
        _string(item, f"{path}.{key}")
    return dict(value)


def _array(value: Any, path: str, problem: str) -> list[Any] | tuple[Any, ...]:
    if not isinstance(value, _ARRAY):
        raise ValidationError(path, problem)
    return value


def _object(value: Any, path: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise ValidationError(path, "expected an object")
    return value


# --- events -------------------------------------------------------------------------------------


def parse_event(raw: Any, path: str) -> Event:
    """One event; a bad one raises naming `path` and its field (`events[3].timestamp: …`)."""
    event = _usual_event(raw)
    return event if event is not None else parse_event_field_by_field(raw, path)


def parse_event_field_by_field(raw: Any, path: str) -> Event:
    """parse_event without its fast path: every field checked with its error path at hand. What the
    fast path must agree with (tests/unit/test_validation_fast_path.py)."""
    raw = _object(raw, path)
    return Event(
        id=_non_empty_string(_field(raw, "id"), f"{path}.id"),
        timestamp=parse_timestamp(_field(raw, "timestamp"), f"{path}.timestamp"),
        value=_optional_string(_field(raw, "value"), f"{path}.value"),
        tags=_string_map(_field(raw, "tags"), f"{path}.tags"),
    )


def _usual_event(raw: Any) -> Event | None:
    """The usual event (camelCase, plain types) accepted without formatting an error path for each
    field (bench/RESULTS.md, "What the profiles showed"); None when in any doubt, and the field by
    field check then judges (and names the error)."""
    if type(raw) is not dict:
        return None
    event_id, timestamp = raw.get("id"), raw.get("timestamp")
    if type(timestamp) is float and timestamp.is_integer():
        # What @microsoft/signalr-protocol-msgpack sends: integers above 2**53 as float64.
        timestamp = int(timestamp)
    if type(event_id) is not str or not event_id or type(timestamp) is not int or not INT64_MIN <= timestamp <= INT64_MAX:
        return None
    value, tags = raw.get("value", _MISSING), raw.get("tags", _MISSING)
    if value is _MISSING:
        if "Value" in raw:
            return None
        value = None
    elif value is not None and (type(value) is not str or not (value.isascii() or _is_unicode(value))):
        return None
    if tags is _MISSING or tags is None:
        if tags is _MISSING and "Tags" in raw:
            return None
        tags = {}
    elif type(tags) is not dict:
        return None
    else:
        for key, item in tags.items():
            if type(key) is not str or type(item) is not str or not (key.isascii() or _is_unicode(key)):
                return None
            if not (item.isascii() or _is_unicode(item)):
                return None
        tags = dict(tags)
    if not (event_id.isascii() or _is_unicode(event_id)):
        return None
    return Event(event_id, timestamp, value, tags)


class EventBatch(list):  # list[Event]
    """Events already validated as they were decoded (straight into Event, by an argument binder):
    parse_events takes them as they are."""


def parse_events(raw: Any) -> list[Event]:
    """An array of events; the first bad one raises, naming its index and field."""
    if type(raw) is EventBatch:
        return raw
    items = _array(raw, "events", "expected an array of events")
    # parse_event inlined, so that a path is formatted only for an event left to the slow check
    # (an Event is always true).
    return [_usual_event(item) or parse_event_field_by_field(item, f"events[{i}]") for i, item in enumerate(items)]


def parse_event_rows(rows: LenientRows) -> tuple[list[Event], list[tuple[int, str]]]:
    """A lenient batch's events in row order, and (row index, reason) for each row that is not one:
    its decoding error, or its first bad field, as `line <n>: …`. A row's line is asked for only
    when the row is bad (LenientRows)."""
    events: list[Event] = []
    rejected: list[tuple[int, str]] = []
    errors = rows.errors
    for index, value in enumerate(rows.values):
        event = _usual_event(value)
        if event is not None:
            events.append(event)
            continue
        error = errors.get(index)
        if error is not None:
            rejected.append((index, f"line {rows.line_of(index)}: {error}"))
            continue
        try:
            events.append(parse_event_field_by_field(value, f"line {rows.line_of(index)}"))
        except ValidationError as exc:
            rejected.append((index, str(exc)))
    return events, rejected


# --- parameter data -----------------------------------------------------------------------------


def _numeric(value: Any, path: str) -> float | None:
    if value is None:
        return None
    return _number(value, path, "expected a number or null")


def _text(value: Any, path: str) -> str | None:
    if value is None:
        return None
    return _string(value, path, "expected a string or null")


def _binary(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        # MessagePack senders may use the bin type rather than base64 text; keep one form.
        return base64.b64encode(value).decode("ascii")
    if type(value) is not str:
        raise ValidationError(path, "expected base64 text or null")
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(path, "is not valid base64") from None
    return value


# Parameter data's value sections and how each value is read (schema.py describes each one).
PARAMETER_SECTIONS: tuple[tuple[str, Callable[[Any, str], Any]], ...] = (
    ("numericValues", _numeric),
    ("stringValues", _text),
    ("binaryValues", _binary),
    ("tagValues", _text),
)


def _section(raw: Any, path: str, rows: int, parse_value: Callable[[Any, str], T]) -> dict[str, list[T]]:
    if raw is None or raw is _MISSING:
        return {}
    if not isinstance(raw, dict):
        raise ValidationError(path, "expected a map of name to array of values")
    section: dict[str, list[T]] = {}
    for name, values in raw.items():
        if type(name) is not str or not name or not _is_unicode(name):
            raise ValidationError(path, "names must be non-empty strings")
        name_path = f"{path}.{name}"
        values = _array(values, name_path, "expected an array of values")
        if len(values) != rows:
            raise ValidationError(name_path, f"has {len(values)} values but timestamps has {rows}")
        section[name] = [parse_value(v, f"{name_path}[{i}]") for i, v in enumerate(values)]
    return section


def parse_parameter_data(raw: Any, path: str = "parameterData") -> ParameterData:
    """Parameter data with `epoch` already added to every timestamp. `path` names it in errors."""
    raw = _object(raw, path)
    raw_timestamps = _field(raw, "timestamps")
    if raw_timestamps is _MISSING:
        raise ValidationError(f"{path}.timestamps", "required, an array of integer nanoseconds")
    raw_timestamps = _array(
        raw_timestamps, f"{path}.timestamps", "expected an array of integer nanoseconds"
    )
    timestamps = [parse_timestamp(t, f"{path}.timestamps[{i}]") for i, t in enumerate(raw_timestamps)]

    epoch = _field(raw, "epoch")
    if epoch is not _MISSING and epoch is not None:
        epoch = parse_timestamp(epoch, f"{path}.epoch")
        if epoch:
            timestamps = [t + epoch for t in timestamps]
            for i, t in enumerate(timestamps):
                if not INT64_MIN <= t <= INT64_MAX:
                    raise ValidationError(
                        f"{path}.timestamps[{i}]", "plus epoch is outside the int64 range of nanoseconds"
                    )

    rows = len(timestamps)
    sections = [
        _section(_field(raw, name), f"{path}.{name}", rows, parse_value) for name, parse_value in PARAMETER_SECTIONS
    ]
    return ParameterData(timestamps, *sections)


def parse_event_item(raw: Any, path: str) -> list[Event]:
    """One item of an event stream (StreamEventData): one event, or an array of events."""
    if isinstance(raw, dict):
        return [parse_event(raw, path)]
    items = _array(raw, path, "expected an event or an array of events")
    return [_usual_event(item) or parse_event_field_by_field(item, f"{path}[{i}]") for i, item in enumerate(items)]


def parse_parameter_data_item(raw: Any, path: str) -> list[ParameterData]:
    """One item of a parameter-data stream (StreamParameterData): one parameter-data object, or an
    array of them."""
    if isinstance(raw, dict):
        return [parse_parameter_data(raw, path)]
    items = _array(raw, path, "expected parameter data or an array of parameter data")
    return [parse_parameter_data(item, f"{path}[{i}]") for i, item in enumerate(items)]


# --- stream properties --------------------------------------------------------------------------


def _iso_datetime(value: Any, path: str) -> str | None:
    if value is None or value is _MISSING:
        return None
    problem = "expected an ISO 8601 date-time, e.g. 2024-05-01T12:00:00Z"
    text = _string(value, path, problem)
    # A Z suffix read as +00:00 explicitly, not left to fromisoformat's version-dependent reading.
    candidate = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
    try:
        datetime.fromisoformat(candidate)
    except ValueError:
        raise ValidationError(path, problem) from None
    return text


def parse_properties(raw: Any) -> StreamProperties:
    """Stream properties; None and {} both mean "none set"."""
    if raw is None:
        return StreamProperties()
    raw = _object(raw, "properties")
    parents = _field(raw, "parents")
    if parents is _MISSING or parents is None:
        parents = []
    parents = _array(parents, "properties.parents", "expected an array of stream ids")
    return StreamProperties(
        name=_optional_string(_field(raw, "name"), "properties.name"),
        location=_optional_string(_field(raw, "location"), "properties.location"),
        metadata=_string_map(_field(raw, "metadata"), "properties.metadata"),
        parents=[_string(p, f"properties.parents[{i}]") for i, p in enumerate(parents)],
        time_of_recording=_iso_datetime(_field(raw, "timeOfRecording"), "properties.timeOfRecording"),
    )


# --- definitions --------------------------------------------------------------------------------

_DEFINITION_PATHS = {DefinitionKind.EVENTS: "eventDefinitions", DefinitionKind.PARAMETERS: "parameterDefinitions"}
DEFINITION_TEXT_FIELDS = {
    DefinitionKind.EVENTS: ("name", "description", "customProperties", "location"),
    DefinitionKind.PARAMETERS: ("name", "description", "unit", "format", "customProperties", "location"),
}
_LEVELS_BY_KEY = {level.lower(): level for level in EVENT_LEVELS}


def _level(value: Any, path: str) -> str:
    if value is None or value is _MISSING:
        return "Information"
    # .NET serializers write enums as their index unless told otherwise: accept 0..5 too.
    # A whole float too (2.0): JSON Schema calls it an integer, and JavaScript encoders may send one.
    if (type(value) is int or (type(value) is float and value.is_integer())) and 0 <= value < len(EVENT_LEVELS):
        return EVENT_LEVELS[int(value)]
    if type(value) is str and value.lower() in _LEVELS_BY_KEY:
        return _LEVELS_BY_KEY[value.lower()]
    raise ValidationError(path, "expected one of " + ", ".join(EVENT_LEVELS))


def _optional_number(value: Any, path: str) -> float | None:
    if value is None or value is _MISSING:
        return None
    return _number(value, path, "expected a number or null")


def parse_definition(raw: Any, kind: DefinitionKind, path: str) -> dict[str, Any]:
    raw = _object(raw, path)
    definition: dict[str, Any] = {"id": _non_empty_string(_field(raw, "id"), f"{path}.id")}
    for name in DEFINITION_TEXT_FIELDS[kind]:
        definition[name] = _optional_string(_field(raw, name), f"{path}.{name}")
    if kind == DefinitionKind.EVENTS:
        definition["level"] = _level(_field(raw, "level"), f"{path}.level")
    else:
        for name in ("minimumValue", "maximumValue"):
            definition[name] = _optional_number(_field(raw, name), f"{path}.{name}")
    return definition


def parse_definitions(raw: Any, kind: DefinitionKind) -> list[dict[str, Any]]:
    """Event or parameter definitions as normalized camelCase dicts with every field present
    (None when not given; an event's level defaults to Information). Ids must be unique."""
    if kind not in _DEFINITION_PATHS:
        raise ValueError(f"unknown definition kind {kind!r}")
    prefix = _DEFINITION_PATHS[kind]
    items = _array(raw, prefix, "expected an array of definitions")
    definitions: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        definition = parse_definition(item, kind, f"{prefix}[{i}]")
        first = seen.setdefault(definition["id"], i)
        if first != i:
            raise ValidationError(f"{prefix}[{i}].id", f"duplicates the id of {prefix}[{first}]")
        definitions.append(definition)
    return definitions


# --- names --------------------------------------------------------------------------------------


# Names that passed, so that the usual write (the same few names again and again) costs one set
# lookup. Bound: at most CHECKED_NAMES_BOUND names; when full it is emptied and refills with the
# names in use (clear-when-full: no per-lookup bookkeeping, and a name forgotten is only checked again).
CHECKED_NAMES_BOUND = 10_000
_CHECKED_NAMES: set[str] = set()

# A path segment "." or ".." is resolved away by URL normalisation (clients, proxies), so a topic or
# stream so named could be written over SignalR and never reached over HTTP.
_RESERVED_NAMES = (".", "..")


def check_name(value: Any, what: str) -> str:
    """A topic or stream id: it becomes part of URLs and store keys, so keep it printable."""
    if type(value) is str and value in _CHECKED_NAMES:
        return value
    if type(value) is not str or not value:
        raise ValidationError(what, "expected a non-empty string")
    if len(value) > MAX_NAME_LENGTH:
        raise ValidationError(what, f"is longer than {MAX_NAME_LENGTH} characters")
    if "/" in value:
        raise ValidationError(what, "must not contain '/'")
    if value in _RESERVED_NAMES:
        raise ValidationError(what, "must not be '.' or '..'")
    if any(c < " " or "\x7f" <= c <= "\x9f" for c in value):
        raise ValidationError(what, "must not contain control characters")
    if not _is_unicode(value):
        raise ValidationError(what, "contains a lone surrogate, not valid Unicode text")
    if len(_CHECKED_NAMES) >= CHECKED_NAMES_BOUND:
        _CHECKED_NAMES.clear()
    _CHECKED_NAMES.add(value)
    return value
