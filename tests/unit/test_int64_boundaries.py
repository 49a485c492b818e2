"""Timestamps at and past the int64 boundaries through every decoder the hub has (issue 12): an
integer literal is stored exactly when it is an int64 and refused otherwise, with the usual text,
never changed into a neighbouring value (orjson reads -2^63 - 1 as the float -2^63).

Each decoder (HTTP JSON and NDJSON, SignalR JSON with each library, SignalR MessagePack with and
without the SendEventData binder) is fed bytes and its values judged by the validation the hub
applies after it."""

from __future__ import annotations

import json
from typing import Any

import msgpack
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hub.http_api import codec
from hub.signalr.protocols.json import ORJSON, STDLIB_JSON, JsonMessageReader
from hub.signalr.protocols.msgpack import MessagePackHubProtocol, encode_length_prefix
from hub.streams.service import StreamService
from hub.streams.store import MemoryStore
from hub.streams.errors import ValidationError
from hub.streams.models import INT64_MAX, INT64_MIN
from hub.streams.validation import parse_events, parse_parameter_data, parse_timestamp
from hub.writer.binding import messagepack_names_and_events

REFUSED = "events[0].timestamp: expected an integer of nanoseconds"
BOUNDARIES = [
    INT64_MIN - 1025, INT64_MIN - 1024, INT64_MIN - 1, INT64_MIN, INT64_MIN + 1,
    INT64_MAX - 1, INT64_MAX, INT64_MAX + 1, 2**64 - 1, 2**64, -(2**64), 10**30, -(10**30),
]  # fmt: skip
near_boundaries = st.one_of(
    st.sampled_from(BOUNDARIES),
    st.integers(INT64_MIN - 5000, INT64_MIN + 5000),
    st.integers(INT64_MAX - 5000, INT64_MAX + 5000),
    st.integers(-(2**70), 2**70),
)
JSON_LIBRARIES = [STDLIB_JSON, ORJSON]


def judged(events: Any) -> int | str:
    """The stored timestamp of a one-event batch, or the error text."""
    try:
        return parse_events(events)[0].timestamp
    except ValidationError as error:
        return str(error)


def expected(value: int) -> int | str:
    return value if INT64_MIN <= value <= INT64_MAX else REFUSED


def event_json(timestamp_literal: str) -> bytes:
    return b'[{"id":"a","timestamp":' + timestamp_literal.encode() + b"}]"


def signalr_json_events(record: bytes, library) -> Any:
    reader = JsonMessageReader(1 << 20, library)
    text = '{"type":1,"invocationId":"1","target":"SendEventData","arguments":["t","s",' + record.decode() + "]}\x1e"
    # both ways a frame reaches the reader: a text frame (str) and bytes
    [from_text] = reader.feed(text)
    [from_bytes] = JsonMessageReader(1 << 20, library).feed(text.encode())
    assert judged(from_text.arguments[2]) == judged(from_bytes.arguments[2])
    return from_text.arguments[2]


@settings(max_examples=300, deadline=None)
@given(near_boundaries)
@example(INT64_MIN - 1)
@example(INT64_MAX + 1)
def test_a_json_integer_literal_is_stored_exactly_or_refused(value: int) -> None:
    body = event_json(str(value))
    assert judged(codec.parse_json(body)) == expected(value)  # HTTP application/json
    rows = codec.ndjson_rows(body[1:-1])  # HTTP NDJSON: one line
    assert judged([rows.values[0]]) == expected(value)
    for library in JSON_LIBRARIES:  # SignalR JSON
        assert judged(signalr_json_events(body, library)) == expected(value), library.name


