"""Turns hub messages into hub method calls and their answers (Completion, StreamItem).

Ordering: plain invocations are applied one at a time in arrival order (ASP.NET's default of one
parallel invocation per client); a method that returns `Deferred` lets the next one start while its
Completion waits. Streaming invocations (either direction) run as their own tasks.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, AsyncIterator

from .hub import CallContext, Deferred, Hub, HubError, HubMethod
from .messages import CancelInvocation, Completion, Invocation, StreamInvocation, StreamItem

if TYPE_CHECKING:
    from .connection import HubConnection

log = logging.getLogger("hub.signalr")

_END = object()

# An upload stream holds at most this many unread items before the reader stops reading the socket.
UPLOAD_QUEUE_SIZE = 1000


def _not_found(target: str) -> str:
    return f"Failed to invoke '{target}' due to an error on the server. HubException: Method does not exist."


def _bad_arity(target: str, given: int, expected: int) -> str:
    return (
        f"Failed to invoke '{target}' due to an error on the server. InvalidDataException: "
        f"Invocation provides {given} argument(s) but target expects {expected}."
    )


class UploadStream:
    """A client-to-server stream, as the AsyncIterator a hub method reads."""

    __slots__ = ("queue",)

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue(UPLOAD_QUEUE_SIZE)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._items()

    async def _items(self) -> AsyncIterator[Any]:
        while True:
            item = await self.queue.get()
            if item is _END:
                return
            if isinstance(item, HubError):
                raise item
            yield item


class HubDispatcher:
    """One per hub; stateless across connections (their state lives on the HubConnection)."""

    def __init__(self, hub: Hub):
        self.hub = hub
        self.methods = hub.methods()

    # --- entry points, called by HubConnection in arrival order -----------------------------

    async def invoke(self, conn: "HubConnection", msg: Invocation) -> None:
        method = self.methods.get(msg.target.lower())
        error = self._check(msg.target, method, msg.arguments, msg.stream_ids, streaming=False)
        if error is not None:
            await self._complete_error(conn, msg.invocation_id, msg.target, error)
            return
        assert method is not None
        if msg.stream_ids:
            uploads = [conn.open_upload(sid) for sid in msg.stream_ids]
            task = asyncio.ensure_future(
                self._run(conn, method, msg.target, msg.invocation_id, [*msg.arguments, *uploads])
            )
            conn.track(task, cancel_on_close=True)
            return
        await self._run(conn, method, msg.target, msg.invocation_id, msg.arguments)

    async def stream_invoke(self, conn: "HubConnection", msg: StreamInvocation) -> None:
        method = self.methods.get(msg.target.lower())
        error = self._check(msg.target, method, msg.arguments, msg.stream_ids, streaming=True)
        if error is not None:
            await self._complete_error(conn, msg.invocation_id, msg.target, error)
            return
        assert method is not None
        uploads = [conn.open_upload(sid) for sid in msg.stream_ids]
        task = asyncio.ensure_future(self._stream(conn, method, msg, [*msg.arguments, *uploads]))
        conn.track(task, msg.invocation_id)

    async def stream_item(self, conn: "HubConnection", msg: StreamItem) -> None:
        upload = conn.uploads.get(msg.invocation_id)
        if upload is None:
            log.debug("stream item for unknown stream %s on %s", msg.invocation_id, conn.connection_id)
            return
        await upload.queue.put(msg.item)

    async def stream_complete(self, conn: "HubConnection", msg: Completion) -> None:
        upload = conn.uploads.pop(msg.invocation_id, None)
        if upload is None:
            return
        await upload.queue.put(HubError(msg.error) if msg.error else _END)

    def cancel(self, conn: "HubConnection", msg: CancelInvocation) -> None:
        task = conn.streams.get(msg.invocation_id)
        if task is not None:
            task.cancel()

    # --- internals -----------------------------------------------------------------------------

    def _check(
        self, target: str, method: HubMethod | None, args: list, stream_ids: list, *, streaming: bool
    ) -> str | None:
        if method is None:
            return _not_found(target)
        if method.is_stream != streaming:
            kind = "streaming" if method.is_stream else "non-streaming"
            how = "a streaming" if streaming else "a non-streaming"
            return f"The client attempted to invoke the {kind} '{target}' method with {how} invocation."
        if len(args) != method.arity:
            return _bad_arity(target, len(args), method.arity)
        if len(stream_ids) != method.stream_params:
            return (
                f"Failed to invoke '{target}' due to an error on the server. InvalidDataException: "
                f"Client sent {len(stream_ids)} stream(s), Hub method expects {method.stream_params}."
            )
        return None

    def _error_text(self, target: str, exc: BaseException) -> str:
        if isinstance(exc, (HubError, *self.hub.user_errors)):
            return f"An unexpected error occurred invoking '{target}' on the server. HubException: {exc}"
        log.error("hub method %s failed", target, exc_info=exc)
        return f"An unexpected error occurred invoking '{target}' on the server."

    async def _complete_error(self, conn: "HubConnection", invocation_id: str | None, target: str, error: str) -> None:
        if invocation_id is None:
            log.info("fire-and-forget invocation of %s failed: %s", target, error)
            return
        await conn.send(Completion.with_error(invocation_id, error))

    async def _run(
        self, conn: "HubConnection", method: HubMethod, target: str, invocation_id: str | None, args: list
    ) -> None:
        try:
            result = await method.func(conn.call, *args)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes a Completion error
            await self._complete_error(conn, invocation_id, target, self._error_text(target, exc))
            return
        if isinstance(result, Deferred):
            conn.track(asyncio.ensure_future(self._finish(conn, target, invocation_id, result)))
            return
        if invocation_id is not None:
            await conn.send(Completion.with_result(invocation_id, result))

    async def _finish(self, conn: "HubConnection", target: str, invocation_id: str | None, deferred: Deferred) -> None:
        try:
            result = await deferred.awaitable
        except Exception as exc:  # noqa: BLE001
            await self._complete_error(conn, invocation_id, target, self._error_text(target, exc))
            return
        if invocation_id is not None:
            await conn.send(Completion.with_result(invocation_id, result))

    async def _stream(self, conn: "HubConnection", method: HubMethod, msg: StreamInvocation, args: list) -> None:
        iid = msg.invocation_id
        try:
            async for item in method.func(conn.call, *args):
                await conn.send(StreamItem(iid, item))
        except asyncio.CancelledError:
            # The client cancelled (CancelInvocation) or went away: ASP.NET sends nothing more.
            return
        except Exception as exc:  # noqa: BLE001
            await conn.send(Completion.with_error(iid, self._error_text(msg.target, exc)))
            return
        await conn.send(Completion(iid))


def new_call_context(connection_id: str, user: str | None) -> CallContext:
    return CallContext(connection_id=connection_id, user=user)
