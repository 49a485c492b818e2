"""The MessagePack hub protocol codec, with plain bytes: real client frames, exact layouts,
VarInt framing, limits, error texts and extension types (fuzzing: test_protocol_fuzz.py)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import msgpack
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
from hub.signalr.protocols.msgpack import (
    MessagePackHubProtocol,
    _completion_array,
    encode_length_prefix,
    read_length_prefix,
)

MAX = 32 * 1024
protocol = MessagePackHubProtocol()


def decode(*frames: bytes | str, limit: int = MAX) -> list[HubMessage]:
    reader = protocol.reader(limit)
    return [message for frame in frames for message in reader.feed(frame)]


def record(value: Any) -> bytes:
    body = msgpack.packb(value, use_bin_type=True)
    return encode_length_prefix(len(body)) + body


def layout(data: bytes) -> Any:
    """The msgpack array inside one encoded record."""
    length, start = read_length_prefix(data, 0)  # type: ignore[misc]
    assert len(data) == start + length
    return msgpack.unpackb(data[start:], raw=False)


def layout_body(data: bytes) -> bytes:
    length, start = read_length_prefix(data, 0)  # type: ignore[misc]
    return data[start : start + length]


def error_of(*frames: bytes) -> str:
    with pytest.raises(ProtocolError) as caught:
        decode(*frames)
    return str(caught.value)


def client_frames() -> list[dict[str, Any]]:
    return vectors.client_frames(vectors.MSGPACK_VECTORS)


def binary_frames() -> list[bytes]:
    return [base64.b64decode(frame["base64"]) for frame in client_frames()[1:]]


# @msgpack/msgpack writes integers above 2^53 as float64: passed through unchanged.
EVENT = {"id": "Alert", "timestamp": 1.618133869e18, "tags": {"capacity": "over"}, "value": "Help"}
CLIENT_MESSAGES = client_messages(EVENT)

ALL_TYPES: list[HubMessage] = [
    Invocation("Send", [1, "two", None, {"three": [3.5]}, b"\x00bin"], "7", headers={"a": "b"}),
    Invocation("Fire", [], None),
    Invocation("Upload", ["x"], "8", stream_ids=["0", "1"]),
    StreamItem("0", {"timestamp": 1618133869000000000, "tags": {"k": "v"}, 1: "int key"}),
    StreamItem("0", None, headers={"h": "v"}),
    Completion("7"),
    Completion.with_result("7", None),
    Completion.with_result("7", [2**64 - 1, -(2**63), float("nan")]),
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


def same(a: list[HubMessage], b: list[HubMessage]) -> bool:
    """Equality that treats NaN as equal to itself (msgpack carries it unchanged)."""
    return msgpack.packb([repr(m) for m in a]) == msgpack.packb([repr(m) for m in b])


def test_name_and_format() -> None:
    assert isinstance(PROTOCOLS["messagepack"], MessagePackHubProtocol)
    assert (protocol.name, protocol.transfer_format) == ("messagepack", TransferFormat.BINARY)


# --- Real client frames ---------------------------------------------------------------------------


def test_decodes_every_real_client_frame() -> None:
    frames = client_frames()[1:]  # [0] is the handshake, a text frame: see test_handshake.py
    assert {frame["kind"] for frame in frames} == {"binary"}
    reader = protocol.reader(MAX)
    decoded = []
    for frame in frames:
        messages = reader.feed(base64.b64decode(frame["base64"]))
        assert len(messages) == len(frame["decoded"])
        decoded += messages
    assert decoded == CLIENT_MESSAGES
    timestamp = decoded[1].arguments[2][0]["timestamp"]  # type: ignore[union-attr]
    assert type(timestamp) is float and timestamp == 1618133869000000000


def test_real_client_frames_in_one_buffer_and_byte_by_byte() -> None:
    stream = b"".join(binary_frames())
    assert decode(stream) == CLIENT_MESSAGES
    assert decode(*(stream[i : i + 1] for i in range(len(stream)))) == CLIENT_MESSAGES


def test_encoding_reproduces_the_client_bytes_where_layouts_agree() -> None:
    frames = binary_frames()
    for frame, message in zip(frames, CLIENT_MESSAGES, strict=True):
        if isinstance(message, (Ping, StreamItem, Completion, CancelInvocation)) or (
            isinstance(message, Invocation) and message.stream_ids
        ):
            assert protocol.encode(message) == frame
    # Where they differ, only by what the client leaves out.
    assert layout(frames[1]) + [[]] == layout(protocol.encode(CLIENT_MESSAGES[1]))  # streamIds
    assert layout(frames[-1]) + [False] == layout(protocol.encode(Close()))  # allowReconnect


# --- Layouts and round trips ----------------------------------------------------------------------


@pytest.mark.parametrize("message", ALL_TYPES, ids=lambda m: type(m).__name__)
def test_round_trip(message: HubMessage) -> None:
    data = protocol.encode(message)
    assert isinstance(data, bytes)
    assert same(decode(data), [message])


@pytest.mark.parametrize(
    "message, array",
    [
        (Invocation("T", [1], None), [1, {}, None, "T", [1], []]),
        (Invocation("T", [], "", headers={"a": "b"}), [1, {"a": "b"}, None, "T", [], []]),
        (Invocation("T", [], "4", stream_ids=["0"]), [1, {}, "4", "T", [], ["0"]]),
        (StreamItem("1", {"v": 1}), [2, {}, "1", {"v": 1}]),
        (Completion("1"), [3, {}, "1", 2]),
        (Completion.with_result("1", None), [3, {}, "1", 3, None]),
        (Completion.with_result("1", 5), [3, {}, "1", 3, 5]),
        (Completion.with_error("1", "boom"), [3, {}, "1", 1, "boom"]),
        (StreamInvocation("1", "R", [0]), [4, {}, "1", "R", [0], []]),
        (CancelInvocation("1"), [5, {}, "1"]),
        (Ping(), [6]),
        (Close(), [7, None, False]),
        (Close("bye", allow_reconnect=True), [7, "bye", True]),
        (Ack(3), [8, 3]),
        (Sequence(4), [9, 4]),
    ],
)
def test_exact_layouts(message: HubMessage, array: list[Any]) -> None:
    assert layout(protocol.encode(message)) == array


@pytest.mark.parametrize("invocation_id", ["", "1", "a" * 31, "a" * 32, "a" * 300, "é", "ü" * 20])
@pytest.mark.parametrize("make", [Completion, lambda iid: Completion.with_result(iid, None)])
def test_the_usual_completion_is_the_bytes_msgpack_writes(invocation_id: str, make: Any) -> None:
    """A void or null-result Completion is built directly (the answer to nearly every write): the
    same bytes as the generic writer, the one-byte-prefix heads included, every id length and kind."""
    message = make(invocation_id)
    body = msgpack.packb(_completion_array(message), use_bin_type=True)
    assert protocol.encode(message) == encode_length_prefix(len(body)) + body


def test_ping_bytes() -> None:
    assert protocol.encode(Ping()) == b"\x02\x91\x06"


# --- VarInt framing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "length, prefix",
    [
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16383, b"\xff\x7f"),
        (16384, b"\x80\x80\x01"),
        (2**31 - 1, b"\xff\xff\xff\xff\x07"),
    ],
)
def test_length_prefix(length: int, prefix: bytes) -> None:
    assert encode_length_prefix(length) == prefix
    assert read_length_prefix(prefix + b"rest", 0) == (length, len(prefix))
    assert read_length_prefix(b"xx" + prefix, 2) == (length, 2 + len(prefix))
    assert read_length_prefix(prefix[:-1], 0) is None  # incomplete prefix: wait for more


@pytest.mark.parametrize(
    "prefix",
    [
        b"\xff\xff\xff\xff\x08",
        b"\xff\xff\xff\xff\x7f",
        b"\x80\x80\x80\x80\x80",
        b"\x80\x80\x80\x80\x80\x01",
    ],
)
def test_prefix_over_five_bytes_or_2gb_is_a_protocol_error(prefix: bytes) -> None:
    assert error_of(prefix) == "Messages over 2GB in size are not supported."


def test_several_records_per_frame_and_split_records() -> None:
    big = StreamItem("1", "x" * 300)  # a two-byte length prefix
    data = protocol.encode(Ping()) + protocol.encode(big) + protocol.encode(Close())
    reader = protocol.reader(MAX)
    assert reader.feed(data[:4]) == [Ping()]  # Ping, then the first byte of the prefix
    assert reader.feed(data[4:5]) == []  # the second byte of the prefix
    assert reader.feed(data[5:-3]) == [big]
    assert reader.feed(data[-3:]) == [Close()]
    assert decode(*(data[i : i + 1] for i in range(len(data)))) == [Ping(), big, Close()]


def test_str_frames_are_read_as_their_utf8_bytes() -> None:
    # A str frame is no way to send MessagePack (every array header is a non-ASCII byte), but
    # it must fail like bytes would: "\x01\x06" is a record holding the integer 6.
    assert error_of("\x01\x06") == "Reading array length for 'message' failed."  # type: ignore[arg-type]


# --- Size limit -----------------------------------------------------------------------------------


def test_record_of_exactly_the_limit_passes() -> None:
    data = protocol.encode(StreamItem("1", "x" * 100))
    size = len(layout_body(data))
    assert decode(data, limit=size) == [StreamItem("1", "x" * 100)]


def test_declared_length_over_the_limit_fails_before_the_body_arrives() -> None:
    reader = protocol.reader(100)
    assert reader.feed(protocol.encode(Ping())) == [Ping()]
    with pytest.raises(MessageTooLarge, match=r"^The maximum message size of 100B was exceeded\.$"):
        reader.feed(encode_length_prefix(101))  # the prefix alone


# --- Tolerance ------------------------------------------------------------------------------------


def test_tolerated_variants() -> None:
    frames = [
        record([1, None, "1", "T", []]),  # nil headers (some Python clients)
        record([1, {}, "", "T", [], None]),  # "" id = fire-and-forget; nil streamIds
        record([4, {}, "1", "T", [], ["0"], "extra"]),  # trailing elements ignored
        record([42, "future"]),  # unknown type: skipped
        encode_length_prefix(3)
        + b"\x91\x06\xc0",  # bytes after the array: ignored, as ASP.NET does
        record([3, {}, "1", 1, None]),  # kind 1 with nil error reads as void, as in ASP.NET
    ]
    assert decode(*frames) == [
        Invocation("T", [], "1"),
        Invocation("T", [], None),
        StreamInvocation("1", "T", [], ["0"]),
        Ping(),
        Completion("1"),
    ]


def test_timestamp_extension_becomes_an_aware_datetime_and_goes_back_out() -> None:
    when = datetime(2021, 4, 11, 9, 37, 49, 123000, tzinfo=UTC)
    body = msgpack.packb([2, {}, "1", when], datetime=True)
    [item] = decode(encode_length_prefix(len(body)) + body)
    assert item == StreamItem("1", when)
    assert protocol.encode(item) == encode_length_prefix(len(body)) + body


def test_other_extension_types_pass_through() -> None:
    ext = msgpack.ExtType(5, b"\x01\x02")
    [item] = decode(record([2, {}, "1", ext]))
    assert item == StreamItem("1", ext)
    assert protocol.encode(item) == record([2, {}, "1", ext])


# --- Errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, text",
    [
        (b"\x00", "Error reading MessagePack."),  # empty body
        (b"\x01\xc1", "Error reading MessagePack."),  # 0xc1 is never used
        (b"\x02\x92\x06", "Error reading MessagePack."),  # array cut short
        (
            encode_length_prefix(5001) + b"\x91" * 5000 + b"\x06",
            "Error reading MessagePack.",
        ),  # too deep
        (b"\x03\xa2\xff\xfe", "Error reading MessagePack."),  # invalid UTF-8 in a str
        (record({"type": 1}), "Reading array length for 'message' failed."),
        (record([]), "Reading 'messageType' as Int32 failed."),
        (record(["1"]), "Reading 'messageType' as Int32 failed."),
        (record([True]), "Reading 'messageType' as Int32 failed."),
        (record([1.0]), "Reading 'messageType' as Int32 failed."),
        (record([2**40]), "Reading 'messageType' as Int32 failed."),
        (record([1]), "Reading map length for 'headers' failed."),
        (record([1, []]), "Reading map length for 'headers' failed."),
        (record([1, {1: "v"}, "1", "T", []]), "Reading 'headers[0].Key' as String failed."),
        (record([1, {"": "v"}, "1", "T", []]), "Null or empty key in header."),
        (record([1, {"k": 1}, "1", "T", []]), "Reading 'headers[0].Value' as String failed."),
        (record([1, {"k": ""}, "1", "T", []]), "Null or empty value in header."),
        (record([1, {}, 1, "T", []]), "Reading 'invocationId' as String failed."),
        (record([1, {}, "1"]), "Reading 'target' as String failed."),
        (record([1, {}, "1", None, []]), "Null or empty target for Invocation message."),
        (record([1, {}, "1", b"T", []]), "Reading 'target' as String failed."),
        (record([1, {}, "1", "T"]), "Reading array length for 'arguments' failed."),
        (record([1, {}, "1", "T", {}]), "Reading array length for 'arguments' failed."),
        (record([1, {}, "1", "T", [], "0"]), "Reading array length for 'streamIds' failed."),
        (record([1, {}, "1", "T", [], [None]]), "Null or empty value in streamIds received."),
        (record([1, {}, "1", "T", [], [0]]), "Reading 'streamIds[0]' as String failed."),
        (record([2, {}, None, 1]), "Null or empty invocation ID for StreamItem message."),
        (record([2, {}, "1"]), "Reading 'item' failed."),
        (record([3, {}, "", 2]), "Null or empty invocation ID for Completion message."),
        (record([3, {}, "1"]), "Reading 'resultKind' as Int32 failed."),
        (record([3, {}, "1", 4]), "Invalid invocation result kind."),
        (record([3, {}, "1", 3]), "Reading 'result' failed."),
        (record([3, {}, "1", 1, 5]), "Reading 'error' as String failed."),
        (
            record([4, {}, None, "T", []]),
            "Null or empty invocation ID for StreamInvocation message.",
        ),
        (record([4, {}, "1", "", []]), "Null or empty target for StreamInvocation message."),
        (record([5, {}]), "Reading 'invocationId' as String failed."),
        (record([5, {}, ""]), "Null or empty invocation ID for CancelInvocation message."),
        (record([7]), "Reading 'error' as String failed."),
        (record([7, None, "yes"]), "Reading 'allowReconnect' as Boolean failed."),
        (record([8]), "Reading 'sequenceId' as Int64 failed."),
        (record([9, 2**63]), "Reading 'sequenceId' as Int64 failed."),
        (record([9, 1.0]), "Reading 'sequenceId' as Int64 failed."),
    ],
)
def test_error_texts(data: bytes, text: str) -> None:
    assert error_of(data) == text


def test_timestamp_out_of_datetime_range_is_a_protocol_error() -> None:
    body = msgpack.packb([2, {}, "1", msgpack.Timestamp(2**40, 0)])  # year ~36812
    assert error_of(encode_length_prefix(len(body)) + body) == "Error reading MessagePack."
