"""The handshake, with plain bytes: the real clients' requests, buffering, what is left for the
hub protocol, ASP.NET's refusal texts, and fuzzing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from unit.client_vectors import client_frames

from hub.signalr.handshake import (
    HandshakeError,
    HandshakeReader,
    HandshakeRequest,
    handshake_response,
    select_protocol,
)
from hub.signalr.messages import Ping
from hub.signalr.protocols import PROTOCOLS, TransferFormat

RS = "\x1e"
BOTH = {TransferFormat.TEXT, TransferFormat.BINARY}
UNREADABLE = "An unexpected error occurred during connection handshake. "
NOT_JSON = (
    'Expected a JSON handshake request such as {"protocol":"json","version":1} '
    "followed by the 0x1E record separator."
)


def error_of(*frames: bytes | str, max_size: int = 64 * 1024) -> str:
    reader = HandshakeReader(max_size)
    with pytest.raises(HandshakeError) as caught:
        for frame in frames:
            reader.feed(frame)
    return str(caught.value)


# --- Reading the request --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "vectors", ["js-client-10.0.11-json.json", "js-client-10.0.11-msgpack.json"]
)
def test_real_client_handshakes(vectors: str) -> None:
    first = client_frames(vectors)[0]
    assert first["kind"] == "text"  # a text frame, even for messagepack
    reader = HandshakeReader()
    request = reader.feed(first["text"])
    assert request == HandshakeRequest(first["decoded"]["protocol"], first["decoded"]["version"])
    assert reader.remaining == b""
    assert select_protocol(request, PROTOCOLS, BOTH) is PROTOCOLS[request.protocol]


def test_split_byte_by_byte() -> None:
    data = b'{"protocol":"messagepack","version":1}\x1e'
    reader = HandshakeReader()
    assert [reader.feed(data[i : i + 1]) for i in range(len(data) - 1)] == [None] * (len(data) - 1)
    assert reader.feed(data[-1:]) == HandshakeRequest("messagepack", 1)
    assert reader.request == HandshakeRequest("messagepack", 1)


def test_what_follows_the_separator_is_left_for_the_hub_protocol() -> None:
    reader = HandshakeReader()
    assert reader.feed('{"protocol":"js') is None
    assert reader.feed('on","version":1}\x1e{"type":6}\x1e{"ty') == HandshakeRequest("json", 1)
    assert reader.remaining == b'{"type":6}\x1e{"ty'
    protocol_reader = PROTOCOLS["json"].reader(1024)
    assert protocol_reader.feed(reader.remaining) == [Ping()]
    assert protocol_reader.feed('pe":6}\x1e') == [Ping()]


def test_binary_bytes_after_the_separator_stay_bytes() -> None:
    reader = HandshakeReader()
    assert reader.feed(b'{"protocol":"messagepack","version":1}\x1e\x02\x91\x06') is not None
    assert PROTOCOLS["messagepack"].reader(1024).feed(reader.remaining) == [Ping()]


def test_tolerated_requests() -> None:
    for text, request in [
        ('{"version":0,"protocol":"json"}', HandshakeRequest("json", 0)),  # signalrcore sends 0
        (' {"protocol":"json","version":2,"extra":[1]}\r\n', HandshakeRequest("json", 2)),
        ('{"protocol":"JSON","version":-1}', HandshakeRequest("JSON", -1)),
    ]:
        assert HandshakeReader().feed(text + RS) == request


def test_feeding_after_the_request_is_a_programming_error() -> None:
    reader = HandshakeReader()
    reader.feed('{"protocol":"json","version":1}\x1e')
    with pytest.raises(RuntimeError):
        reader.feed('{"type":6}\x1e')


@pytest.mark.parametrize(
    "data, detail",
    [
        ("not json\x1e", NOT_JSON),
        ("\x1e", NOT_JSON),
        ('{"protocol":"json"\x1e', "Error reading JSON."),
        ('{"protocol":"json","version":NaN}\x1e', "Error reading JSON."),
        ('{"protocol":"json","version":1} junk\x1e', "Error reading JSON."),
        ('{"version":1}\x1e', "Missing required property 'protocol'."),
        ('{"protocol":null,"version":1}\x1e', "Expected 'protocol' to be of type String."),
        ('{"protocol":1,"version":1}\x1e', "Expected 'protocol' to be of type String."),
        ('{"protocol":"json"}\x1e', "Missing required property 'version'."),
        ('{"protocol":"json","version":null}\x1e', "Missing required property 'version'."),
        ('{"protocol":"json","version":"1"}\x1e', "Expected 'version' to be of type Number."),
        ('{"protocol":"json","version":1.0}\x1e', "Expected 'version' to be of type Number."),
        ('{"protocol":"json","version":true}\x1e', "Expected 'version' to be of type Number."),
        (
            '{"protocol":"json","version":2147483648}\x1e',
            "Expected 'version' to be a 32-bit integer.",
        ),
        (b'{"protocol":"\xff","version":1}\x1e', "The handshake request is not valid UTF-8."),
        ('{"protocol":"\ud800","version":1}\x1e', "The handshake request is not valid UTF-8."),
    ],
)
def test_unreadable_requests(data: bytes | str, detail: str) -> None:
    assert error_of(data) == UNREADABLE + detail


def test_a_json_array_is_refused_before_its_end() -> None:
    assert error_of("[") == UNREADABLE + NOT_JSON


def test_old_pysignalr_msgpack_handshake_is_refused_at_once() -> None:
    # pysignalr < 1.3.2 sent its messagepack handshake as a msgpack record (an empty array), with
    # no 0x1E: refuse it on the first bytes instead of waiting for the handshake timeout.
    reader = HandshakeReader()
    with pytest.raises(HandshakeError, match="Expected a JSON handshake request"):
        reader.feed(b"\x01\x90")


def test_too_long_without_a_separator() -> None:
    reader = HandshakeReader(max_size=64)
    assert reader.feed('{"protocol":"' + "j" * 40) is None
    with pytest.raises(HandshakeError) as caught:
        reader.feed("j" * 40)
    assert str(caught.value) == UNREADABLE + "The handshake request is longer than 64 bytes."


def test_too_long_even_with_a_separator() -> None:
    request = '{"protocol":"json","version":1,"pad":"' + "x" * 64 + '"}'
    assert (
        error_of(request + RS, max_size=64)
        == UNREADABLE + "The handshake request is longer than 64 bytes."
    )
    assert HandshakeReader(len(request)).feed(request + RS) == HandshakeRequest("json", 1)


def test_default_limit_is_64_kib() -> None:
    reader = HandshakeReader()
    reader.feed("{" + " " * (64 * 1024 - 1))
    with pytest.raises(HandshakeError):
        reader.feed(" ")


# --- Choosing the protocol ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected", [("json", "json"), ("JSON", "json"), ("MessagePack", "messagepack")]
)
def test_protocol_names_match_case_insensitively(name: str, expected: str) -> None:
    assert select_protocol(HandshakeRequest(name, 1), PROTOCOLS, BOTH) is PROTOCOLS[expected]


@pytest.mark.parametrize("version", [-1, 0, 1, 2])
def test_any_version_up_to_two_is_accepted(version: int) -> None:
    for name in ("json", "messagepack"):
        assert select_protocol(HandshakeRequest(name, version), PROTOCOLS, BOTH) is PROTOCOLS[name]


def refusal(request: HandshakeRequest, formats: set[TransferFormat] = BOTH) -> str:
    with pytest.raises(HandshakeError) as caught:
        select_protocol(request, PROTOCOLS, formats)
    return str(caught.value)


def test_refusal_texts() -> None:
    assert refusal(HandshakeRequest("xml", 1)) == "The protocol 'xml' is not supported."
    assert refusal(HandshakeRequest("jsonx", 1)) == "The protocol 'jsonx' is not supported."
    assert refusal(HandshakeRequest("\u212aSON", 1)) == "The protocol '\u212aSON' is not supported."
    assert (
        refusal(HandshakeRequest("json", 3))
        == "The server does not support version 3 of the 'json' protocol."
    )
    assert refusal(HandshakeRequest("MessagePack", 3)) == (
        "The server does not support version 3 of the 'MessagePack' protocol."
    )
    # Server-Sent Events carry text only; ASP.NET names its own protocol here, not the client's.
    assert refusal(HandshakeRequest("MessagePack", 1), {TransferFormat.TEXT}) == (
        "Cannot use the 'messagepack' protocol on the current transport. "
        "The transport does not support 'Binary' transfer format."
    )
    assert refusal(HandshakeRequest("json", 1), {TransferFormat.BINARY}) == (
        "Cannot use the 'json' protocol on the current transport. "
        "The transport does not support 'Text' transfer format."
    )


# --- The response ---------------------------------------------------------------------------------


def test_responses() -> None:
    assert handshake_response() == "{}\x1e"
    assert handshake_response("The protocol 'xml' is not supported.") == (
        '{"error":"The protocol \'xml\' is not supported."}\x1e'
    )
    tricky = 'quote " backslash \\ newline \n record \x1e surrogate \ud800 é'
    response = handshake_response(tricky)
    assert response.endswith(RS) and response.count(RS) == 1 and response.isascii()
    assert json.loads(response[:-1]) == {"error": tricky}


# --- Properties -----------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    chunks=st.lists(
        st.binary(max_size=32)
        | st.sampled_from([b"\x1e", b"{", b'"protocol":"json"', b'"version":1', b"}"]),
        max_size=10,
    )
)
def test_random_bytes_raise_only_handshake_errors(chunks: list[bytes]) -> None:
    reader = HandshakeReader(max_size=128)
    try:
        for chunk in chunks:
            if reader.feed(chunk) is not None:
                select_protocol(reader.request, PROTOCOLS, {TransferFormat.TEXT})  # type: ignore[arg-type]
                break
    except HandshakeError as error:
        assert str(error)


@settings(max_examples=300, deadline=None)
@given(
    obj=st.dictionaries(
        st.sampled_from(["protocol", "version", "x"]),
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats()
        | st.text()
        | st.sampled_from(["json", "messagepack"]),
    )
)
def test_any_request_object_is_accepted_or_refused_with_a_text(obj: dict[str, Any]) -> None:
    try:
        request = HandshakeReader().feed(json.dumps(obj) + RS)
        assert request is not None
        protocol = select_protocol(request, PROTOCOLS, BOTH)
    except HandshakeError as error:
        assert json.loads(handshake_response(str(error))[:-1]) == {"error": str(error)}
    else:
        assert protocol.name == request.protocol.lower() and request.version <= 2
