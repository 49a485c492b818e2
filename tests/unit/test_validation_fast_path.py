"""parse_event takes the usual event by a fast path (no error paths built): it must accept exactly
what the field by field check accepts, build the same Event, and leave every doubtful one to it."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.streams import validation
from hub.streams.errors import ValidationError
from hub.streams.models import Event
from hub.streams.validation import parse_event, parse_event_field_by_field, parse_events


class SlowPathTaken(Exception):
    pass


def fast_path(raw: Any) -> Event | None:
    """What parse_event's fast path alone makes of `raw`: its Event, or None when it leaves `raw` to
    the field by field check (replaced here by one that refuses everything)."""

    def refuse(raw: Any, path: str) -> Event:
        raise SlowPathTaken

    checked = validation.parse_event_field_by_field
    validation.parse_event_field_by_field = refuse
    try:
        return parse_event(raw, "events[0]")
    except SlowPathTaken:
        return None
    finally:
        validation.parse_event_field_by_field = checked

# The int64 boundaries (issue 12): the integers and the whole floats on either side of them.
INT64_EDGES = [-(2**63) - 1, -(2**63), -(2**63) + 1, 2**63 - 1, 2**63, 2**64, -(2.0**63), 2.0**63, 9.3e18, -9.3e18]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**64), max_value=2**64), st.floats(allow_nan=True),
    st.text(max_size=4), st.just("\ud800"), st.just(""), st.sampled_from(INT64_EDGES),
)
keys = st.sampled_from(["id", "Id", "timestamp", "Timestamp", "value", "Value", "tags", "Tags", "other"])
tags = st.one_of(scalars, st.dictionaries(st.one_of(st.text(max_size=3), st.just("\udc00")), scalars, max_size=3))
raw_events = st.one_of(scalars, st.dictionaries(keys, st.one_of(scalars, tags), max_size=6))


@settings(max_examples=500, deadline=None)
@given(raw_events)
def test_fast_path_agrees_with_parse_event(raw):
    fast = fast_path(raw)
    try:
        slow = parse_event_field_by_field(raw, "events[0]")
    except ValidationError as exc:
        assert fast is None
        try:
            parse_event(raw, "events[0]")
        except ValidationError as same:
            assert str(same) == str(exc)
        else:
            raise AssertionError("parse_event accepted what the field by field check refuses")
        return
    assert fast is None or fast == slow
    assert parse_event(raw, "events[0]") == slow


def test_the_usual_event_takes_the_fast_path_and_errors_still_name_the_field():
    good = {"id": "Speed", "timestamp": 1_700_000_000_000_000_000, "value": "212", "tags": {"car": "1"}}
    assert fast_path(good) == parse_event_field_by_field(good, "events[0]")
    try:
        parse_events([good, {**good, "timestamp": 1.5}])
    except ValidationError as exc:
        assert str(exc) == "events[1].timestamp: expected an integer of nanoseconds"
    else:
        raise AssertionError("a fractional timestamp was accepted")


def test_a_javascript_messagepack_timestamp_takes_the_fast_path():
    # @microsoft/signalr-protocol-msgpack sends integers above 2**53 as float64 (../shared/vectors)
    raw = {"id": "Speed", "timestamp": 1.618133869e18, "value": "212"}
    fast = fast_path(raw)
    assert fast is not None and fast == parse_event_field_by_field(raw, "events[0]")
    assert type(fast.timestamp) is int and fast.timestamp == 1_618_133_869_000_000_000
    assert fast_path({**raw, "timestamp": 2.0**63}) is None  # one past int64: parse_event says why


def test_the_fast_path_at_the_int64_boundaries():
    for timestamp in INT64_EDGES:
        raw = {"id": "a", "timestamp": timestamp}
        fast = fast_path(raw)
        try:
            slow = parse_event_field_by_field(raw, "events[0]")
        except ValidationError as exc:
            assert fast is None and str(exc) == "events[0].timestamp: expected an integer of nanoseconds"
            continue
        assert fast == slow and -(2**63) <= fast.timestamp <= 2**63 - 1
