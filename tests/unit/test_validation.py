"""Raw decoded values -> models, and the exact messages a user sees when they are wrong."""

from __future__ import annotations

import math
from typing import Any, Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.streams.errors import ValidationError
from hub.streams.models import INT64_MAX, INT64_MIN, Event, ParameterData, StreamProperties
from hub.streams.validation import (
    check_name,
    parse_definitions,
    parse_events,
    parse_parameter_data,
    parse_properties,
    parse_timestamp,
)


def error_of(parse: Callable[..., Any], *args: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        parse(*args)
    return str(caught.value)


def test_validation_error_is_a_value_error_with_path_and_problem() -> None:
    error = ValidationError("events[3].timestamp", "expected an integer of nanoseconds")
    assert isinstance(error, ValueError)
    assert str(error) == "events[3].timestamp: expected an integer of nanoseconds"
    assert (error.path, error.problem) == ("events[3].timestamp", "expected an integer of nanoseconds")


# --- events ---------------------------------------------------------------------------------------


def test_events_camel_and_pascal_case() -> None:
    raw = [
        {"id": "a", "timestamp": 1, "value": "v", "tags": {"k": "x"}},
        {"Id": "b", "Timestamp": 2, "Value": None, "Tags": None},
        {"id": "c", "timestamp": 3},
    ]
    assert parse_events(raw) == [Event("a", 1, "v", {"k": "x"}), Event("b", 2), Event("c", 3)]


def test_camel_case_wins_when_both_spellings_are_sent() -> None:
    assert parse_events([{"id": "camel", "Id": "pascal", "timestamp": 1}])[0].id == "camel"


def test_empty_batch_and_tuples_are_valid() -> None:
    assert parse_events([]) == []
    assert parse_events(({"id": "a", "timestamp": 1},)) == [Event("a", 1)]


def test_unknown_fields_are_ignored() -> None:
    assert parse_events([{"id": "a", "timestamp": 1, "extra": [1]}]) == [Event("a", 1)]


@pytest.mark.parametrize("raw", [None, {}, "[]", 3])
def test_events_must_be_an_array(raw: Any) -> None:
    assert error_of(parse_events, raw) == "events: expected an array of events"


@pytest.mark.parametrize("raw", [None, [], "a", 1])
def test_each_event_must_be_an_object(raw: Any) -> None:
    assert error_of(parse_events, [{"id": "a", "timestamp": 1}, raw]) == "events[1]: expected an object"


@pytest.mark.parametrize("event_id", [None, "", 5, True, ["a"]])
def test_event_id_is_a_non_empty_string(event_id: Any) -> None:
    message = error_of(parse_events, [{"id": event_id, "timestamp": 1}])
    assert message == "events[0].id: expected a non-empty string"


def test_event_id_is_required() -> None:
    assert error_of(parse_events, [{"timestamp": 1}]) == "events[0].id: expected a non-empty string"


def test_a_bad_batch_names_the_first_bad_index_and_field() -> None:
    raw = [{"id": "ok", "timestamp": i} for i in range(3)]
    raw += [{"id": "bad", "timestamp": "12"}, {"id": "", "timestamp": 1}]
    assert error_of(parse_events, raw) == "events[3].timestamp: expected an integer of nanoseconds"


@pytest.mark.parametrize(
    "timestamp",
    [None, "12", True, False, 1.5, math.nan, math.inf, -math.inf, [1], {"t": 1}],
)
def test_bad_timestamps(timestamp: Any) -> None:
    message = error_of(parse_events, [{"id": "a", "timestamp": timestamp}])
    assert message == "events[0].timestamp: expected an integer of nanoseconds"


def test_missing_timestamp() -> None:
    assert error_of(parse_events, [{"id": "a"}]) == "events[0].timestamp: expected an integer of nanoseconds"


@pytest.mark.parametrize("timestamp", [INT64_MAX + 1, INT64_MIN - 1, 2.0**63, -(2.0**64), 10**30])
def test_timestamps_outside_int64(timestamp: Any) -> None:
    message = error_of(parse_events, [{"id": "a", "timestamp": timestamp}])
    assert message == "events[0].timestamp: expected an integer of nanoseconds"


def test_whole_float_timestamps_from_javascript_senders() -> None:
    big = 1_700_000_000_123_456_768  # above 2**53: a JS MessagePack encoder writes it as float64
    assert float(big) == big
    assert parse_events([{"id": "a", "timestamp": float(big)}])[0].timestamp == big
    assert type(parse_events([{"id": "a", "timestamp": 5.0}])[0].timestamp) is int
    assert parse_events([{"id": "a", "timestamp": -(2.0**63)}])[0].timestamp == INT64_MIN


@given(st.integers(INT64_MIN, INT64_MAX))
def test_every_int64_is_a_timestamp(value: int) -> None:
    assert parse_timestamp(value, "t") == value


@given(st.integers(max_value=INT64_MIN - 1) | st.integers(min_value=INT64_MAX + 1))
def test_no_other_integer_is_a_timestamp(value: int) -> None:
    with pytest.raises(ValidationError):
        parse_timestamp(value, "t")


@pytest.mark.parametrize("value", [5, 1.5, True, {"a": "b"}, ["x"]])
def test_event_value_is_a_string_or_null(value: Any) -> None:
    message = error_of(parse_events, [{"id": "a", "timestamp": 1, "value": value}])
    assert message == "events[0].value: expected a string or null"


def test_event_tags() -> None:
    assert error_of(parse_events, [{"id": "a", "timestamp": 1, "tags": {"capacity": 3}}]) == (
        "events[0].tags.capacity: expected a string"
    )
    assert error_of(parse_events, [{"id": "a", "timestamp": 1, "tags": {"capacity": None}}]) == (
        "events[0].tags.capacity: expected a string"
    )
    assert error_of(parse_events, [{"id": "a", "timestamp": 1, "tags": ["x"]}]) == (
        "events[0].tags: expected a map of string to string"
    )
    assert error_of(parse_events, [{"id": "a", "timestamp": 1, "tags": {1: "x"}}]) == (
        "events[0].tags: expected a map of string to string"
    )


def test_tags_are_copied() -> None:
    tags = {"a": "1"}
    event = parse_events([{"id": "a", "timestamp": 1, "tags": tags}])[0]
    tags["b"] = "2"
    assert event.tags == {"a": "1"}


def test_lone_surrogates_are_refused() -> None:
    # json.loads accepts "\ud800"; no UTF-8 store can keep it.
    assert error_of(parse_events, [{"id": "\ud800", "timestamp": 1}]) == (
        "events[0].id: contains a lone surrogate, not valid Unicode text"
    )
    assert error_of(parse_events, [{"id": "a", "timestamp": 1, "value": "x\udfff"}]) == (
        "events[0].value: contains a lone surrogate, not valid Unicode text"
    )
    assert parse_events([{"id": "ü✓😀", "timestamp": 1}])[0].id == "ü✓😀"


# --- parameter data -------------------------------------------------------------------------------


def test_parameter_data_all_sections() -> None:
    raw = {
        "timestamps": [1, 2],
        "numericValues": {"speed": [1, 2.5], "rpm": [None, 3]},
        "stringValues": {"gear": ["1", None]},
        "binaryValues": {"blob": ["AAE=", None]},
        "tagValues": {"driver": [None, "ana"]},
    }
    data = parse_parameter_data(raw)
    assert data == ParameterData(
        [1, 2],
        {"speed": [1.0, 2.5], "rpm": [None, 3.0]},
        {"gear": ["1", None]},
        {"blob": ["AAE=", None]},
        {"driver": [None, "ana"]},
    )
    assert type(data.numeric_values["speed"][0]) is float


def test_parameter_data_pascal_case_and_epoch() -> None:
    raw = {"Epoch": 1000, "Timestamps": [1, 2], "NumericValues": {"x": [1, 2]}, "StringValues": None}
    assert parse_parameter_data(raw) == ParameterData([1001, 1002], {"x": [1.0, 2.0]})


def test_parameter_data_sections_may_be_left_out_and_empty_is_valid() -> None:
    assert parse_parameter_data({"timestamps": [5]}) == ParameterData([5])
    assert parse_parameter_data({"timestamps": [], "numericValues": {"x": []}}).rows == 0


def test_parameter_data_must_be_an_object() -> None:
    assert error_of(parse_parameter_data, [1]) == "parameterData: expected an object"


def test_timestamps_are_required() -> None:
    assert error_of(parse_parameter_data, {"numericValues": {}}) == (
        "parameterData.timestamps: required, an array of integer nanoseconds"
    )
    assert error_of(parse_parameter_data, {"timestamps": 5}) == (
        "parameterData.timestamps: expected an array of integer nanoseconds"
    )
    assert error_of(parse_parameter_data, {"timestamps": [1, 2.5]}) == (
        "parameterData.timestamps[1]: expected an integer of nanoseconds"
    )


def test_epoch_rules() -> None:
    assert error_of(parse_parameter_data, {"epoch": "1", "timestamps": [1]}) == (
        "parameterData.epoch: expected an integer of nanoseconds"
    )
    assert error_of(parse_parameter_data, {"epoch": INT64_MAX, "timestamps": [0, 1]}) == (
        "parameterData.timestamps[1]: plus epoch is outside the int64 range of nanoseconds"
    )
    assert parse_parameter_data({"epoch": None, "timestamps": [1]}).timestamps == [1]
    assert parse_parameter_data({"epoch": float(2**60), "timestamps": [-1]}).timestamps == [2**60 - 1]


def test_every_array_lines_up_with_timestamps() -> None:
    raw = {"timestamps": [1, 2, 3], "numericValues": {"speed": [1, 2]}}
    assert error_of(parse_parameter_data, raw) == (
        "parameterData.numericValues.speed: has 2 values but timestamps has 3"
    )
    raw = {"timestamps": [1], "tagValues": {"driver": ["a", "b"]}}
    assert error_of(parse_parameter_data, raw) == "parameterData.tagValues.driver: has 2 values but timestamps has 1"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (True, "expected a number or null"),
        ("1", "expected a number or null"),
        (math.nan, "expected a finite number"),
        (math.inf, "expected a finite number"),
        (10**400, "expected a finite number"),
    ],
)
def test_numeric_values(value: Any, problem: str) -> None:
    raw = {"timestamps": [1, 2], "numericValues": {"speed": [1, value]}}
    assert error_of(parse_parameter_data, raw) == f"parameterData.numericValues.speed[1]: {problem}"


