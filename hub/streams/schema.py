"""JSON Schemas (2020-12, as OpenAPI 3.1 embeds them) of what validation.py accepts and what the
models serialize to.

Built from validation.py's own constants (field names, sections, levels, ranges, name rules), so a
field added or renamed there shows up here; tests/http/test_schema_drift.py checks, field by field,
that a value this schema allows is accepted by validation and one it forbids is refused, so the
two cannot drift apart silently. The HTTP layer's OpenAPI document (hub/http_api/openapi.py) is
assembled from these. Nothing here knows of HTTP.

Field names: camelCase is the documented spelling; validation also reads the PascalCase spelling
when the camelCase one is absent, so each property has a PascalCase twin with the same schema.
"""

from __future__ import annotations

from typing import Any

from . import validation as v
from .models import INT64_MAX, INT64_MIN
from .store.base import DefinitionKind

Schema = dict[str, Any]

INT64: Schema = {"type": "integer", "format": "int64", "minimum": INT64_MIN, "maximum": INT64_MAX}
NANOSECONDS: Schema = {**INT64, "description": "nanoseconds since the Unix epoch (int64)"}
STRING_MAP: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
ISO_DATETIME: Schema = {"type": "string", "format": "date-time", "examples": ["2024-05-01T12:00:00Z"]}

# A topic or a stream id (validation.check_name): printable, no '/', not "." nor "..", at most MAX_NAME_LENGTH.
NAME: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": v.MAX_NAME_LENGTH,
    "pattern": r"^(?!\.\.?$)[^/\u0000-\u001f\u007f-\u009f]+$",
}


def pascal(name: str) -> str:
    return name[0].upper() + name[1:]


def _object(properties: dict[str, Schema], required: tuple[str, ...] = (), description: str = "") -> Schema:
    """An object read by validation._field: each property under its camelCase or PascalCase name;
    a required one must be present under either; unknown fields are ignored."""
    props: dict[str, Schema] = {}
    for name, field_schema in properties.items():
        props[name] = field_schema
        props[pascal(name)] = {**field_schema, "description": f"same as {name} (read when {name} is absent)"}
    out: Schema = {"type": "object", "properties": props, "additionalProperties": True}
    if required:
        out["allOf"] = [{"anyOf": [{"required": [n]}, {"required": [pascal(n)]}]} for n in required]
    if description:
        out["description"] = description
    return out


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


# --- events -------------------------------------------------------------------------------------

EVENT_FIELDS: dict[str, Schema] = {
    "id": {"type": "string", "minLength": 1, "description": "what happened (an event definition id)"},
    "timestamp": NANOSECONDS,
    "value": _nullable({"type": "string"}),
    "tags": _nullable(STRING_MAP),
}
EVENT_REQUIRED = ("id", "timestamp")
EVENT: Schema = _object(EVENT_FIELDS, EVENT_REQUIRED, "An event; PascalCase field names are accepted too.")
EVENTS: Schema = {"type": "array", "items": EVENT}

# As stored and read back: exactly these fields, camelCase.
EVENT_OUT: Schema = {
    "type": "object",
    "required": ["id", "timestamp", "value", "tags"],
    "properties": {"id": {"type": "string"}, "timestamp": NANOSECONDS, "value": _nullable({"type": "string"}), "tags": STRING_MAP},
}

# --- parameter data -----------------------------------------------------------------------------

_SECTION_VALUES: dict[str, Schema] = {
    "numericValues": {"type": "number"},
    "stringValues": {"type": "string"},
    "binaryValues": {"type": "string", "contentEncoding": "base64", "pattern": BASE64_PATTERN},
    "tagValues": {"type": "string"},
}
SECTIONS = tuple(name for name, _ in v.PARAMETER_SECTIONS)
assert set(SECTIONS) == set(_SECTION_VALUES), "validation.PARAMETER_SECTIONS changed: describe the new section here"


def _section(values: Schema) -> Schema:
    return _nullable(
        {
            "type": "object",
            "propertyNames": {"minLength": 1},
            "additionalProperties": {"type": "array", "items": _nullable(values)},
            "description": "name -> one value a row, lined up with timestamps (same length)",
        }
    )


PARAMETER_DATA_FIELDS: dict[str, Schema] = {
    "epoch": _nullable({**INT64, "description": "added to every timestamp"}),
    "timestamps": {"type": "array", "items": NANOSECONDS},
    **{name: _section(_SECTION_VALUES[name]) for name in SECTIONS},
}
PARAMETER_DATA_REQUIRED = ("timestamps",)
PARAMETER_DATA: Schema = _object(
    PARAMETER_DATA_FIELDS,
    PARAMETER_DATA_REQUIRED,
    "Rows lined up by index: every section's arrays have as many values as timestamps.",
)
PARAMETER_DATA_OUT: Schema = {
    "type": "object",
    "required": ["timestamps", *SECTIONS],
    "properties": {
        "timestamps": {"type": "array", "items": NANOSECONDS},
        **{
            name: {"type": "object", "additionalProperties": {"type": "array", "items": _nullable(_SECTION_VALUES[name])}}
            for name in SECTIONS
        },
    },
}

