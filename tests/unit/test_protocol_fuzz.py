"""Fuzzing both hub protocol codecs with one set of properties: any input raises nothing but a
ProtocolError, and a record shaped like a hub message decodes or fails cleanly, what decodes
round-tripping. The JSON codec runs with each JSON library available, and both must agree."""

from __future__ import annotations

import json
import operator
from dataclasses import dataclass
from typing import Any, Callable

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.signalr.messages import HubMessage
from hub.signalr.protocols import HubProtocol, ProtocolError
from hub.signalr.protocols.json import ORJSON, STDLIB_JSON, JsonHubProtocol
from hub.signalr.protocols.msgpack import MessagePackHubProtocol, encode_length_prefix

RS = "\x1e"

# --- JSON: objects shaped like hub messages, each field plausible or anything at all ----------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)  # beyond: see test_json_protocol.py::test_integers_beyond_64_bits
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
json_ids = st.sampled_from(["", "1", "abc"]) | json_values
hub_like_objects = st.fixed_dictionaries(
    {},
    optional={
        "type": st.integers(0, 10) | json_values,
        "invocationId": json_ids,
        "target": st.sampled_from(["", "Send"]) | json_values,
        "arguments": st.lists(json_values, max_size=3) | json_values,
        "streamIds": st.lists(json_ids, max_size=2) | json_values,
        "headers": st.dictionaries(st.text(), st.text() | json_values, max_size=2) | json_values,
        "item": json_values,
        "result": json_values,
        "error": st.text() | json_values,
        "allowReconnect": st.booleans() | json_values,
        "sequenceId": st.integers(-(2**64), 2**64) | json_values,
    },
)

# --- MessagePack: arrays shaped like hub messages, each element plausible or anything at all ----------

msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text()
    | st.binary(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text() | st.integers(-(2**63), 2**64 - 1), inner, max_size=4)
    ),
    max_leaves=12,
)
msgpack_ids = st.sampled_from([None, "", "1"]) | msgpack_values
msgpack_headers = st.dictionaries(st.text(), st.text(), max_size=2) | st.none() | msgpack_values
hub_like_arrays = st.tuples(
    st.integers(0, 10) | msgpack_values,
    msgpack_headers,
    msgpack_ids,
    st.sampled_from(["", "Send"]) | msgpack_values,
    st.lists(msgpack_values, max_size=3) | msgpack_values,
    st.lists(msgpack_ids, max_size=2) | msgpack_values,
    msgpack_values,
).flatmap(lambda items: st.integers(0, len(items)).map(lambda n: list(items[:n])))


def msgpack_record(value: Any) -> bytes:
    body = msgpack.packb(value, use_bin_type=True)
    return encode_length_prefix(len(body)) + body


def same_with_nan(a: list[HubMessage], b: list[HubMessage]) -> bool:
    """Equality that treats NaN as equal to itself (MessagePack carries it unchanged)."""
    return msgpack.packb([repr(m) for m in a]) == msgpack.packb([repr(m) for m in b])


# --- the codecs under test -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Codec:
    protocols: list[HubProtocol]  # every reader of the codec: all of them must agree
    hub_like_records: st.SearchStrategy[bytes | str]
    same: Callable[[list[HubMessage], list[HubMessage]], bool]


JSON = Codec(
    [JsonHubProtocol(library) for library in (STDLIB_JSON, ORJSON)],
    hub_like_objects.map(lambda obj: json.dumps(obj) + RS),
    operator.eq,
)
MESSAGEPACK = Codec([MessagePackHubProtocol()], hub_like_arrays.map(msgpack_record), same_with_nan)

# Noise: random chunks, with the codec's own separators and markers mixed in.
NOISE = [
    pytest.param(
        JSON,
        st.lists(st.binary(max_size=64) | st.sampled_from([b"\x1e", b"{", b"}", b'"type":']), max_size=12),
        id="json-bytes",
    ),
    pytest.param(JSON, st.lists(st.text(max_size=64) | st.just(RS), max_size=12), id="json-text"),
    pytest.param(
        MESSAGEPACK,
        st.lists(st.binary(max_size=64) | st.sampled_from([b"\x02\x91\x06", b"\x80", b"\x91", b"\xff"]), max_size=12),
        id="messagepack-bytes",
    ),
]


@pytest.mark.parametrize(("codec", "chunks"), NOISE)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_random_input_raises_only_protocol_errors(
    codec: Codec, chunks: st.SearchStrategy[list[Any]], data: st.DataObject
) -> None:
    drawn = data.draw(chunks, label="chunks")
    for protocol in codec.protocols:
        reader = protocol.reader(256)
        try:
            for chunk in drawn:
                reader.feed(chunk)
        except ProtocolError:
            pass


@pytest.mark.parametrize("codec", [pytest.param(JSON, id="json"), pytest.param(MESSAGEPACK, id="messagepack")])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_hub_like_record_decodes_or_fails_cleanly_and_what_decodes_round_trips(
    codec: Codec, data: st.DataObject
) -> None:
    record = data.draw(codec.hub_like_records, label="record")
    results: list[str | list[HubMessage]] = []
    for protocol in codec.protocols:
        try:
            messages = protocol.reader(32 * 1024).feed(record)
        except ProtocolError as error:
            results.append(str(error))
            continue
        results.append(messages)
        for message in messages:
            assert codec.same(protocol.reader(32 * 1024).feed(protocol.encode(message)), [message])
    assert all(result == results[0] for result in results[1:])  # the codec's readers agree
