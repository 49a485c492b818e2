"""SendEventData's MessagePack arguments bound at decode time (hub.py binders, msgpack.py, and
hub/writer/binding.py): the bound path must accept exactly what the generic path
(decode, then parse_events) accepts, build the same events, and decline everything else."""

from __future__ import annotations

import base64

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st
from unit import client_vectors as vectors

from hub.signalr.hub import Hub, hub_method
from hub.signalr.messages import Invocation
from hub.signalr.protocols.base import ProtocolError
from hub.signalr.protocols.msgpack import (
    MessagePackHubProtocol,
    _unpack,
    encode_length_prefix,
)
from hub.streams.models import Event
from hub.streams.errors import ValidationError
from hub.streams.validation import EventBatch, parse_events
from hub.writer.binding import messagepack_names_and_events
from hub.writer.hub import WriterHub

protocol = MessagePackHubProtocol()
BINDERS = {"sendeventdata": messagepack_names_and_events}

# --- the events binder against the generic path --------------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1), st.floats(allow_nan=True),
    st.text(max_size=4), st.just(""), st.binary(max_size=3),
    st.sampled_from([1.618133869e18, 2.0**63, -(2.0**63), 1.5e18 + 0.5, 2**63 - 1, -(2**63)]),
)
keys = st.sampled_from(["id", "Id", "timestamp", "Timestamp", "value", "Value", "tags", "Tags", "other"])
tags = st.one_of(scalars, st.dictionaries(st.one_of(st.text(max_size=3), st.integers(0, 3)), scalars, max_size=3))
good_event = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=4), "timestamp": st.one_of(st.integers(-(2**63), 2**63 - 1), st.just(1.618133869e18))},
    optional={"value": st.one_of(st.none(), st.text(max_size=4)), "tags": st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2)},
)
raw_events = st.one_of(good_event, scalars, st.dictionaries(keys, st.one_of(scalars, tags), max_size=6))
arguments = st.one_of(
    st.tuples(st.text(max_size=3), st.text(max_size=3), st.lists(raw_events, max_size=4)).map(list),
    st.lists(st.one_of(scalars, st.lists(raw_events, max_size=2)), max_size=4),
)


def generic(packed: bytes) -> list | None:
    """What the usual path makes of the arguments: their decoded values with parsed events, or None
    when parse_events refuses them (or they are not three arguments)."""
    args = _unpack(packed)
    if not isinstance(args, list) or len(args) != 3:
        return None
    try:
        return [args[0], args[1], parse_events(args[2])]
    except ValidationError:
        return None


@settings(max_examples=600, deadline=None)
@given(arguments)
def test_bound_events_are_what_the_generic_path_makes_or_nothing(args: list) -> None:
    packed = msgpack.packb(args, use_bin_type=True)
    bound = messagepack_names_and_events(packed)
    if bound is None:
        return  # declined: the generic path judges (and names the error)
    assert type(bound[2]) is EventBatch and all(type(e) is Event for e in bound[2])
    assert all(type(e.timestamp) is int for e in bound[2])
    assert generic(packed) == bound


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=3), st.text(min_size=1, max_size=3), st.lists(good_event, max_size=5))
def test_the_usual_events_are_bound(topic: str, stream: str, events: list) -> None:
    bound = messagepack_names_and_events(msgpack.packb([topic, stream, events]))
    assert bound is not None and bound == generic(msgpack.packb([topic, stream, events]))


def test_what_is_declined() -> None:
    def declined(*events) -> bool:
        return messagepack_names_and_events(msgpack.packb(["t", "s", list(events)], use_bin_type=True)) is None

    assert declined({"Id": "a", "Timestamp": 1})  # PascalCase: the generic path reads it
    assert declined({"id": "a", "timestamp": 1, "extra": 1})  # unknown fields: ignored there
    assert declined({"id": "a", "timestamp": 1, "tags": None})  # nil tags mean none there
    assert declined({"id": "", "timestamp": 1})
    assert declined({"id": "a", "timestamp": 1.5})
    assert declined({"id": "a", "timestamp": 2**63})
    assert declined({"id": "a", "timestamp": 2.0**63})
    assert declined({"id": b"a", "timestamp": 1})
    assert messagepack_names_and_events(b"\x93\xa1t\xa1s\x91\x82\xa2id\xa3\xed\xa0\x80\xa9timestamp\x01") is None  # a surrogate's bytes
    assert not declined({"id": "a", "timestamp": 1.618133869e18, "value": None, "tags": {"k": "v"}})