def test_string_and_tag_values() -> None:
    assert error_of(parse_parameter_data, {"timestamps": [1], "stringValues": {"gear": [3]}}) == (
        "parameterData.stringValues.gear[0]: expected a string or null"
    )
    assert error_of(parse_parameter_data, {"timestamps": [1], "TagValues": {"d": [True]}}) == (
        "parameterData.tagValues.d[0]: expected a string or null"
    )


def test_binary_values() -> None:
    assert error_of(parse_parameter_data, {"timestamps": [1], "binaryValues": {"b": ["not base64!"]}}) == (
        "parameterData.binaryValues.b[0]: is not valid base64"
    )
    assert error_of(parse_parameter_data, {"timestamps": [1], "binaryValues": {"b": ["AAE"]}}) == (
        "parameterData.binaryValues.b[0]: is not valid base64"
    )
    assert error_of(parse_parameter_data, {"timestamps": [1], "binaryValues": {"b": [1]}}) == (
        "parameterData.binaryValues.b[0]: expected base64 text or null"
    )
    # MessagePack bin values are kept as base64 text, like JSON senders send them.
    data = parse_parameter_data({"timestamps": [1, 2], "binaryValues": {"b": [b"\x00\x01", ""]}})
    assert data.binary_values == {"b": ["AAE=", ""]}


