"""The JSON hub protocol ("json", text): one JSON object per record, each record ending with 0x1E.

Parsing follows ASP.NET Core's JsonHubProtocol (same error texts, same tolerance): keys in any
order, unknown keys ignored, unknown message types skipped. See protocol-notes/hub-protocols.md.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from typing import Any

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

import orjson

RECORD_SEPARATOR = "\x1e"
_RS = 0x1E
_INT64 = range(-(2**63), 2**63)
# Every integer literal that a double rounds to -2^63 while it is below it (-2^63 - 1 down to
# -2^63 - 1024: doubles are 2048 apart there) starts with these digits; so does -2^63 itself.
BELOW_INT64 = b"-922337203685477"
BELOW_INT64_TEXT = BELOW_INT64.decode("ascii")


# --- JSON libraries -------------------------------------------------------------------------------


class StdlibJson:
    """The reference behaviour: exact integers of any size, no NaN/Infinity in or out, no lone
    UTF-16 surrogates in (a text that could not be written back as UTF-8)."""

    name = "json"
    reads_text = False  # loads() takes bytes only
    # A \uD800-\uDFFF escape: only then can a decoded string hold a lone surrogate.
    _SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")

    def loads(self, record: bytes) -> Any:
        """Parse one record; raises ValueError for anything that is not strict JSON."""
        try:
            value = json.loads(
                record.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float
            )
            if self._SURROGATE_ESCAPE.search(record):
                # Raises UnicodeEncodeError (a ValueError) on a lone surrogate anywhere in it.
                json.dumps(value, ensure_ascii=False).encode("utf-8")
        except RecursionError as error:
            raise ValueError("JSON nested too deeply") from error
        return value

    def dumps(self, value: Any) -> str:
        """Compact JSON text; TypeError for a value JSON cannot carry."""
        options: dict[str, Any] = {"separators": (",", ":"), "ensure_ascii": False}
        try:
            return json.dumps(value, allow_nan=False, default=_iso_datetime, **options)
        except ValueError:
            # NaN/Infinity: write null, as JavaScript's JSON.stringify and orjson do.
            return json.dumps(_finite(value), default=_iso_datetime, **options)


class Orjson(StdlibJson):
    """orjson, with the standard module as the fallback for what orjson refuses to write.

    One difference on reading: an integer literal outside [-2^63, 2^64) becomes the nearest float
    (the standard module keeps it exact). That is how a JavaScript sender meant it (JSON.stringify
    writes 2**64 as 18446744073709552000), and finding such literals first costs as much as the
    parse itself. int64 nanosecond timestamps are exact with both, and no integer outside int64
    becomes one: such a float is >= 2^64, or < -2^63 (refused as an int64 anyway), or exactly
    -2^63, from a literal starting with BELOW_INT64, which is read by the standard module."""

    name = "orjson"
    reads_text = True  # loads() takes str as well: a text frame is parsed without a copy to bytes

    def loads(self, record: bytes) -> Any:
        if (BELOW_INT64_TEXT if type(record) is str else BELOW_INT64) in record:
            # Maybe a literal just below -2^63, which orjson would read as the float -2^63, an
            # int64: read exactly, so that it stays outside int64 (and is refused as such).
            return super().loads(record if type(record) is bytes else record.encode("utf-8"))
        return orjson.loads(record)  # raises orjson.JSONDecodeError, a ValueError

    def dumps(self, value: Any) -> str:
        try:
            return orjson.dumps(value).decode("utf-8")
        except TypeError:  # ints beyond 64 bits, non-str keys, ...: the standard module copes
            return super().dumps(value)


STDLIB_JSON = StdlibJson()
ORJSON = Orjson()
FASTEST_JSON: StdlibJson = ORJSON


def _iso_datetime(value: Any) -> str:
    # MessagePack timestamps arrive as datetimes; write them as orjson and ASP.NET do: ISO 8601.
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses as inf
        raise ValueError(f"{text} is out of range")
    return value


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# --- Reading --------------------------------------------------------------------------------------


def _token(value: Any) -> str:
    """The name System.Text.Json gives a token, for error texts."""
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    return "Number"


def _missing(key: str) -> ProtocolError:
    return ProtocolError(f"Missing required property '{key}'.")


def _optional_string(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)  # null is taken as absent (some Python clients write null for "none")
    if value is not None and not isinstance(value, str):
        raise ProtocolError(f"Expected '{key}' to be of type String.")
    return value


def _required_string(obj: dict[str, Any], key: str) -> str:
    value = _optional_string(obj, key)
    if not value:  # ASP.NET treats "" as missing too
        raise _missing(key)
    return value


def _arguments(obj: dict[str, Any]) -> list[Any]:
    if "arguments" not in obj:
        raise _missing("arguments")
    value = obj["arguments"]
    if not isinstance(value, list):
        raise ProtocolError("Expected 'arguments' to be of type Array.")
    return value


def _stream_ids(obj: dict[str, Any]) -> list[str]:
    value = obj.get("streamIds")
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProtocolError("Expected 'streamIds' to be of type Array.")
    for stream_id in value:
        if stream_id is None:
            raise ProtocolError("Null value for 'streamIds' is not valid.")
        if not isinstance(stream_id, str):
            raise ProtocolError("Expected 'streamIds' items to be of type String.")
    return value


def _headers(obj: dict[str, Any]) -> dict[str, str]:
    value = obj.get("headers")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProtocolError("Expected 'headers' to be of type Object.")
    for key, header in value.items():
        if not isinstance(header, str):
            raise ProtocolError(f"Expected header '{key}' to be of type String.")
    return value


def _sequence_id(obj: dict[str, Any]) -> int:
    value = obj.get("sequenceId")
    if value is None:
        raise _missing("sequenceId")
    if type(value) is not int or value not in _INT64:
        raise ProtocolError("Expected 'sequenceId' to be of type Number.")
    return value


def _read_invocation(obj: dict[str, Any]) -> Invocation:
    # Absent or "" = fire-and-forget (ASP.NET normalises "" to null for MessagePack; same here).
    invocation_id = _optional_string(obj, "invocationId") or None
    target = _required_string(obj, "target")
    arguments = _arguments(obj)
    return Invocation(target, arguments, invocation_id, _stream_ids(obj), _headers(obj))


def _read_stream_item(obj: dict[str, Any]) -> StreamItem:
    invocation_id = _required_string(obj, "invocationId")
    if "item" not in obj:
        raise _missing("item")
    return StreamItem(invocation_id, obj["item"], _headers(obj))


def _read_completion(obj: dict[str, Any]) -> Completion:
    invocation_id = _required_string(obj, "invocationId")
    error = _optional_string(obj, "error")
    has_result = "result" in obj  # present, even as null, means a value
    if error is not None and has_result:
        raise ProtocolError("The 'error' and 'result' properties are mutually exclusive.")
    return Completion(invocation_id, error, obj.get("result"), has_result, _headers(obj))


def _read_stream_invocation(obj: dict[str, Any]) -> StreamInvocation:
    invocation_id = _required_string(obj, "invocationId")
    target = _required_string(obj, "target")
    arguments = _arguments(obj)
    return StreamInvocation(invocation_id, target, arguments, _stream_ids(obj), _headers(obj))


def _read_cancel(obj: dict[str, Any]) -> CancelInvocation:
    return CancelInvocation(_required_string(obj, "invocationId"), _headers(obj))


def _read_close(obj: dict[str, Any]) -> Close:
    allow_reconnect = obj.get("allowReconnect", False)
    if allow_reconnect is None:
        allow_reconnect = False
    if not isinstance(allow_reconnect, bool):
        raise ProtocolError("Expected 'allowReconnect' to be true or false.")
    return Close(_optional_string(obj, "error"), allow_reconnect)


_READERS: dict[int, Callable[[dict[str, Any]], HubMessage]] = {
    INVOCATION: _read_invocation,
    STREAM_ITEM: _read_stream_item,
    COMPLETION: _read_completion,
    STREAM_INVOCATION: _read_stream_invocation,
    CANCEL_INVOCATION: _read_cancel,
    PING: lambda obj: Ping(),
    CLOSE: _read_close,
    ACK: lambda obj: Ack(_sequence_id(obj)),
    SEQUENCE: lambda obj: Sequence(_sequence_id(obj)),
}


def message_from_json(obj: Any) -> HubMessage | None:
    """One decoded record to a message; None for a message type this server does not know."""
    if not isinstance(obj, dict):
        raise ProtocolError(f"Unexpected JSON Token Type '{_token(obj)}'. Expected a JSON Object.")
    if "type" not in obj:
        raise _missing("type")
    kind = obj["type"]
    if type(kind) is not int:
        raise ProtocolError("Expected 'type' to be of type Number.")
    read = _READERS.get(kind)
    # Unknown types are skipped, as ASP.NET and the JS client do, so newer peers keep working.
    return read(obj) if read is not None else None


class JsonMessageReader(MessageReader):
    def __init__(self, max_message_size: int, library: StdlibJson = FASTEST_JSON):
        self._max = max_message_size
        self._library = library
        self._partial = bytearray()  # the unfinished record, without its separator

    def feed(self, data: bytes | str) -> list[HubMessage]:
        if (
            type(data) is str
            and self._library.reads_text
            and not self._partial
            and data[-1:] == RECORD_SEPARATOR
            and len(data) * 4 <= self._max  # 4 bytes a character at most: no record can be too large
        ):  # the usual text frame, whole records only
            messages = [self._parse(record) for record in data[:-1].split(RECORD_SEPARATOR)]  # type: ignore[arg-type]
            return [m for m in messages if m is not None]
        # Work in UTF-8 bytes: the size limit counts bytes, and a frame may end mid-character.
        try:
            chunk = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        except UnicodeEncodeError as error:  # a str holding lone surrogates
            raise ProtocolError("Error reading JSON.") from error
        messages: list[HubMessage] = []
        start = 0
        while (end := chunk.find(_RS, start)) >= 0:
            record = chunk[start:end]
            if self._partial:
                self._partial += record
                record = bytes(self._partial)
                self._partial.clear()
            if len(record) > self._max:
                raise MessageTooLarge(self._max)
            message = self._parse(record)
            if message is not None:
                messages.append(message)
            start = end + 1
        if start < len(chunk):
            if len(self._partial) + len(chunk) - start > self._max:
                raise MessageTooLarge(self._max)
            self._partial += chunk[start:]
        return messages

    def _parse(self, record: bytes) -> HubMessage | None:
        try:
            obj = self._library.loads(record)
        except ValueError as error:
            raise ProtocolError("Error reading JSON.") from error
        return message_from_json(obj)


# --- Writing --------------------------------------------------------------------------------------


def _with_headers(out: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    if headers:
        out["headers"] = headers
    return out


def _invocation_json(m: Invocation | StreamInvocation) -> dict[str, Any]:
    out = _with_headers({"type": m.type}, m.headers)
    if m.invocation_id:
        out["invocationId"] = m.invocation_id
    out["target"] = m.target
    out["arguments"] = m.arguments
    if m.stream_ids:
        out["streamIds"] = m.stream_ids
    return out


def _completion_json(m: Completion) -> dict[str, Any]:
    out = _with_headers({"type": COMPLETION}, m.headers)
    out["invocationId"] = m.invocation_id
    if m.error is not None:
        out["error"] = m.error
    elif m.has_result:
        out["result"] = m.result  # written even when None: "result":null is a void result
    return out


def _close_json(m: Close) -> dict[str, Any]:
    out: dict[str, Any] = {"type": CLOSE}
    if m.error is not None:
        out["error"] = m.error
    if m.allow_reconnect:
        out["allowReconnect"] = True
    return out


def _stream_item_json(m: StreamItem) -> dict[str, Any]:
    out = _with_headers({"type": STREAM_ITEM}, m.headers)
    out["invocationId"] = m.invocation_id
    out["item"] = m.item
    return out


def _cancel_json(m: CancelInvocation) -> dict[str, Any]:
    out = _with_headers({"type": CANCEL_INVOCATION}, m.headers)
    out["invocationId"] = m.invocation_id
    return out


_WRITERS: dict[int, Callable[[Any], dict[str, Any]]] = {
    INVOCATION: _invocation_json,
    STREAM_ITEM: _stream_item_json,
    COMPLETION: _completion_json,
    STREAM_INVOCATION: _invocation_json,
    CANCEL_INVOCATION: _cancel_json,
    PING: lambda m: {"type": PING},
    CLOSE: _close_json,
    ACK: lambda m: {"type": ACK, "sequenceId": m.sequence_id},
    SEQUENCE: lambda m: {"type": SEQUENCE, "sequenceId": m.sequence_id},
}

_PING_RECORD = '{"type":6}' + RECORD_SEPARATOR  # the most frequent message: keep it ready


class JsonHubProtocol(HubProtocol):
    name = "json"
    transfer_format = TransferFormat.TEXT

    def __init__(self, library: StdlibJson = FASTEST_JSON):
        self.library = library

    def reader(self, max_message_size: int, binders: Mapping[str, ArgumentBinder] | None = None) -> JsonMessageReader:
        return JsonMessageReader(max_message_size, self.library)  # JSON binds nothing (yet)

    def encode(self, message: HubMessage) -> str:
        if message.type == PING:
            return _PING_RECORD
        if (
            message.type == COMPLETION
            and message.result is None
            and message.error is None
            and not message.headers  # type: ignore[union-attr]
        ):  # the answer to nearly every write: the same text _completion_json gives, built directly
            tail = ',"result":null}' if message.has_result else "}"  # type: ignore[union-attr]
            iid = message.invocation_id  # type: ignore[union-attr]
            quoted = f'"{iid}"' if iid.isalnum() and iid.isascii() else self.library.dumps(iid)  # nothing to escape
            return '{"type":3,"invocationId":' + quoted + tail + RECORD_SEPARATOR
        return self.library.dumps(_WRITERS[message.type](message)) + RECORD_SEPARATOR
