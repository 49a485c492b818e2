"""The JSON hub protocol codec, with plain bytes: real client frames, round trips, framing,
limits and error texts (fuzzing: test_protocol_fuzz.py). Every test runs with each JSON library
available."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from unit import client_vectors as vectors
from unit.client_vectors import client_messages

from hub.signalr.messages import (
    Ack,
    CancelInvocation,
    Close,
    Completion,
    HubMessage,
    Invocation,
    Ping,
    Sequence,
    StreamInvocation,
    StreamItem,
)
from hub.signalr.protocols import (
    PROTOCOLS,
    MessageTooLarge,
    ProtocolError,
    TransferFormat,
)
from hub.signalr.protocols.json import ORJSON, STDLIB_JSON, JsonHubProtocol

RS = "\x1e"
MAX = 32 * 1024
NS_TIMESTAMP = 1618133869000000000  # above 2^53: must stay an exact int

LIBRARIES = [
    pytest.param(STDLIB_JSON, id="stdlib"),
    pytest.param(ORJSON, id="orjson"),
]


@pytest.fixture(params=LIBRARIES)
def protocol(request: pytest.FixtureRequest) -> JsonHubProtocol:
    return JsonHubProtocol(request.param)


def decode(protocol: JsonHubProtocol, *frames: bytes | str, limit: int = MAX) -> list[HubMessage]:
    reader = protocol.reader(limit)
    return [message for frame in frames for message in reader.feed(frame)]


def error_of(protocol: JsonHubProtocol, *frames: bytes | str) -> str:
    with pytest.raises(ProtocolError) as caught:
        decode(protocol, *frames)
    return str(caught.value)


def client_frames() -> list[dict[str, Any]]:
    return vectors.client_frames(vectors.JSON_VECTORS)


EVENT = {"id": "Alert", "timestamp": NS_TIMESTAMP, "tags": {"capacity": "over"}, "value": "Help"}
# What the frames after the handshake in js-client-10.0.11-json.json must decode to, in order.
CLIENT_MESSAGES = client_messages(EVENT)

ALL_TYPES: list[HubMessage] = [
    Invocation("Send", [1, "two", None, {"three": [3.5]}], "7", headers={"a": "b"}),
    Invocation("Fire", [], None),
    Invocation("Upload", ["x"], "8", stream_ids=["0", "1"]),
    StreamItem("0", {"timestamp": NS_TIMESTAMP, "tags": {"k": "v"}}),
    StreamItem("0", None, headers={"h": "v"}),
    Completion("7"),
    Completion.with_result("7", None),
    Completion.with_result("7", [NS_TIMESTAMP, 2**64 - 1, -(2**63)]),
    Completion.with_error("7", "It didn't work!"),
    StreamInvocation("9", "Read", ["cars", 0, True], stream_ids=["2"], headers={"x": "y"}),
    CancelInvocation("9"),
    Ping(),
    Close(),
    Close("Server shutting down", allow_reconnect=True),
    Close(None, allow_reconnect=True),
    Ack(41),
    Sequence(2**62),
]


def test_name_and_format() -> None:
    assert isinstance(PROTOCOLS["json"], JsonHubProtocol)
    assert (JsonHubProtocol.name, JsonHubProtocol.transfer_format) == ("json", TransferFormat.TEXT)


# --- Real client frames ---------------------------------------------------------------------------


def test_decodes_every_real_client_frame(protocol: JsonHubProtocol) -> None:
    frames = client_frames()[1:]  # [0] is the handshake: see test_handshake.py
    reader = protocol.reader(MAX)
    decoded = []
    for frame in frames:
        messages = reader.feed(frame["text"])
        assert len(messages) == len(frame["decoded"])
        decoded += messages
    assert decoded == CLIENT_MESSAGES
    timestamp = decoded[1].arguments[2][0]["timestamp"]  # type: ignore[union-attr]
    assert type(timestamp) is int and timestamp == NS_TIMESTAMP


def test_real_client_frames_as_bytes_in_one_buffer_and_byte_by_byte(
    protocol: JsonHubProtocol,
) -> None:
    stream = "".join(frame["text"] for frame in client_frames()[1:]).encode()
    assert decode(protocol, stream) == CLIENT_MESSAGES
    assert decode(protocol, *(stream[i : i + 1] for i in range(len(stream)))) == CLIENT_MESSAGES


def test_reencoded_client_messages_decode_the_same(protocol: JsonHubProtocol) -> None:
    assert decode(protocol, *(protocol.encode(m) for m in CLIENT_MESSAGES)) == CLIENT_MESSAGES


# --- Round trips and exact output -----------------------------------------------------------------


@pytest.mark.parametrize("message", ALL_TYPES, ids=lambda m: type(m).__name__)
def test_round_trip(protocol: JsonHubProtocol, message: HubMessage) -> None:
    record = protocol.encode(message)
    assert isinstance(record, str) and record.endswith(RS) and record.count(RS) == 1
    assert decode(protocol, record) == [message]


@pytest.mark.parametrize(
    "message, record",
    [
        (Ping(), '{"type":6}'),
        (Invocation("Send", [1], None), '{"type":1,"target":"Send","arguments":[1]}'),
        (Invocation("Send", [], ""), '{"type":1,"target":"Send","arguments":[]}'),
        (
            Invocation("Up", [], "1", stream_ids=["0"], headers={"a": "b"}),
            '{"type":1,"headers":{"a":"b"},"invocationId":"1","target":"Up","arguments":[],"streamIds":["0"]}',
        ),
        (StreamItem("1", None), '{"type":2,"invocationId":"1","item":null}'),
        (Completion("1"), '{"type":3,"invocationId":"1"}'),
        (Completion.with_result("1", None), '{"type":3,"invocationId":"1","result":null}'),
        (
            Completion.with_result("1", NS_TIMESTAMP),
            '{"type":3,"invocationId":"1","result":1618133869000000000}',
        ),
        (Completion.with_error("1", "boom"), '{"type":3,"invocationId":"1","error":"boom"}'),
        (
            StreamInvocation("1", "R", ["é"]),
            '{"type":4,"invocationId":"1","target":"R","arguments":["é"]}',
        ),
        (CancelInvocation("1"), '{"type":5,"invocationId":"1"}'),
        (Close(), '{"type":7}'),
        (Close(allow_reconnect=True), '{"type":7,"allowReconnect":true}'),
        (Close("bye"), '{"type":7,"error":"bye"}'),
        (Ack(3), '{"type":8,"sequenceId":3}'),
        (Sequence(4), '{"type":9,"sequenceId":4}'),
    ],
)
def test_exact_records(protocol: JsonHubProtocol, message: HubMessage, record: str) -> None:
    assert protocol.encode(message) == record + RS


def test_64_bit_integers_are_exact_both_ways(protocol: JsonHubProtocol) -> None:
    values = [NS_TIMESTAMP, -NS_TIMESTAMP, 2**63 - 1, -(2**63), 2**64 - 1, 2**53 + 1]
    record = protocol.encode(Completion.with_result("1", values))
    numbers = ",".join(map(str, values))
    assert record == f'{{"type":3,"invocationId":"1","result":[{numbers}]}}' + RS
    [decoded] = decode(protocol, record)
    assert decoded.result == values  # type: ignore[union-attr]
    assert all(type(v) is int for v in decoded.result)  # type: ignore[union-attr]


def test_integers_beyond_64_bits() -> None:
    values = [2**64 + 1, -(2**63) - 1, 10**30]
    record = '{"type":2,"invocationId":"1","item":[18446744073709551617,-9223372036854775809,1%s]}'
    record = record % ("0" * 30) + RS
    # Written exactly by both; read exactly by the standard module, as the nearest float by orjson
    # (as a JavaScript sender meant them), except in a record holding a literal just below -2^63,
    # which orjson would read as -2^63 itself, an int64: that record is read exactly.
    assert JsonHubProtocol(STDLIB_JSON).encode(StreamItem("1", values)) == record
    assert decode(JsonHubProtocol(STDLIB_JSON), record) == [StreamItem("1", values)]
    if ORJSON is not None:
        assert JsonHubProtocol(ORJSON).encode(StreamItem("1", values)) == record
        assert decode(JsonHubProtocol(ORJSON), record) == [StreamItem("1", values)]
        without = record.replace(",-9223372036854775809", "")
        assert decode(JsonHubProtocol(ORJSON), without) == [StreamItem("1", [float(2**64 + 1), 1e30])]


def test_non_finite_floats_go_out_as_null(protocol: JsonHubProtocol) -> None:
    item = {"nan": float("nan"), "inf": [float("inf"), -float("inf")], "ok": 1.5}
    assert protocol.encode(StreamItem("1", item)) == (
        '{"type":2,"invocationId":"1","item":{"nan":null,"inf":[null,null],"ok":1.5}}' + RS
    )


def test_datetimes_are_written_as_iso_8601(protocol: JsonHubProtocol) -> None:
    # The MessagePack reader turns the timestamp extension (a JS Date) into an aware datetime.
    when = datetime(2021, 4, 11, 9, 37, 49, 123000, tzinfo=UTC)
    assert protocol.encode(StreamItem("1", [when, date(2021, 4, 11)])) == (
        '{"type":2,"invocationId":"1","item":["2021-04-11T09:37:49.123000+00:00","2021-04-11"]}'
        + RS
    )


def test_values_json_cannot_carry_are_a_type_error(protocol: JsonHubProtocol) -> None:
    with pytest.raises(TypeError):
        protocol.encode(StreamItem("1", {1, 2}))


def test_non_str_keys_and_tuples_are_written_like_the_json_module(
    protocol: JsonHubProtocol,
) -> None:
    assert (
        protocol.encode(StreamItem("1", {1: (2, 3)}))
        == '{"type":2,"invocationId":"1","item":{"1":[2,3]}}' + RS
    )


# --- Tolerance ------------------------------------------------------------------------------------


def test_keys_in_any_order_and_unknown_keys_ignored(protocol: JsonHubProtocol) -> None:
    record = (
        '{"arguments":[1],"extra":{"deep":[1,2]},"invocationId":"5","target":"T","type":1}' + RS
    )
    assert decode(protocol, record) == [Invocation("T", [1], "5")]


def test_nulls_read_as_absent(protocol: JsonHubProtocol) -> None:
    # pysignalr writes "headers":null, and "error":null next to "result".
    records = (
        '{"type":1,"target":"T","arguments":[],"invocationId":null,"headers":null,"streamIds":null}'
        + RS,
        '{"type":3,"invocationId":"1","result":null,"error":null}' + RS,
        '{"type":7,"error":null,"allowReconnect":null}' + RS,
    )
    assert decode(protocol, *records) == [
        Invocation("T", []),
        Completion.with_result("1", None),
        Close(),
    ]


def test_unknown_message_types_are_skipped(protocol: JsonHubProtocol) -> None:
    frame = (
        '{"type":6}' + RS + '{"type":42,"whatever":1}' + RS + '{"type":0}' + RS + '{"type":7}' + RS
    )
    assert decode(protocol, frame) == [Ping(), Close()]


def test_whitespace_around_records(protocol: JsonHubProtocol) -> None:
    assert decode(protocol, ' {"type" : 6}\n' + RS + '\r\n{"type":6}' + RS) == [Ping(), Ping()]


# --- Framing --------------------------------------------------------------------------------------


def test_several_records_in_one_frame_and_one_split_across_frames(
    protocol: JsonHubProtocol,
) -> None:
    reader = protocol.reader(MAX)
    assert reader.feed('{"type":6}' + RS + '{"type":8,"seq') == [Ping()]
    assert reader.feed('uenceId":1}') == []
    assert reader.feed(RS + '{"type":7}' + RS) == [Ack(1), Close()]


def test_multibyte_characters_split_across_frames(protocol: JsonHubProtocol) -> None:
    message = StreamItem("1", "é😀€ and \u2028")
    data = protocol.encode(message).encode("utf-8")
    assert decode(protocol, *(data[i : i + 1] for i in range(len(data)))) == [message]


def test_str_and_bytes_frames_mix(protocol: JsonHubProtocol) -> None:
    assert decode(protocol, '{"type":', b"6}\x1e", '{"type":7}\x1e') == [Ping(), Close()]


# --- Size limit -----------------------------------------------------------------------------------


def padded(size: int) -> str:
    """A Ping record of exactly `size` UTF-8 bytes, without its separator."""
    record = '{"type":6,"pad":""}'
    return (
        record[:-2]
        + "é" * ((size - len(record)) // 2)
        + "x" * ((size - len(record)) % 2)
        + record[-2:]
    )


def test_record_of_exactly_the_limit_passes(protocol: JsonHubProtocol) -> None:
    assert len(padded(100).encode()) == 100
    assert decode(protocol, padded(100) + RS, limit=100) == [Ping()]


def test_record_over_the_limit_fails(protocol: JsonHubProtocol) -> None:
    reader = protocol.reader(100)
    with pytest.raises(MessageTooLarge, match=r"^The maximum message size of 100B was exceeded\.$"):
        reader.feed('{"type":6}' + RS + padded(101) + RS)


def test_unfinished_record_over_the_limit_fails_before_its_end(protocol: JsonHubProtocol) -> None:
    record = padded(101).encode()
    reader = protocol.reader(100)
    assert reader.feed(record[:100]) == []
    with pytest.raises(MessageTooLarge):
        reader.feed(record[100:])  # no separator yet


def test_limit_counts_utf8_bytes_not_characters(protocol: JsonHubProtocol) -> None:
    record = padded(101)
    assert len(record) < 100  # fits in characters, not in bytes
    with pytest.raises(MessageTooLarge):
        decode(protocol, record + RS, limit=100)


# --- Errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record, text",
    [
        ("not json", "Error reading JSON."),
        ("", "Error reading JSON."),
        ('{"type":6', "Error reading JSON."),
        ('{"type":6} trailing', "Error reading JSON."),
        ('{"type":1,"target":"T","arguments":[NaN]}', "Error reading JSON."),
        ('{"type":1,"target":"T","arguments":[Infinity]}', "Error reading JSON."),
        ('{"type":1,"target":"T","arguments":[1e400]}', "Error reading JSON."),
        ('{"type":2,"invocationId":"1","item":"\\ud800"}', "Error reading JSON."),
        ("[" * 5000 + "]" * 5000, "Error reading JSON."),
        ("[1]", "Unexpected JSON Token Type 'Array'. Expected a JSON Object."),
        ('"text"', "Unexpected JSON Token Type 'String'. Expected a JSON Object."),
        ("{}", "Missing required property 'type'."),
        ('{"target":"T"}', "Missing required property 'type'."),
        ('{"type":"1"}', "Expected 'type' to be of type Number."),
        ('{"type":null}', "Expected 'type' to be of type Number."),
        ('{"type":1.5}', "Expected 'type' to be of type Number."),
        ('{"type":true}', "Expected 'type' to be of type Number."),
        ('{"type":1,"arguments":[]}', "Missing required property 'target'."),
        ('{"type":1,"target":"","arguments":[]}', "Missing required property 'target'."),
        ('{"type":1,"target":5,"arguments":[]}', "Expected 'target' to be of type String."),
        ('{"type":1,"target":"T"}', "Missing required property 'arguments'."),
        ('{"type":1,"target":"T","arguments":{}}', "Expected 'arguments' to be of type Array."),
        ('{"type":1,"target":"T","arguments":null}', "Expected 'arguments' to be of type Array."),
        (
            '{"type":1,"target":"T","arguments":[],"invocationId":1}',
            "Expected 'invocationId' to be of type String.",
        ),
        (
            '{"type":1,"target":"T","arguments":[],"streamIds":"0"}',
            "Expected 'streamIds' to be of type Array.",
        ),
        (
            '{"type":1,"target":"T","arguments":[],"streamIds":[null]}',
            "Null value for 'streamIds' is not valid.",
        ),
        (
            '{"type":1,"target":"T","arguments":[],"streamIds":[0]}',
            "Expected 'streamIds' items to be of type String.",
        ),
        (
            '{"type":1,"target":"T","arguments":[],"headers":[]}',
            "Expected 'headers' to be of type Object.",
        ),
        (
            '{"type":1,"target":"T","arguments":[],"headers":{"a":1}}',
            "Expected header 'a' to be of type String.",
        ),
        ('{"type":2,"item":1}', "Missing required property 'invocationId'."),
        ('{"type":2,"invocationId":"","item":1}', "Missing required property 'invocationId'."),
        ('{"type":2,"invocationId":"1"}', "Missing required property 'item'."),
        ('{"type":3}', "Missing required property 'invocationId'."),
        (
            '{"type":3,"invocationId":"1","error":"e","result":1}',
            "The 'error' and 'result' properties are mutually exclusive.",
        ),
        ('{"type":3,"invocationId":"1","error":5}', "Expected 'error' to be of type String."),
        ('{"type":4,"target":"T","arguments":[]}', "Missing required property 'invocationId'."),
        ('{"type":4,"invocationId":"1","arguments":[]}', "Missing required property 'target'."),
        ('{"type":4,"invocationId":"1","target":"T"}', "Missing required property 'arguments'."),
        ('{"type":5}', "Missing required property 'invocationId'."),
        ('{"type":7,"allowReconnect":"yes"}', "Expected 'allowReconnect' to be true or false."),
        ('{"type":7,"error":false}', "Expected 'error' to be of type String."),
        ('{"type":8}', "Missing required property 'sequenceId'."),
        ('{"type":9,"sequenceId":"1"}', "Expected 'sequenceId' to be of type Number."),
        ('{"type":9,"sequenceId":1.5}', "Expected 'sequenceId' to be of type Number."),
        (
            '{"type":8,"sequenceId":9223372036854775808}',
            "Expected 'sequenceId' to be of type Number.",
        ),
    ],
)
def test_error_texts(protocol: JsonHubProtocol, record: str, text: str) -> None:
    assert error_of(protocol, record + RS) == text


def test_invalid_utf8_and_lone_surrogates_are_protocol_errors(protocol: JsonHubProtocol) -> None:
    assert (
        error_of(protocol, b'{"type":2,"invocationId":"1","item":"\xff"}\x1e')
        == "Error reading JSON."
    )
    assert (
        error_of(protocol, '{"type":2,"invocationId":"1","item":"\ud800"}\x1e')
        == "Error reading JSON."
    )
    # An escaped surrogate *pair* is fine.
    assert decode(protocol, '{"type":2,"invocationId":"1","item":"\\ud83d\\ude00"}\x1e') == [
        StreamItem("1", "😀")
    ]


def test_messages_before_a_bad_record_in_the_same_frame_are_not_returned(
    protocol: JsonHubProtocol,
) -> None:
    # The interface returns all or raises: the connection closes on the error anyway.
    assert error_of(protocol, '{"type":6}' + RS + "{" + RS) == "Error reading JSON."
