"""The handshake, with plain bytes: the real clients' requests, buffering, what is left for the
hub protocol, ASP.NET's refusal texts, and fuzzing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from unit.client_vectors import JSON_VECTORS, MSGPACK_VECTORS, client_frames

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


@pytest.mark.parametrize("vectors", [JSON_VECTORS, MSGPACK_VECTORS])
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


@pytest.mark.parametrize(
    "protocol, frames, rest, continuation",
    [
        # a record and the start of the next, in the frame that ends the handshake
        (
            "json",
            ['{"protocol":"js', 'on","version":1}\x1e{"type":6}\x1e{"ty'],
            b'{"type":6}\x1e{"ty',
            'pe":6}\x1e',
        ),
        # binary bytes after the separator stay bytes
        (
            "messagepack",
            [b'{"protocol":"messagepack","version":1}\x1e\x02\x91\x06\x02'],
            b"\x02\x91\x06\x02",
            b"\x91\x06",
        ),
    ],
)
def test_what_follows_the_separator_is_left_for_the_hub_protocol(
    protocol: str, frames: list[bytes | str], rest: bytes, continuation: bytes | str
) -> None:
    reader = HandshakeReader()
    assert [reader.feed(frame) for frame in frames[:-1]] == [None] * (len(frames) - 1)
    assert reader.feed(frames[-1]) == HandshakeRequest(protocol, 1)
    assert reader.remaining == rest
    protocol_reader = PROTOCOLS[protocol].reader(1024)
    assert protocol_reader.feed(reader.remaining) == [Ping()]
    assert protocol_reader.feed(continuation) == [Ping()]


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"version":0,"protocol":"json"}', HandshakeRequest("json", 0)),  # signalrcore sends 0
        (' {"protocol":"json","version":2,"extra":[1]}\r\n', HandshakeRequest("json", 2)),
        ('{"protocol":"JSON","version":-1}', HandshakeRequest("JSON", -1)),
    ],
)
def test_tolerated_requests(text: str, expected: HandshakeRequest) -> None:
    assert HandshakeReader().feed(text + RS) == expected


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
        # refused on the first bytes, before any separator:
        ("[", NOT_JSON),  # a JSON array
        # pysignalr < 1.3.2 sent its messagepack handshake as a msgpack record (an empty array),
        # with no 0x1E: refused at once instead of after the handshake timeout
        (b"\x01\x90", NOT_JSON),
    ],
)
def test_unreadable_requests(data: bytes | str, detail: str) -> None:
    assert error_of(data) == UNREADABLE + detail


@pytest.mark.parametrize(
    "max_size, frames",
    [
        (64, ['{"protocol":"' + "j" * 40, "j" * 40]),  # without a separator
        (64, ['{"protocol":"json","version":1,"pad":"' + "x" * 64 + '"}' + RS]),  # even with one
        (None, ["{" + " " * (64 * 1024 - 1), " "]),  # the default limit: 64 KiB
    ],
    ids=["no-separator", "with-separator", "default"],
)
def test_a_request_over_the_limit_is_refused_once_it_passes_it(max_size: int | None, frames: list[str]) -> None:
    reader = HandshakeReader() if max_size is None else HandshakeReader(max_size)
    assert [reader.feed(frame) for frame in frames[:-1]] == [None] * (len(frames) - 1)
    with pytest.raises(HandshakeError) as caught:
        reader.feed(frames[-1])
    limit = max_size or 64 * 1024
    assert str(caught.value) == UNREADABLE + f"The handshake request is longer than {limit} bytes."


def test_a_request_of_exactly_the_limit_is_read() -> None:
    request = '{"protocol":"json","version":1,"pad":"' + "x" * 64 + '"}'
    assert HandshakeReader(len(request)).feed(request + RS) == HandshakeRequest("json", 1)


# --- Choosing the protocol ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, version, expected",
    [
        # names match case-insensitively
        ("json", 1, "json"),
        ("JSON", 1, "json"),
        ("MessagePack", 1, "messagepack"),
        # any version up to two is accepted
        *((name, version, name) for version in (-1, 0, 1, 2) for name in ("json", "messagepack")),
    ],
)
def test_accepted_protocols(name: str, version: int, expected: str) -> None:
    assert select_protocol(HandshakeRequest(name, version), PROTOCOLS, BOTH) is PROTOCOLS[expected]


@pytest.mark.parametrize(
    "name, version, formats, text",
    [
        ("xml", 1, BOTH, "The protocol 'xml' is not supported."),
        ("jsonx", 1, BOTH, "The protocol 'jsonx' is not supported."),
        ("\u212aSON", 1, BOTH, "The protocol '\u212aSON' is not supported."),
        ("json", 3, BOTH, "The server does not support version 3 of the 'json' protocol."),
        ("MessagePack", 3, BOTH, "The server does not support version 3 of the 'MessagePack' protocol."),
        # Server-Sent Events carry text only; ASP.NET names its own protocol here, not the client's.
        ("MessagePack", 1, {TransferFormat.TEXT},
         "Cannot use the 'messagepack' protocol on the current transport. "
         "The transport does not support 'Binary' transfer format."),
        ("json", 1, {TransferFormat.BINARY},
         "Cannot use the 'json' protocol on the current transport. "
         "The transport does not support 'Text' transfer format."),
    ],
)
def test_refusal_texts(name: str, version: int, formats: set[TransferFormat], text: str) -> None:
    with pytest.raises(HandshakeError) as caught:
        select_protocol(HandshakeRequest(name, version), PROTOCOLS, formats)
    assert str(caught.value) == text


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