@settings(max_examples=300, deadline=None)
@given(st.one_of(near_boundaries.filter(lambda v: INT64_MIN <= v < 2**64), st.sampled_from([INT64_MIN, 2**64 - 1])))
def test_a_messagepack_integer_is_stored_exactly_or_refused(value: int) -> None:
    args = ["t", "s", [{"id": "a", "timestamp": value}]]
    packed = msgpack.packb(args)
    bound = messagepack_names_and_events(packed)
    assert bound is None or judged(bound[2]) == expected(value)  # the binder: exact, or declines
    protocol = MessagePackHubProtocol()
    body = msgpack.packb([1, {}, "1", "SendEventData", args])
    record = encode_length_prefix(len(body)) + body
    for binders in ({"sendeventdata": messagepack_names_and_events}, None):
        [message] = protocol.reader(1 << 20, binders).feed(record)
        assert judged(message.arguments[2]) == expected(value)


@pytest.mark.parametrize(
    ("literal", "result"),
    [
        ("9.3e18", REFUSED),  # a whole float past int64
        ("-9.3e18", REFUSED),
        ("9223372036854775808.0", REFUSED),  # 2.0**63
        ("-9223372036854775808.0", INT64_MIN),  # -(2.0**63) is an int64
        ("1.618133869e18", 1_618_133_869_000_000_000),
        ("1e400", None),  # not JSON the hub reads at all: refused before validation
    ],
)
def test_json_float_literals_near_the_boundaries(literal: str, result: Any) -> None:
    body = event_json(literal)
    if result is None:
        with pytest.raises(Exception):
            codec.parse_json(body)
        return
    assert judged(codec.parse_json(body)) == result
    for library in JSON_LIBRARIES:
        assert judged(signalr_json_events(body, library)) == result


def test_whole_float64_timestamps_from_messagepack_at_the_boundaries() -> None:
    for value, result in [(9.3e18, REFUSED), (2.0**63, REFUSED), (-(2.0**63), INT64_MIN), (-9.3e18, REFUSED)]:
        packed = msgpack.packb(["t", "s", [{"id": "a", "timestamp": value}]])
        bound = messagepack_names_and_events(packed)
        assert bound is None or judged(bound[2]) == result
        assert judged(msgpack.unpackb(packed)[2]) == result


@pytest.mark.parametrize("value", [INT64_MIN - 1, INT64_MAX + 1, -(2**64), 2**64])
def test_parameter_timestamps_and_epoch_outside_int64_are_refused(value: int) -> None:
    raw = codec.parse_json(b'{"timestamps":[1,' + str(value).encode() + b'],"numericValues":{"x":[1,2]}}')
    with pytest.raises(ValidationError, match=r"^parameterData\.timestamps\[1\]: expected an integer of nanoseconds$"):
        parse_parameter_data(raw)
    raw = codec.parse_json(b'{"timestamps":[1],"epoch":' + str(value).encode() + b"}")
    with pytest.raises(ValidationError, match=r"^parameterData\.epoch: expected an integer of nanoseconds$"):
        parse_parameter_data(raw)
    for library in JSON_LIBRARIES:
        decoded = library.loads(b'{"timestamps":[' + str(value).encode() + b"]}")
        with pytest.raises(ValidationError, match=r"timestamps\[0\]: expected an integer of nanoseconds$"):
            parse_parameter_data(decoded)


@pytest.mark.parametrize("value", [INT64_MIN - 1, INT64_MAX + 1, 9.3e18])
async def test_read_event_data_from_timestamp_outside_int64_is_refused(value: Any) -> None:
    for library in JSON_LIBRARIES:
        decoded = library.loads(json.dumps({"from": value}).encode())["from"]
        with pytest.raises(ValidationError, match="^fromTimestamp: expected an integer of nanoseconds$"):
            await anext(StreamService(MemoryStore()).event_stream("t", "s", decoded, False))
    assert parse_timestamp(INT64_MIN, "fromTimestamp") == INT64_MIN


def test_exact_json_is_as_strict_as_orjson() -> None:
    """The exact reader HTTP falls back to refuses what orjson refuses."""
    for body in (b"[NaN]", b"[Infinity]", b"[1e400]", b"\xef\xbb\xbf[1]", b'["\\ud800"]', b"[1,]", b"\xff"):
        with pytest.raises(ValueError):
            codec.exact_loads(body)
    assert codec.exact_loads(b"[-9223372036854775809]") == [INT64_MIN - 1]
