"""MessagePack Invocations read with a hub's argument binders (hub.py; ASP.NET's IInvocationBinder):
the usual Invocation of a bound target, `[1, {}, id|nil, target, [args]]`, has its arguments decoded
by the binder (`bound_invocation`), or, when the binder declares their type (`TypedArguments`), the
whole record in one msgspec call (`typed_invocation`). Anything else returns None: the reader in
msgpack.py then reads the record the generic way, so values and error texts never depend on binding.
See protocol-notes/hub-protocols.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from ..messages import INVOCATION, Invocation
from .base import ArgumentBinder, TypedArguments

# The usual Invocation, [1, {}, id|nil, target, [args]] (+ [] or nil streams), its arguments kept as
# their bytes for a hub's binder. Anything else fails to decode here and is read the usual way.
_BOUND_5 = msgspec.msgpack.Decoder(tuple[int, dict[str, str], str | None, str, msgspec.Raw])
_BOUND_6 = msgspec.msgpack.Decoder(tuple[int, dict[str, str], str | None, str, msgspec.Raw, list[str] | None])
_BOUND_DECODERS = {0x95: _BOUND_5, 0x96: _BOUND_6}  # fixarray of 5 / 6


def bound_invocation(body: bytes | bytearray | memoryview, binders: Mapping[str, ArgumentBinder]) -> Invocation | None:
    """The Invocation in `body` with its arguments decoded by the hub's binder for its target; None
    when the record is not the usual Invocation of a bound target, or the binder declines."""
    decoder = _BOUND_DECODERS.get(body[0]) if len(body) > 1 and body[1] == INVOCATION else None
    if decoder is None:
        return None
    try:
        fields = decoder.decode(body)
    except Exception:  # noqa: BLE001 - not the usual Invocation (bad UTF-8, other types, ...): read as usual
        return None
    headers, invocation_id, target, raw_arguments = fields[1], fields[2], fields[3], fields[4]
    if headers or (len(fields) == 6 and fields[5]):
        return None
    bind = binders.get(target.lower())
    arguments = bind(bytes(raw_arguments)) if bind is not None else None
    if arguments is None:
        return None
    return Invocation(target, arguments, invocation_id or None, [], headers)


_Decoding = tuple[msgspec.msgpack.Decoder, Callable[[Any], "list[Any] | None"]]  # (the record's decoder, finish)
_TYPED_DECODERS: dict[Any, msgspec.msgpack.Decoder] = {}  # one a binder's type, made once


class _Reading:
    """A target's typed readings on one reader (one connection): `first` is tried first, then `other`
    (the declared type's alternative, or None). Whichever read the last record goes first, as a client
    sends its records one way (its timestamps as integers, or as JavaScript's float64)."""

    __slots__ = ("first", "other")

    def __init__(self, first: _Decoding, other: _Decoding | None):
        self.first, self.other = first, other


def typed_table(binders: Mapping[str, ArgumentBinder]) -> dict[bytes, _Reading] | None:
    """For one reader, by lower-cased target (UTF-8): decoders of the whole usual Invocation, for the
    binders that declare `typed` (base.TypedArguments)."""
    table: dict[bytes, _Reading] = {}
    for target, bind in binders.items():
        typed: TypedArguments | None = getattr(bind, "typed", None)
        if typed is not None:
            other = _decoding(typed.alternative) if typed.alternative is not None else None
            table[target.encode("utf-8")] = _Reading(_decoding(typed), other)
    return table or None


def typed_binder(typed: TypedArguments) -> ArgumentBinder:
    """A binder made of its `typed` declaration: the arguments array alone read with the type, then
    with its alternative, as `typed_invocation` reads the whole record; the first reading whose
    `finish` accepts it, or None. It serves the records the one-call reading does not take (headers,
    stream ids, a target that is no fixstr), so both read alike from one declaration."""
    readings = []
    reading: TypedArguments | None = typed
    while reading is not None:
        readings.append((msgspec.msgpack.Decoder(reading.type), reading.finish))
        reading = reading.alternative

    def bind(raw: bytes) -> list[Any] | None:
        for decoder, finish in readings:
            try:
                value = decoder.decode(raw)
            except Exception:  # noqa: BLE001 - not this reading: the next one, then the generic path judges
                continue
            arguments = finish(value)
            if arguments is not None:
                return arguments
        return None

    bind.typed = typed  # type: ignore[attr-defined]
    return bind


def _decoding(typed: TypedArguments) -> _Decoding:
    decoder = _TYPED_DECODERS.get(typed.type)
    if decoder is None:
        decoder = _TYPED_DECODERS[typed.type] = msgspec.msgpack.Decoder(tuple[int, dict[str, str], str | None, str, typed.type])
    return decoder, typed.finish


_HEAD = bytes((0x95, INVOCATION, 0x80))  # fixarray of 5, Invocation, empty headers


def typed_invocation(record: bytes, typed: dict[bytes, _Reading]) -> Invocation | None:
    """The record if it is [1, {}, id|nil, target, [args]] for a target in `typed`, decoded in one
    call; None for anything else (then read as before: the binder, or the generic path)."""
    # then the id: a fixstr, nil or a str 8; then the target, a non-empty fixstr
    if len(record) < 5 or record[:3] != _HEAD:
        return None
    id_type = record[3]
    if 0xA0 <= id_type <= 0xBF:
        at = 4 + (id_type & 0x1F)
    elif id_type == 0xC0:
        at = 4
    elif id_type == 0xD9:
        at = 5 + record[4]
    else:
        return None
    if at >= len(record) or not 0xA1 <= record[at] <= 0xBF:
        return None
    reading = typed.get(record[at + 1 : at + 1 + (record[at] & 0x1F)].lower())
    if reading is None:
        return None
    read = _read(record, reading.first)
    if read is None:
        other = reading.other
        if other is None or (read := _read(record, other)) is None:
            return None
        reading.first, reading.other = other, reading.first  # this connection's records are read that way
    invocation_id, target, arguments = read
    return Invocation(target, arguments, invocation_id or None, [], {})


def _read(record: bytes, decoding: _Decoding) -> tuple[str | None, str, list[Any]] | None:
    """(id, target, arguments) of the record read with `decoding`, or None: not what it declares."""
    decoder, finish = decoding
    try:
        _, _, invocation_id, target, arguments = decoder.decode(record)
    except Exception:  # noqa: BLE001 - not what the binder declared: another reading, the binder or the generic path judges
        return None
    arguments = finish(arguments)
    return None if arguments is None else (invocation_id, target, arguments)
