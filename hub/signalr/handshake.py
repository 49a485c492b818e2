"""The SignalR handshake, sans-I/O: the client's first record, `{"protocol":"json","version":1}`
ending with 0x1E (always JSON text, even for messagepack), and the server's `{}` or `{"error":…}`.

Texts follow ASP.NET Core's HandshakeProtocol and HubConnectionContext; see
protocol-notes/hub-protocols.md.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from .protocols.base import HubProtocol, TransferFormat

RECORD_SEPARATOR = "\x1e"
_RS = 0x1E
_JSON_WHITESPACE = b" \t\r\n"
# ASP.NET's text for any unreadable request; we append what was wrong with it.
_UNREADABLE = "An unexpected error occurred during connection handshake."


@dataclass(slots=True)
class HandshakeRequest:
    protocol: str
    version: int


class HandshakeError(Exception):
    """A handshake the server refuses; str(self) is the text to send the client before closing."""


def _unreadable(detail: str) -> HandshakeError:
    return HandshakeError(f"{_UNREADABLE} {detail}")


class HandshakeReader:
    """Buffers the client's first record. Anything after its 0x1E belongs to the hub protocol:
    it is left in `remaining`, to be fed to the protocol's MessageReader."""

    def __init__(self, max_size: int = 64 * 1024):
        self._max = max_size
        self._buffer = bytearray()
        self._seen_start = False
        self.request: HandshakeRequest | None = None
        self.remaining = b""

    def feed(self, data: bytes | str) -> HandshakeRequest | None:
        """The request once its record is complete, None until then; raises HandshakeError."""
        if self.request is not None:
            raise RuntimeError("The handshake is complete: feed later data to the hub protocol.")
        try:
            chunk = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        except UnicodeEncodeError as error:
            raise _unreadable("The handshake request is not valid UTF-8.") from error
        self._check_start(chunk)
        end = chunk.find(_RS)
        size = len(self._buffer) + (len(chunk) if end < 0 else end)
        if size > self._max:
            raise _unreadable(f"The handshake request is longer than {self._max} bytes.")
        if end < 0:
            self._buffer += chunk
            return None
        self._buffer += chunk[:end]
        self.remaining = chunk[end + 1 :]
        self.request = _parse_request(bytes(self._buffer))
        self._buffer.clear()
        return self.request

    def _check_start(self, chunk: bytes) -> None:
        # Fail at once on a request that cannot be a JSON object (old pysignalr sent its
        # messagepack handshake as msgpack bytes, with no 0x1E), instead of waiting for a timeout.
        if self._seen_start:
            return
        stripped = chunk.lstrip(_JSON_WHITESPACE)
        if stripped:
            self._seen_start = True
            if stripped[0] != ord("{"):
                raise _unreadable(
                    'Expected a JSON handshake request such as {"protocol":"json","version":1} '
                    "followed by the 0x1E record separator."
                )


def _parse_request(payload: bytes) -> HandshakeRequest:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _unreadable("The handshake request is not valid UTF-8.") from error
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise _unreadable("Error reading JSON.") from error
    if not isinstance(obj, dict):
        raise _unreadable("Expected the handshake request to be a JSON object.")
    protocol = obj.get("protocol")
    if "protocol" not in obj:
        raise _unreadable("Missing required property 'protocol'.")
    if not isinstance(protocol, str):
        raise _unreadable("Expected 'protocol' to be of type String.")
    version = obj.get("version")
    if version is None:  # ASP.NET reads a null version as a missing one
        raise _unreadable("Missing required property 'version'.")
    if type(version) is not int:
        raise _unreadable("Expected 'version' to be of type Number.")
    if not -(2**31) <= version < 2**31:
        raise _unreadable("Expected 'version' to be a 32-bit integer.")
    return HandshakeRequest(protocol, version)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _lookup(protocols: Mapping[str, HubProtocol], name: str) -> HubProtocol | None:
    if name in protocols:
        return protocols[name]
    # ASP.NET matches protocol names case-insensitively (StringComparer.OrdinalIgnoreCase);
    # ASCII-only so that no exotic case mapping can turn another name into ours.
    if name.isascii():
        folded = name.lower()
        for key, protocol in protocols.items():
            if key.lower() == folded:
                return protocol
    return None


def select_protocol(
    request: HandshakeRequest,
    protocols: Mapping[str, HubProtocol],
    transport_formats: Collection[TransferFormat],
) -> HubProtocol:
    """The protocol the client asked for, checked in ASP.NET's order and with its texts."""
    protocol = _lookup(protocols, request.protocol)
    if protocol is None:
        raise HandshakeError(f"The protocol '{request.protocol}' is not supported.")
    if request.version > protocol.max_version:  # any lower version, 0 included, is accepted
        raise HandshakeError(
            f"The server does not support version {request.version} "
            f"of the '{request.protocol}' protocol."
        )
    if protocol.transfer_format not in transport_formats:
        raise HandshakeError(
            f"Cannot use the '{protocol.name}' protocol on the current transport. "
            f"The transport does not support '{protocol.transfer_format.value}' transfer format."
        )
    return protocol


def handshake_response(error: str | None = None) -> str:
    """`{}` or `{"error":"…"}`, with its 0x1E. Send it in a frame of its own: several clients
    break on a handshake response glued to the next message."""
    if error is None:
        return "{}" + RECORD_SEPARATOR
    # ensure_ascii: the text may quote what the client sent, lone surrogates included.
    return json.dumps({"error": error}, separators=(",", ":")) + RECORD_SEPARATOR