# --- the MessagePack reader with binders ---------------------------------------------------------


def record(value) -> bytes:
    body = msgpack.packb(value, use_bin_type=True)
    return encode_length_prefix(len(body)) + body


EVENTS = [{"id": "a", "timestamp": 1, "value": "v", "tags": {"k": "v"}}]


def test_the_usual_invocation_of_a_bound_target_is_bound_and_equal_to_the_generic_reading() -> None:
    for value in (
        [1, {}, "7", "SendEventData", ["t", "s", EVENTS]],
        [1, {}, None, "sendeventdata", ["t", "s", EVENTS]],  # fire-and-forget, any case
        [1, {}, "7", "SendEventData", ["t", "s", EVENTS], []],
        [1, {}, "7", "SendEventData", ["t", "s", EVENTS], None],
        [1, {}, "", "SendEventData", ["t", "s", EVENTS]],  # "" is fire-and-forget too
    ):
        [bound] = protocol.reader(1 << 20, BINDERS).feed(record(value))
        [plain] = protocol.reader(1 << 20).feed(record(value))
        assert type(bound.arguments[2]) is EventBatch
        assert (bound.target, bound.invocation_id, bound.stream_ids, bound.headers) == (
            plain.target, plain.invocation_id, plain.stream_ids, plain.headers
        )
        assert bound.arguments[:2] == plain.arguments[:2] and bound.arguments[2] == parse_events(plain.arguments[2])


def test_anything_else_is_read_the_usual_way() -> None:
    for value in (
        [1, {"h": "v"}, "7", "SendEventData", ["t", "s", EVENTS]],  # headers
        [1, {}, "7", "SendEventData", ["t", "s", EVENTS], ["0"]],  # streams
        [1, {}, "7", "SendParameterData", ["t", "s", {"timestamps": [1]}]],  # no binder
        [1, {}, "7", "SendEventData", ["t", "s", [{"Id": "a", "Timestamp": 1}]]],  # declined
        [1, {}, "7", "SendEventData", ["t", "s"]],  # arity: the dispatcher says so
    ):
        [message] = protocol.reader(1 << 20, BINDERS).feed(record(value))
        assert message == protocol.reader(1 << 20).feed(record(value))[0]
        assert not any(type(a) is EventBatch for a in message.arguments)


def test_the_real_javascript_client_frame_is_bound() -> None:
    frames = vectors.client_frames(vectors.MSGPACK_VECTORS)
    data = base64.b64decode(frames[2]["base64"])  # SendEventData with a float64 timestamp
    [message] = protocol.reader(1 << 20, BINDERS).feed(data)
    assert isinstance(message, Invocation) and type(message.arguments[2]) is EventBatch
    assert message.arguments[2] == [Event("Alert", 1_618_133_869_000_000_000, "Help", {"capacity": "over"})]


def test_the_writer_hub_binds_send_event_data_for_messagepack_only() -> None:
    class Plain(Hub):
        @hub_method("Echo")
        async def echo(self, call, value):
            return value

    methods = WriterHub(service=None).methods()  # type: ignore[arg-type]
    assert methods["sendeventdata"].binders == {"messagepack": messagepack_names_and_events}
    assert all(not m.binders for name, m in methods.items() if name != "sendeventdata")
    assert Plain().methods()["echo"].binders == {}


# --- the whole record in one decode (TypedArguments) ---------------------------------------------


def _reader_without_typed():
    """A reader that binds as before the typed path: the binder on the arguments only."""
    reader = protocol.reader(1 << 20, BINDERS)
    reader._typed = None
    return reader


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.text(max_size=40)),
            st.sampled_from(["SendEventData", "sendeventdata", "SENDEVENTDATA"]),
            arguments,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_the_typed_reading_is_the_binders_reading(invocations: list) -> None:
    """For any arguments, any id (nil, fixstr, str 8) and any spelling of the target, in any order on
    one reader (it tries first the typed reading that read its last record), the reader with the
    typed path makes what the binder alone makes (which is what the generic path makes)."""
    typed_reader, bound_reader = protocol.reader(1 << 20, BINDERS), _reader_without_typed()
    for invocation_id, target, args in invocations:
        data = record([1, {}, invocation_id, target, args])
        [typed] = typed_reader.feed(data)
        [bound] = bound_reader.feed(data)
        assert repr(typed) == repr(bound)  # repr: a NaN argument is equal to itself there
        assert [type(a) for a in typed.arguments] == [type(a) for a in bound.arguments]  # bound events stay an EventBatch