def test_section_shapes() -> None:
    assert error_of(parse_parameter_data, {"timestamps": [1], "numericValues": [1]}) == (
        "parameterData.numericValues: expected a map of name to array of values"
    )
    assert error_of(parse_parameter_data, {"timestamps": [1], "numericValues": {"x": 1}}) == (
        "parameterData.numericValues.x: expected an array of values"
    )
    assert error_of(parse_parameter_data, {"timestamps": [1], "numericValues": {"": [1]}}) == (
        "parameterData.numericValues: names must be non-empty strings"
    )


# --- properties -----------------------------------------------------------------------------------


def test_properties_none_and_empty() -> None:
    assert parse_properties(None) == StreamProperties()
    assert parse_properties({}) == StreamProperties()


def test_properties_camel_and_pascal() -> None:
    full = StreamProperties("lap", "/car/lap1", {"k": "v"}, ["p1"], "2024-05-01T12:00:00Z")
    camel = {"name": "lap", "location": "/car/lap1", "metadata": {"k": "v"}, "parents": ["p1"],
             "timeOfRecording": "2024-05-01T12:00:00Z"}  # fmt: skip
    pascal = {"Name": "lap", "Location": "/car/lap1", "Metadata": {"k": "v"}, "Parents": ["p1"],
              "TimeOfRecording": "2024-05-01T12:00:00Z"}  # fmt: skip
    assert parse_properties(camel) == full
    assert parse_properties(pascal) == full


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "properties: expected an object"),
        ({"name": 1}, "properties.name: expected a string or null"),
        ({"Location": ["a"]}, "properties.location: expected a string or null"),
        ({"metadata": {"k": 1}}, "properties.metadata.k: expected a string"),
        ({"metadata": "k=v"}, "properties.metadata: expected a map of string to string"),
        ({"parents": "p"}, "properties.parents: expected an array of stream ids"),
        ({"parents": ["p", 2]}, "properties.parents[1]: expected a string"),
        ({"timeOfRecording": "yesterday"}, "properties.timeOfRecording: expected an ISO 8601 date-time, e.g. 2024-05-01T12:00:00Z"),
        ({"timeOfRecording": 1714564800}, "properties.timeOfRecording: expected an ISO 8601 date-time, e.g. 2024-05-01T12:00:00Z"),
    ],
)  # fmt: skip
def test_bad_properties(raw: Any, message: str) -> None:
    assert error_of(parse_properties, raw) == message


