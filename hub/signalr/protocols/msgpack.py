"""The MessagePack hub protocol ("messagepack", binary): each record is a VarInt length, then one
msgpack array whose first element is the message type.

Parsing follows ASP.NET Core's MessagePackHubProtocolWorker (same layouts, same error texts);
see protocol-notes/hub-protocols.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgpack

import ormsgpack  # the fast path for reading; msgpack stays the reference (and has the last word on errors)

from ..messages import (
    ACK,
    CANCEL_INVOCATION,
    CLOSE,
    COMPLETION,
    INVOCATION,
    PING,
    SEQUENCE,
    STREAM_INVOCATION,
    STREAM_ITEM,
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
from .base import ArgumentBinder, HubProtocol, MessageReader, MessageTooLarge, ProtocolError, TransferFormat
from .msgpack_binding import bound_invocation, typed_invocation, typed_table

ERROR_RESULT = 1
VOID_RESULT = 2
NON_VOID_RESULT = 3

_MAX_PREFIX_BYTES = 5  # 7 bits a byte: enough for 2^31 - 1, the largest length ASP.NET allows
_TOO_LONG = "Messages over 2GB in size are not supported."
_INT32 = range(-(2**31), 2**31)
_INT64 = range(-(2**63), 2**63)
_ONE_BYTE = [bytes((n,)) for n in range(0x80)]


# --- Framing --------------------------------------------------------------------------------------


def encode_length_prefix(length: int) -> bytes:
    if length < 0x80:  # one byte: most records
        return _ONE_BYTE[length]
    out = bytearray()
    while length > 0x7F:
        out.append((length & 0x7F) | 0x80)
        length >>= 7
    out.append(length)
    return bytes(out)


def read_length_prefix(buffer: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """(body length, body start) of the record at pos, or None while the prefix is incomplete."""
    if pos < len(buffer) and buffer[pos] < 0x80:  # one byte: most records
        return buffer[pos], pos + 1
    length = 0
    for i in range(_MAX_PREFIX_BYTES):
        if pos + i >= len(buffer):
            return None
        byte = buffer[pos + i]
        length |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if i == _MAX_PREFIX_BYTES - 1 and byte > 0x07:
                raise ProtocolError(_TOO_LONG)
            return length, pos + i + 1
    raise ProtocolError(_TOO_LONG)


# --- Reading --------------------------------------------------------------------------------------


_ORMSGPACK_OPTIONS = ormsgpack.OPT_NON_STR_KEYS


def _unpack(body: bytes | bytearray) -> Any:
    # Same values as msgpack.unpackb below for everything a client normally sends (profiled: it is
    # what makes MessagePack no slower than JSON, see bench/RESULTS.md). Anything it refuses
    # (extension types, bad UTF-8, too deep, truncated, ...) goes to msgpack, so values and error
    # texts stay msgpack's.
    try:
        return ormsgpack.unpackb(body, option=_ORMSGPACK_OPTIONS)
    except Exception:  # noqa: BLE001 - decided again below
        pass
    try:
        # timestamp=3: the timestamp extension (a JS Date) becomes an aware UTC datetime; other
        # extension types stay msgpack.ExtType values.
        return msgpack.unpackb(body, raw=False, strict_map_key=False, timestamp=3)
    except msgpack.ExtraData as extra:  # ASP.NET reads one value and ignores what follows
        return extra.unpacked
    except Exception as error:  # msgpack raises ValueError, TypeError, OverflowError, ...
        raise ProtocolError("Error reading MessagePack.") from error


def _read_string(a: list[Any], i: int, field: str) -> str | None:
    value = a[i] if i < len(a) else 0
    if not (value is None or isinstance(value, str)):
        raise ProtocolError(f"Reading '{field}' as String failed.")
    return value


def _read_required(a: list[Any], i: int, field: str, what: str) -> str:
    value = _read_string(a, i, field)
    if not value:
        raise ProtocolError(f"Null or empty {what}.")
    return value


def _read_value(a: list[Any], i: int, field: str) -> Any:
    if i >= len(a):
        raise ProtocolError(f"Reading '{field}' failed.")
    return a[i]


def _read_array(a: list[Any], i: int, field: str) -> list[Any]:
    value = a[i] if i < len(a) else None
    if not isinstance(value, list):
        raise ProtocolError(f"Reading array length for '{field}' failed.")
    return value


def _read_int(a: list[Any], i: int, field: str, bits: int) -> int:
    value = a[i] if i < len(a) else None
    if type(value) is not int or value not in (_INT32 if bits == 32 else _INT64):
        raise ProtocolError(f"Reading '{field}' as Int{bits} failed.")
    return value


def _read_headers(a: list[Any]) -> dict[str, str]:
    if len(a) < 2:
        raise ProtocolError("Reading map length for 'headers' failed.")
    value = a[1]
    if value is None:  # some Python clients send nil for "no headers"
        return {}
    if not isinstance(value, dict):
        raise ProtocolError("Reading map length for 'headers' failed.")
    for n, (key, header) in enumerate(value.items()):
        if not isinstance(key, str):
            raise ProtocolError(f"Reading 'headers[{n}].Key' as String failed.")
        if not key:
            raise ProtocolError("Null or empty key in header.")
        if not (header is None or isinstance(header, str)):
            raise ProtocolError(f"Reading 'headers[{n}].Value' as String failed.")
        if not header:
            raise ProtocolError("Null or empty value in header.")
    return value


def _read_stream_ids(a: list[Any]) -> list[str]:
    if len(a) <= 5 or a[5] is None:  # the JS client sends 5 elements when there are no streams
        return []
    stream_ids = _read_array(a, 5, "streamIds")
    for n in range(len(stream_ids)):
        _read_required(stream_ids, n, f"streamIds[{n}]", "value in streamIds received")
    return stream_ids


def _read_invocation(a: list[Any]) -> Invocation:
    if (  # the usual shape, checked cheaply: [1, {}, id|nil, target, [args]] (+ [] or nil streams)
        (len(a) == 5 or (len(a) == 6 and (a[5] is None or (type(a[5]) is list and not a[5]))))
        and type(a[1]) is dict
        and not a[1]
        and (a[2] is None or type(a[2]) is str)
        and type(a[3]) is str
        and a[3]
        and type(a[4]) is list
    ):
        return Invocation(a[3], a[4], a[2] or None, [], a[1])
    headers = _read_headers(a)
    invocation_id = _read_string(a, 2, "invocationId") or None  # nil or "" = fire-and-forget
    target = _read_required(a, 3, "target", "target for Invocation message")
    arguments = _read_array(a, 4, "arguments")
    return Invocation(target, arguments, invocation_id, _read_stream_ids(a), headers)


def _read_stream_invocation(a: list[Any]) -> StreamInvocation:
    headers = _read_headers(a)
    invocation_id = _read_required(
        a, 2, "invocationId", "invocation ID for StreamInvocation message"
    )
    target = _read_required(a, 3, "target", "target for StreamInvocation message")
    arguments = _read_array(a, 4, "arguments")
    return StreamInvocation(invocation_id, target, arguments, _read_stream_ids(a), headers)


def _read_stream_item(a: list[Any]) -> StreamItem:
    if len(a) >= 4 and type(a[1]) is dict and not a[1] and type(a[2]) is str and a[2]:  # the usual shape
        return StreamItem(a[2], a[3], a[1])
    headers = _read_headers(a)
    invocation_id = _read_required(a, 2, "invocationId", "invocation ID for StreamItem message")
    return StreamItem(invocation_id, _read_value(a, 3, "item"), headers)


def _read_completion(a: list[Any]) -> Completion:
    headers = _read_headers(a)
    invocation_id = _read_required(a, 2, "invocationId", "invocation ID for Completion message")
    kind = _read_int(a, 3, "resultKind", 32)
    if kind == ERROR_RESULT:
        # A nil error reads as "no error", as in ASP.NET: the completion is then a void one.
        return Completion(invocation_id, error=_read_string(a, 4, "error"), headers=headers)
    if kind == NON_VOID_RESULT:
        result = _read_value(a, 4, "result")
        return Completion(invocation_id, result=result, has_result=True, headers=headers)
    if kind == VOID_RESULT:
        return Completion(invocation_id, headers=headers)
    raise ProtocolError("Invalid invocation result kind.")


def _read_cancel(a: list[Any]) -> CancelInvocation:
    headers = _read_headers(a)
    invocation_id = _read_required(
        a, 2, "invocationId", "invocation ID for CancelInvocation message"
    )
    return CancelInvocation(invocation_id, headers)


def _read_close(a: list[Any]) -> Close:
    error = _read_string(a, 1, "error")
    if len(a) <= 2:  # the JS client sends just [7, nil]
        return Close(error)
    if not isinstance(a[2], bool):
        raise ProtocolError("Reading 'allowReconnect' as Boolean failed.")
    return Close(error, a[2])


_READERS: dict[int, Callable[[list[Any]], HubMessage]] = {
    INVOCATION: _read_invocation,
    STREAM_ITEM: _read_stream_item,
    COMPLETION: _read_completion,
    STREAM_INVOCATION: _read_stream_invocation,
    CANCEL_INVOCATION: _read_cancel,
    PING: lambda a: Ping(),
    CLOSE: _read_close,
    ACK: lambda a: Ack(_read_int(a, 1, "sequenceId", 64)),
    SEQUENCE: lambda a: Sequence(_read_int(a, 1, "sequenceId", 64)),
}


def message_from_msgpack(value: Any) -> HubMessage | None:
    """One decoded record to a message; None for a message type this server does not know."""
    if not isinstance(value, list):
        raise ProtocolError("Reading array length for 'message' failed.")
    read = _READERS.get(_read_int(value, 0, "messageType", 32))
    # Unknown types are skipped, as ASP.NET and the JS client do, so newer peers keep working.
    return read(value) if read is not None else None


class MessagePackMessageReader(MessageReader):
    def __init__(self, max_message_size: int, binders: Mapping[str, ArgumentBinder] | None = None):
        self._max = max_message_size
        self._binders = binders or None
        self._typed = typed_table(binders) if binders else None
        self._buffer = bytearray()  # the start of an unfinished record

    def feed(self, data: bytes | str) -> list[HubMessage]:
        if isinstance(data, str):  # a text frame on a binary protocol: judge its bytes as msgpack
            data = data.encode("utf-8", "surrogatepass")  # surrogatepass: encoding never fails
        if self._buffer:
            self._buffer += data
            buffer: bytes | bytearray = self._buffer
        else:
            buffer = data  # common case: whole records in one frame, no copy into the buffer
        messages: list[HubMessage] = []
        pos = 0
        end = len(buffer)
        binders, typed = self._binders, self._typed
        while pos < end and (prefix := read_length_prefix(buffer, pos)) is not None:
            length, body = prefix
            if length > self._max:  # before waiting for (and buffering) the body
                raise MessageTooLarge(self._max)
            if end - body < length:
                break
            record = buffer[body : body + length]
            message = typed_invocation(record, typed) if typed else None
            if message is None and binders:
                message = bound_invocation(record, binders)
            if message is None:
                message = message_from_msgpack(_unpack(record))
            if message is not None:
                messages.append(message)
            pos = body + length
        if buffer is self._buffer:
            del self._buffer[:pos]
        elif pos < end:  # else the buffer is left empty, as it was
            self._buffer = bytearray(buffer[pos:])
        return messages


# --- Writing --------------------------------------------------------------------------------------


def _completion_array(m: Completion) -> list[Any]:
    if m.error is not None:
        return [COMPLETION, m.headers, m.invocation_id, ERROR_RESULT, m.error]
    if m.has_result:
        return [COMPLETION, m.headers, m.invocation_id, NON_VOID_RESULT, m.result]
    return [COMPLETION, m.headers, m.invocation_id, VOID_RESULT]


# Layouts as ASP.NET writes them: Invocation and StreamInvocation always with their streamIds.
_WRITERS: dict[int, Callable[[Any], list[Any]]] = {
    INVOCATION: lambda m: [
        INVOCATION,
        m.headers,
        m.invocation_id or None,
        m.target,
        m.arguments,
        m.stream_ids,
    ],
    STREAM_ITEM: lambda m: [STREAM_ITEM, m.headers, m.invocation_id, m.item],
    COMPLETION: _completion_array,
    STREAM_INVOCATION: lambda m: [
        STREAM_INVOCATION,
        m.headers,
        m.invocation_id,
        m.target,
        m.arguments,
        m.stream_ids,
    ],
    CANCEL_INVOCATION: lambda m: [CANCEL_INVOCATION, m.headers, m.invocation_id],
    PING: lambda m: [PING],
    CLOSE: lambda m: [CLOSE, m.error, m.allow_reconnect],
    ACK: lambda m: [ACK, m.sequence_id],
    SEQUENCE: lambda m: [SEQUENCE, m.sequence_id],
}

_PING_RECORD = b"\x02\x91\x06"  # [6], the most frequent message: keep it ready


def _completion_heads(array: bytes, tail: int) -> list[bytes]:
    """For each invocation id length n < 32 (a fixstr): a void or null-result Completion record up
    to its id: the length prefix (one byte: the body is under 128 bytes), the array with its type,
    empty headers, then the fixstr's type byte. `tail`: the bytes after the id."""
    return [bytes((len(array) + 3 + n + tail,)) + array + b"\x03\x80" + bytes((0xA0 | n,)) for n in range(32)]


