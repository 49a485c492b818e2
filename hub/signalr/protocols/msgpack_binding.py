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


# (decoder, finish, unless, what a record holding `unless` is read with: None, or the same for `marked`)
_Typed = tuple[msgspec.msgpack.Decoder, Callable[[Any], "list[Any] | None"], bytes, "_Typed | None"]
_TYPED_DECODERS: dict[Any, msgspec.msgpack.Decoder] = {}  # one a binder's type, made once


def typed_table(binders: Mapping[str, ArgumentBinder]) -> dict[bytes, _Typed] | None:
    """By lower-cased target (UTF-8): a decoder of the whole usual Invocation, for the binders that
    declare `typed` (base.TypedArguments)."""
    table: dict[bytes, _Typed] = {}
    for target, bind in binders.items():
        typed: TypedArguments | None = getattr(bind, "typed", None)
        if typed is not None:
            table[target.encode("utf-8")] = _typed(typed)
    return table or None


def _typed(typed: TypedArguments) -> _Typed:
    decoder = _TYPED_DECODERS.get(typed.type)
    if decoder is None:
        decoder = _TYPED_DECODERS[typed.type] = msgspec.msgpack.Decoder(tuple[int, dict[str, str], str | None, str, typed.type])
    return decoder, typed.finish, typed.unless, _typed(typed.marked) if typed.marked is not None else None


def typed_invocation(record: bytes, typed: dict[bytes, _Typed]) -> Invocation | None:
    """The record if it is [1, {}, id|nil, target, [args]] for a target in `typed`, decoded in one
    call; None for anything else (then read as before: the binder, or the generic path)."""
    # fixarray of 5, Invocation, empty headers; then the id: nil, a fixstr or a str 8; then the target
    if len(record) < 5 or record[0] != 0x95 or record[1] != INVOCATION or record[2] != 0x80:
        return None
    id_type = record[3]
    if id_type == 0xC0:
        at = 4
    elif 0xA0 <= id_type <= 0xBF:
        at = 4 + (id_type & 0x1F)
    elif id_type == 0xD9:
        at = 5 + record[4]
    else:
        return None
    if at >= len(record) or not 0xA1 <= record[at] <= 0xBF:  # the target: a non-empty fixstr
        return None
    entry = typed.get(record[at + 1 : at + 1 + (record[at] & 0x1F)].lower())
    if entry is None:
        return None
    decoder, finish, unless, marked = entry
    if unless and unless in record:
        if marked is None:
            return None
        decoder, finish = marked[0], marked[1]
    try:
        _, _, invocation_id, target, arguments = decoder.decode(record)
    except Exception:  # noqa: BLE001 - not what the binder declared: the binder or the generic path judges
        return None
    arguments = finish(arguments)
    if arguments is None:  # declined: the binder or the generic path judges
        return None
    return Invocation(target, arguments, invocation_id or None, [], {})
