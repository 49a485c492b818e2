"""What a hub is to the SignalR layer: a set of named methods (who calls one, and the error whose
text the caller sees, are in call.py).

A hub method is `async def name(self, call: CallContext, *args)`. It may:
- return a value (sent as the Completion's result; None is `"result": null`);
- return `Deferred(awaitable)`: the dispatcher moves on to the next invocation at once and sends the
  Completion when the awaitable resolves. This is how a hub keeps the order in which invocations are
  *applied* (the method body runs in arrival order) while letting their Completions be pipelined;
- be an async generator (a server-to-client stream, invoked with StreamInvocation);
- take `AsyncIterator` parameters (client-to-server streams), named in `@hub_method(streams=...)`;
- bind its arguments at decode time for a protocol (`@hub_method(binders={"messagepack": bind})`,
  ASP.NET's IInvocationBinder; `ArgumentBinder`, protocols/base.py): `bind(raw)` gets the encoded
  arguments array of an Invocation and returns the argument list, or None to have them decoded the
  usual way. A hub uses it to decode straight into its own types; whatever it returns must be what
  the method would have accepted. A binder with a `typed` attribute (`TypedArguments`) also names
  the arguments' type, so that MessagePack can decode the whole usual record in one call.

Server to client: `self.clients` (groups.py) calls client methods on one connection or a group.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, ClassVar

from .call import CallContext
from .groups import HubClients
from .protocols.base import ArgumentBinder


@dataclass(slots=True)
class Deferred:
    """A result that is ready later; see the module docstring. `void`: the Completion carries a null
    result whatever the awaitable resolves to. An awaitable that is already settled when the method
    returns (a done Future, or anything with Future's `done()`/`result()`) is answered at once,
    without a task."""

    awaitable: Awaitable[Any]
    void: bool = False


@dataclass(slots=True, frozen=True)
class HubMethod:
    name: str
    func: Callable[..., Any]
    arity: int  # parameters a client passes in `arguments` (streams excluded)
    stream_params: int  # client-to-server stream parameters (they come last)
    is_stream: bool  # an async generator: server-to-client stream
    binders: Mapping[str, ArgumentBinder] = field(default_factory=dict)  # by protocol name


def hub_method(
    name: str | None = None, *, streams: int = 0, binders: Mapping[str, ArgumentBinder] | None = None
) -> Callable[[Callable], Callable]:
    """Expose a method under `name` (default: the function name). `streams` = how many trailing
    parameters are client-to-server streams; `binders`: see the module docstring."""

    def mark(func: Callable) -> Callable:
        func.__hub_method__ = (name or func.__name__, streams, dict(binders or {}))  # type: ignore[attr-defined]
        return func

    return mark


class Hub:
    #: Exceptions whose text is shown to the caller (besides call.HubError), e.g. a domain's validation
    #: error. Anything else is logged and shown as a bare "An unexpected error occurred".
    user_errors: ClassVar[tuple[type[Exception], ...]] = ()

    #: The hub's handle on its clients, set when an endpoint binds the hub (HubDispatcher): call
    #: client methods on a connection (`call.connection_id`) or a group, and manage groups.
    clients: HubClients

    def on_connected(self, call: CallContext) -> None:
        """A connection finished its handshake."""

    def on_disconnected(self, call: CallContext) -> None:
        """A connection is gone for good (it leaves its groups right after this returns)."""

    def methods(self) -> dict[str, HubMethod]:
        """The method table, keyed by lower-cased name (SignalR matches names case-insensitively)."""
        table: dict[str, HubMethod] = {}
        for _, func in inspect.getmembers(self, inspect.ismethod):
            marked = getattr(func, "__hub_method__", None)
            if marked is None:
                continue
            name, streams, binders = marked
            params = list(inspect.signature(func).parameters.values())[1:]  # drop CallContext
            table[name.lower()] = HubMethod(
                name=name,
                func=func,
                arity=len(params) - streams,
                stream_params=streams,
                is_stream=inspect.isasyncgenfunction(func),
                binders=binders,
            )
        return table