_VOID_HEADS = _completion_heads(b"\x94", 1)  # [3, {}, id, 2]
_RESULT_HEADS = _completion_heads(b"\x95", 2)  # [3, {}, id, 3, nil]


class MessagePackHubProtocol(HubProtocol):
    name = "messagepack"
    transfer_format = TransferFormat.BINARY

    def reader(self, max_message_size: int, binders: Mapping[str, ArgumentBinder] | None = None) -> MessagePackMessageReader:
        return MessagePackMessageReader(max_message_size, binders)

    def encode(self, message: HubMessage) -> bytes:
        if message.type == PING:
            return _PING_RECORD
        if (
            message.type == COMPLETION
            and message.result is None
            and message.error is None
            and not message.headers  # type: ignore[union-attr]
        ):  # the answer to nearly every write: the bytes _completion_array gives, built directly
            iid = message.invocation_id  # type: ignore[union-attr]
            if len(iid) < 32 and iid.isascii():  # a fixstr: the record's head is ready for its length
                if message.has_result:  # type: ignore[union-attr]
                    return _RESULT_HEADS[len(iid)] + iid.encode("ascii") + b"\x03\xc0"
                return _VOID_HEADS[len(iid)] + iid.encode("ascii") + b"\x02"
            iid = msgpack.packb(iid)
            body = b"\x95\x03\x80" + iid + b"\x03\xc0" if message.has_result else b"\x94\x03\x80" + iid + b"\x02"  # type: ignore[union-attr]
            return encode_length_prefix(len(body)) + body
        # datetime=True: aware datetimes go out as the timestamp extension, as they came in.
        body: bytes = msgpack.packb(
            _WRITERS[message.type](message), use_bin_type=True, datetime=True
        )
        return encode_length_prefix(len(body)) + body