@pytest.mark.parametrize(
    "when", ["2024-05-01T12:00:00Z", "2024-05-01T12:00:00.123456+02:00", "2024-05-01", "2024-05-01T12:00:00z"]
)
def test_time_of_recording_is_kept_as_sent(when: str) -> None:
    assert parse_properties({"timeOfRecording": when}).time_of_recording == when


# --- definitions ----------------------------------------------------------------------------------


def test_event_definitions_are_normalized() -> None:
    raw = [{"Id": "crash", "Name": "Crash", "Level": "critical"}, {"id": "pit", "level": 3}, {"id": "lap"}]
    assert parse_definitions(raw, "events") == [
        {"id": "crash", "name": "Crash", "description": None, "customProperties": None, "location": None,
         "level": "Critical"},
        {"id": "pit", "name": None, "description": None, "customProperties": None, "location": None,
         "level": "Warning"},
        {"id": "lap", "name": None, "description": None, "customProperties": None, "location": None,
         "level": "Information"},
    ]  # fmt: skip


def test_parameter_definitions_are_normalized() -> None:
    raw = [{"id": "speed", "unit": "km/h", "MinimumValue": 0, "maximumValue": 400.5, "format": "{0:F1}",
            "customProperties": "{}", "location": "/car", "description": "d", "name": "Speed"}]  # fmt: skip
    assert parse_definitions(raw, "parameters") == [
        {"id": "speed", "name": "Speed", "description": "d", "unit": "km/h", "format": "{0:F1}",
         "customProperties": "{}", "location": "/car", "minimumValue": 0.0, "maximumValue": 400.5},
    ]  # fmt: skip
    assert parse_definitions([], "parameters") == []


