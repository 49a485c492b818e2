"""The JSON Schemas of hub/streams/schema.py (what /openapi.json publishes) against validation.py
(what the hub accepts): for every field, a grid of probe values of every JSON type is set on a
valid instance, and the schema must allow exactly what validation accepts. A field added, renamed
or retyped on one side only fails here.

Known differences, on purpose: the schema cannot say that parameter arrays line up with timestamps,
that epoch + timestamp stays in int64, or that definition ids are unique.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Callable

import jsonschema_rs
import msgspec
import pytest

from hub.streams import models, schema
from hub.streams import validation as v

PROBES: list[Any] = [
    None, True, False, 0, 7, -3, 1.5, 2.0, 2**63, -(2**63) - 1, 2**63 - 1,
    "", "text", "ü ✓", "2024-05-01T12:00:00Z", "not a date", "AAE=", "not base64!", "Information", "warning", "Nope",
    [], ["a"], [1], [None], [True], [1.5], [{"a": "b"}],
    {}, {"k": "v"}, {"k": 1}, {"k": None}, {"k": ["a"]}, {"k": [1.5]}, {"k": [None]}, {"k": ["AAE="]}, {"k": [True]},
    {"": ["a"]}, {"k": ["a", "b"]},
]


def accepts(parse: Callable[[Any], Any], instance: Any) -> bool:
    try:
        parse(instance)
    except v.ValidationError:
        return False
    return True


def validator(of: dict) -> Any:
    return jsonschema_rs.validator_for(of, validate_formats=True)


CASES = {
    "event": (schema.EVENT, lambda raw: v.parse_event(raw, "e"), schema.EVENT_FIELDS,
              {"id": "Alert", "timestamp": 1618133869000000000, "value": "Help", "tags": {"capacity": "over"}}),
    "parameterData": (schema.PARAMETER_DATA, v.parse_parameter_data, schema.PARAMETER_DATA_FIELDS,
                      {"epoch": 0, "timestamps": [1], "numericValues": {"speed": [1.5]}, "stringValues": {"gear": ["3"]},
                       "binaryValues": {"blob": ["AAE="]}, "tagValues": {"driver": ["ana"]}}),
    "properties": (schema.STREAM_PROPERTIES, v.parse_properties, schema.PROPERTIES_FIELDS,
                   {"name": "lap", "location": "/car/lap1", "metadata": {"k": "v"}, "parents": ["p"],
                    "timeOfRecording": "2024-05-01T12:00:00Z"}),
    "eventDefinition": (schema.EVENT_DEFINITIONS["items"], lambda raw: v.parse_definition(raw, "events", "d"),
                        schema.DEFINITION_FIELDS["events"],
                        {"id": "crash", "name": "Crash", "description": "d", "customProperties": "c", "location": "/",
                         "level": "Critical"}),
    "parameterDefinition": (schema.PARAMETER_DEFINITIONS["items"], lambda raw: v.parse_definition(raw, "parameters", "d"),
                            schema.DEFINITION_FIELDS["parameters"],
                            {"id": "speed", "name": "Speed", "unit": "km/h", "format": "0.0", "minimumValue": 0,
                             "maximumValue": 400.5, "description": "d", "customProperties": "c", "location": "/"}),
}


def _known_difference(case: str, field: str, value: Any) -> bool:
    # parameter arrays must have as many values as timestamps: the schema cannot say so
    if case == "parameterData" and field in schema.SECTIONS and isinstance(value, dict):
        return any(isinstance(a, list) and len(a) != 1 for a in value.values())
    if case == "parameterData" and field == "timestamps" and isinstance(value, list) and len(value) != 1:
        return True
    # epoch + timestamp must stay in int64: a sum, which the schema cannot say either
    if case == "parameterData" and field == "epoch" and type(value) is int:
        return not models.INT64_MIN <= value + 1 <= models.INT64_MAX
    return False


@pytest.mark.parametrize("case", list(CASES))
def test_the_example_is_valid_on_both_sides(case: str) -> None:
    of, parse, _, example = CASES[case]
    assert validator(of).is_valid(example)
    assert accepts(parse, example)


@pytest.mark.parametrize("case", list(CASES))
def test_every_field_with_every_probe_agrees(case: str) -> None:
    of, parse, fields, example = CASES[case]
    check = validator(of)
    disagreements = []
    for field in fields:
        for value in PROBES:
            if _known_difference(case, field, value):
                continue
            for name in (field, schema.pascal(field)):  # the PascalCase spelling reads the same
                instance = copy.deepcopy(example)
                instance.pop(field)
                instance[name] = copy.deepcopy(value)
                allowed, accepted = check.is_valid(instance), accepts(parse, instance)
                if allowed != accepted:
                    disagreements.append(f"{name}={value!r}: schema {'allows' if allowed else 'forbids'}, "
                                         f"validation {'accepts' if accepted else 'refuses'}")
    assert not disagreements, "\n".join(disagreements)


@pytest.mark.parametrize("case", list(CASES))
def test_required_fields_and_unknown_fields_agree(case: str) -> None:
    of, parse, fields, example = CASES[case]
    check = validator(of)
    for field in fields:
        instance = copy.deepcopy(example)
        del instance[field]
        assert check.is_valid(instance) == accepts(parse, instance), f"without {field}"
    extra = {**example, "somethingElse": [1, {"x": None}]}
    assert check.is_valid(extra) and accepts(parse, extra)
    assert not check.is_valid([example]) and not accepts(parse, [example])


def test_a_null_or_empty_properties_body_agrees() -> None:
    for raw in (None, {}):
        assert validator(schema.STREAM_PROPERTIES).is_valid(raw) and accepts(v.parse_properties, raw)


@pytest.mark.parametrize(
    "name", ["a", "car-1", "ü ✓", "a" * 256, "", "a" * 257, "a/b", "tab\there", "del\x7f", "c1\x85", ".x", "...", ".", ".."]
)
def test_names_agree(name: str) -> None:
    assert validator(schema.NAME).is_valid(name) == accepts(lambda n: v.check_name(n, "topic"), name)


def _field_names(model: type) -> list[str]:
    if isinstance(model, type) and issubclass(model, msgspec.Struct):  # Event
        return list(model.__struct_fields__)
    return [f.name for f in dataclasses.fields(model)]


def _camel(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(part.capitalize() for part in rest)


@pytest.mark.parametrize(
    ("model", "fields", "extra"),
    [
        (models.Event, schema.EVENT_FIELDS, set()),
        (models.StreamProperties, schema.PROPERTIES_FIELDS, set()),
        (models.ParameterData, schema.PARAMETER_DATA_FIELDS, {"epoch"}),  # epoch is applied, not kept
    ],
)
def test_the_schema_names_every_field_of_the_model(model: type, fields: dict, extra: set) -> None:
    """A field added to a model (and so to validation) must be described in the schema too."""
    assert {_camel(name) for name in _field_names(model)} == set(fields) - extra


def test_the_stored_shapes_match_what_the_models_serialize() -> None:
    event = models.Event("a", 1, None, {"k": "v"})
    data = models.ParameterData([1], {"x": [1.0]}, {"s": [None]}, {"b": ["AAE="]}, {"t": ["v"]})
    info = models.StreamInfo("t", "s", models.StreamProperties("n", "/l", {"a": "b"}, ["p"], "2024-05-01T12:00:00Z"),
                             events=1, first_timestamp=1, last_timestamp=2, last_activity=3.5)
    row = models.QuarantinedRow("s", 3, "line 3: bad", "{", 1.5)
    for shape, value in [(schema.EVENT_OUT, event), (schema.PARAMETER_DATA_OUT, data), (schema.STREAM_INFO, info),
                         (schema.QUARANTINED_ROW, row), (schema.TOPIC_SUMMARY, models.TopicSummary("t", 2))]:
        document = value.to_json()
        assert validator(shape).is_valid(document), (shape, document)
        assert set(document) <= set(shape["properties"]), set(document) - set(shape["properties"])