def _declining(calls: list[bytes]):
    def declining(raw: bytes) -> None:  # declines everything: only the typed path can bind
        calls.append(raw)

    declining.typed = messagepack_names_and_events.typed  # type: ignore[attr-defined]
    return declining


def test_the_typed_path_reads_the_usual_record_without_the_binder() -> None:
    """The usual record does not reach the binder (proof that the one-decode path runs), with
    integer timestamps or JavaScript's float64 ones (the type's `alternative`), in any order on one
    reader, while anything both types refuse, or their `finish` declines, still does."""
    calls: list[bytes] = []
    reader = protocol.reader(1 << 20, {"sendeventdata": _declining(calls)})
    floats = [{"id": "a", "timestamp": 1.618133869e18}]
    for events in (EVENTS, floats, floats, EVENTS, floats):  # int first, then float first, and back
        [message] = reader.feed(record([1, {}, "x" * 40, "SendEventData", ["t", "s", events]]))
        assert calls == [] and type(message.arguments[2]) is EventBatch and message.invocation_id == "x" * 40
    assert message.arguments[2] == [Event("a", 1618133869000000000)] and type(message.arguments[2][0].timestamp) is int
    reader.feed(record([1, {}, "7", "SendEventData", ["t", "s", [{"id": "a", "timestamp": 1.5}]]]))  # not a whole int
    reader.feed(record([1, {}, "7", "SendEventData", ["t", "s", [{"id": "a", "timestamp": 2.0**63}]]]))  # beyond int64
    reader.feed(record([1, {}, "7", "SendEventData", ["t", "s", [{"Id": "a", "Timestamp": 1}]]]))
    assert len(calls) == 3


def test_a_cut_record_is_judged_as_without_the_typed_path() -> None:
    """Every prefix of the usual record (nil, fixstr and str 8 ids), as a record of its own: the same
    messages or the same error as the reader without the typed path, never an error of its own."""
    for invocation_id in (None, "7", "x" * 40):
        body = msgpack.packb([1, {}, invocation_id, "SendEventData", ["t", "s", EVENTS]])
        for cut in range(len(body) + 1):
            data = encode_length_prefix(cut) + body[:cut]
            assert _outcome(protocol.reader(1 << 20, BINDERS), data) == _outcome(_reader_without_typed(), data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60), st.sampled_from([b"", b"\xc0", b"\xa17", b"\xd9", b"\xd9\x01x", b"\xa3abc"]))
def test_any_bytes_after_the_usual_head_are_judged_as_without_the_typed_path(tail: bytes, id_bytes: bytes) -> None:
    """Whatever follows the head `95 01 80` (and an id), with the target or without: the typed path
    gives the same messages or error as the reader without it."""
    for target in (b"", b"\xadSendEventData", b"\xadsendeventdata"):
        body = b"\x95\x01\x80" + id_bytes + target + tail
        data = encode_length_prefix(len(body)) + body
        assert _outcome(protocol.reader(1 << 20, BINDERS), data) == _outcome(_reader_without_typed(), data)


def test_the_typed_path_leaves_other_layouts_alone() -> None:
    for value in (
        [1, {"h": "v"}, "7", "SendEventData", ["t", "s", EVENTS]],  # headers
        [1, {}, "7", "SendEventData", ["t", "s", EVENTS], ["0"]],  # streams
        [1, {}, 7, "SendEventData", ["t", "s", EVENTS]],  # an id that is no string
        [1, {}, "7", "SendParameterData", ["t", "s", {"timestamps": [1]}]],  # another target
        [1, {}, "7", "S" * 40, ["t", "s", EVENTS]],  # a target longer than a fixstr
        [4, {}, "7", "SendEventData", ["t", "s", EVENTS]],  # a StreamInvocation
    ):
        data = record(value)
        assert _outcome(protocol.reader(1 << 20, BINDERS), data) == _outcome(_reader_without_typed(), data)


def _outcome(reader, data: bytes):
    try:
        return reader.feed(data)
    except ProtocolError as error:  # the same error, named the same way
        return str(error)