# --- stream properties --------------------------------------------------------------------------

PROPERTIES_FIELDS: dict[str, Schema] = {
    "name": _nullable({"type": "string"}),
    "location": _nullable({"type": "string", "examples": ["/car/lap1"]}),
    "metadata": _nullable(STRING_MAP),
    "parents": _nullable({"type": "array", "items": {"type": "string"}}),
    "timeOfRecording": _nullable(ISO_DATETIME),
}
STREAM_PROPERTIES: Schema = _nullable(_object(PROPERTIES_FIELDS, (), "Stream properties, all optional."))

# --- definitions --------------------------------------------------------------------------------


def _any_case(words: list[str]) -> str:
    """A regex matching any of `words` in any letter case (JSON Schema regexes have no flags)."""
    return "^(?:" + "|".join("".join(f"[{c.upper()}{c.lower()}]" for c in word) for word in words) + ")$"


def _definition_fields(kind: DefinitionKind) -> dict[str, Schema]:
    fields: dict[str, Schema] = {"id": {"type": "string", "minLength": 1}}
    fields.update({name: _nullable({"type": "string"}) for name in v.DEFINITION_TEXT_FIELDS[kind]})
    if kind == DefinitionKind.EVENTS:
        levels = list(v.EVENT_LEVELS)
        fields["level"] = {
            "anyOf": [
                {"type": "string", "pattern": _any_case(levels)},
                {"type": "integer", "minimum": 0, "maximum": len(levels) - 1},
                {"type": "null"},
            ],
            "description": f"one of {', '.join(levels)} (any case, or its index); default Information",
        }
    else:
        for name in ("minimumValue", "maximumValue"):
            fields[name] = _nullable({"type": "number"})
    return fields


DEFINITION_FIELDS = {kind: _definition_fields(kind) for kind in DefinitionKind}
EVENT_DEFINITIONS: Schema = {
    "type": "array",
    "items": _object(DEFINITION_FIELDS[DefinitionKind.EVENTS], ("id",)),
    "description": "ids unique",
}
PARAMETER_DEFINITIONS: Schema = {
    "type": "array",
    "items": _object(DEFINITION_FIELDS[DefinitionKind.PARAMETERS], ("id",)),
    "description": "ids unique",
}

# --- what the read API returns ------------------------------------------------------------------

STREAM_INFO: Schema = {
    "type": "object",
    "required": ["streamId", "topic", "status", "events", "parameterRows"],
    "properties": {
        "streamId": {"type": "string"},
        "topic": {"type": "string"},
        "name": _nullable({"type": "string"}),
        "location": _nullable({"type": "string"}),
        "metadata": STRING_MAP,
        "parents": {"type": "array", "items": {"type": "string"}},
        "timeOfRecording": _nullable({"type": "string"}),
        "status": {"enum": ["open", "closed"]},
        "events": {"type": "integer", "minimum": 0},
        "parameterRows": {"type": "integer", "minimum": 0},
        "firstTimestamp": _nullable(NANOSECONDS),
        "lastTimestamp": _nullable(NANOSECONDS),
        "lastActivity": _nullable({"type": "number", "description": "Unix seconds of the last write"}),
    },
}
TOPIC_SUMMARY: Schema = {
    "type": "object",
    "required": ["topic", "streams"],
    "properties": {"topic": {"type": "string"}, "streams": {"type": "integer", "minimum": 0}},
}
QUARANTINED_ROW: Schema = {
    "type": "object",
    "required": ["streamId", "line", "reason", "raw", "receivedAt"],
    "properties": {
        "streamId": {"type": "string", "description": "the stream the row was sent to"},
        "line": {"type": "integer", "minimum": 1, "description": "1-based line in the request body"},
        "reason": {"type": "string", "examples": ["line 3: line 3.timestamp: expected an integer of nanoseconds"]},
        "raw": {"type": "string", "description": "the line as sent"},
        "receivedAt": {"type": "number", "description": "Unix seconds"},
    },
}
BATCH_RESULT: Schema = {
    "type": "object",
    "required": ["successful_rows", "quarantined_rows"],
    "properties": {
        "successful_rows": {"type": "integer", "minimum": 0},
        "quarantined_rows": {"type": "integer", "minimum": 0},
    },
}