@pytest.mark.parametrize(
    ("raw", "kind", "message"),
    [
        ({}, "events", "eventDefinitions: expected an array of definitions"),
        ([1], "events", "eventDefinitions[0]: expected an object"),
        ([{"name": "x"}], "events", "eventDefinitions[0].id: expected a non-empty string"),
        ([{"id": "a", "level": "Fatal"}], "events",
         "eventDefinitions[0].level: expected one of Trace, Debug, Information, Warning, Error, Critical"),
        ([{"id": "a", "level": 6}], "events",
         "eventDefinitions[0].level: expected one of Trace, Debug, Information, Warning, Error, Critical"),
        ([{"id": "a", "customProperties": {"x": 1}}], "events",
         "eventDefinitions[0].customProperties: expected a string or null"),
        ([{"id": "a"}, {"id": "a"}], "events", "eventDefinitions[1].id: duplicates the id of eventDefinitions[0]"),
        ([{"id": "a", "unit": 1}], "parameters", "parameterDefinitions[0].unit: expected a string or null"),
        ([{"id": "a", "minimumValue": "0"}], "parameters",
         "parameterDefinitions[0].minimumValue: expected a number or null"),
        ([{"id": "a", "maximumValue": True}], "parameters",
         "parameterDefinitions[0].maximumValue: expected a number or null"),
        ([{"id": "a", "maximumValue": math.inf}], "parameters",
         "parameterDefinitions[0].maximumValue: expected a finite number"),
    ],
)  # fmt: skip
def test_bad_definitions(raw: Any, kind: Any, message: str) -> None:
    assert error_of(parse_definitions, raw, kind) == message


# --- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "topic: expected a non-empty string"),
        (None, "topic: expected a non-empty string"),
        (5, "topic: expected a non-empty string"),
        ("a" * 257, "topic: is longer than 256 characters"),
        ("a/b", "topic: must not contain '/'"),
        (".", "topic: must not be '.' or '..'"),
        ("..", "topic: must not be '.' or '..'"),
        ("a\nb", "topic: must not contain control characters"),
        ("a\x00", "topic: must not contain control characters"),
        ("a\x7f", "topic: must not contain control characters"),
        ("a\x85", "topic: must not contain control characters"),
        ("a\ud800", "topic: contains a lone surrogate, not valid Unicode text"),
    ],
)
def test_bad_names(value: Any, message: str) -> None:
    assert error_of(check_name, value, "topic") == message


def test_names() -> None:
    assert check_name("a" * 256, "streamId") == "a" * 256
    assert check_name("Car Telemetry-1.ü", "topic") == "Car Telemetry-1.ü"
    assert error_of(check_name, "", "streamId") == "streamId: expected a non-empty string"


def test_the_remembered_names_stay_within_their_bound_and_checks_stay_right() -> None:
    from hub.streams import validation

    bound = validation.CHECKED_NAMES_BOUND
    for i in range(bound * 2 + 7):  # more distinct names than the bound, twice over
        assert check_name(f"name-{i}", "topic") == f"name-{i}"
        assert len(validation._CHECKED_NAMES) <= bound
        if i % 997 == 0:  # bad names are never remembered, however full the set is
            assert error_of(check_name, f"bad/{i}", "topic") == "topic: must not contain '/'"
            assert error_of(check_name, "..", "topic") == "topic: must not be '.' or '..'"
    assert check_name("name-0", "topic") == "name-0"  # forgotten long ago: checked again, still valid
    assert len(validation._CHECKED_NAMES) <= bound
