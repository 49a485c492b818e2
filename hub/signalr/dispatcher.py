"""Turns hub messages into hub method calls and their answers (Completion, StreamItem).

Ordering: plain invocations are applied one at a time in arrival order (ASP.NET's default of one
parallel invocation per client); a method that returns `Deferred` lets the next one start while its
Completion waits. Streaming invocations (either direction) run as their own tasks, as in ASP.NET's
DefaultHubDispatcher: the connection goes on reading while they run.

Streams, both directions (texts as ASP.NET's; see protocol-notes/streaming-and-reconnect.md):
- client to server: an Invocation (or StreamInvocation) whose `streamIds` name the streams; each
  becomes an `UploadStream` argument; the client sends StreamItems with `invocationId` = the stream
  id, then the stream's own Completion (with `error` to fail it). When the method returns, its
  streams are forgotten: later items for them are ignored.
- server to client: a StreamInvocation of an async-generator method; each yielded value goes out as
  a StreamItem, then a Completion without result (with `error` if the generator raised). A
  CancelInvocation (or the connection ending) stops the generator; ASP.NET then still sends a
  Completion without error, and so do we.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, AsyncIterator

from .groups import HubClients
from .hub import ArgumentBinder, Deferred, Hub, HubError, HubMethod
from .messages import CancelInvocation, Completion, Invocation, StreamInvocation, StreamItem

if TYPE_CHECKING:
    from .connection import HubConnection

log = logging.getLogger("hub.signalr")

# An upload stream holds at most this many unread items; past that the connection stops reading
# its transport until the hub method catches up (ASP.NET's StreamBufferCapacity, which is 10 there).
UPLOAD_QUEUE_SIZE = 1000


def _not_found(target: str) -> str:
    return f"Failed to invoke '{target}' due to an error on the server. HubException: Method does not exist."


def _bad_arity(target: str, given: int, expected: int) -> str:
    return (
        f"Failed to invoke '{target}' due to an error on the server. InvalidDataException: "
        f"Invocation provides {given} argument(s) but target expects {expected}."
    )


def _too_many_streams(limit: int) -> str:
    return f"Too many streams on this connection (limit {limit})."


def _count_stream(conn: "HubConnection", task: asyncio.Future) -> None:
    """An open stream invocation, counted against --max-streams-per-connection until it ends."""
    conn.open_streams += 1

    def ended(_task: asyncio.Future) -> None:
        conn.open_streams -= 1

    task.add_done_callback(ended)


def _unexpected(target: str, detail: str | None = None) -> str:
    text = f"An unexpected error occurred invoking '{target}' on the server."
    return text if detail is None else f"{text} HubException: {detail}"


class UploadBudget:
    """Unread upload items of one connection, all its streams together: at most `limit` (so 100
    open streams do not hold 100 times one stream's buffer). Items are taken one at a time by the
    receive loop, so `room` has at most one waiter."""

    __slots__ = ("limit", "used", "room")

    def __init__(self, limit: int = UPLOAD_QUEUE_SIZE):
        self.limit = limit
        self.used = 0
        self.room = asyncio.Event()
        self.room.set()

    def release(self, count: int) -> None:
        if count:
            self.used -= count
            self.room.set()


class UploadStream:
    """A client-to-server stream, as the AsyncIterator a hub method reads.

    Bounded: `put` waits while `capacity` items of this stream, or the connection's `budget` of
    items of all its streams, are unread, which holds up the connection's receive loop
    (back-pressure on the client through its transport). `close` (the method is done) drops what is
    left and releases a waiting `put`."""

    __slots__ = ("stream_id", "_items", "_capacity", "_budget", "_ended", "_error", "_closed", "_readable")

    def __init__(self, stream_id: str, capacity: int = UPLOAD_QUEUE_SIZE, budget: UploadBudget | None = None):
        self.stream_id = stream_id
        self._items: deque[Any] = deque()
        self._capacity = capacity
        self._budget = budget if budget is not None else UploadBudget(capacity)
        self._ended = False
        self._error: str | None = None
        self._closed = False
        self._readable = asyncio.Event()

    async def put(self, item: Any) -> None:
        budget = self._budget
        while (len(self._items) >= self._capacity or budget.used >= budget.limit) and not self._closed:
            budget.room.clear()
            await budget.room.wait()
        if self._closed or self._ended:
            return
        self._items.append(item)
        budget.used += 1
        self._readable.set()

    def finish(self, error: str | None = None) -> None:
        """The client completed the stream (with `error`: it failed it)."""
        self._ended = True
        self._error = error
        self._readable.set()

    def close(self) -> None:
        self._closed = True
        self._budget.release(len(self._items))
        self._items.clear()
        self._budget.room.set()
        self._readable.set()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        while not self._items:
            if self._ended or self._closed:
                if self._error is not None and not self._closed:
                    raise HubError(f"The client ended stream '{self.stream_id}' with an error: {self._error}")
                raise StopAsyncIteration
            self._readable.clear()
            await self._readable.wait()
        item = self._items.popleft()
        self._budget.release(1)
        return item


class HubDispatcher:
    """One per hub; stateless across connections (their state lives on the HubConnection)."""

    def __init__(self, hub: Hub):
        self.hub = hub
        self.methods = hub.methods()
        self._binders: dict[str, dict[str, ArgumentBinder]] = {}  # protocol name -> target -> binder
        self.clients = HubClients()  # the connections past their handshake, and their groups
        hub.clients = self.clients

    def binders(self, protocol: str) -> dict[str, ArgumentBinder]:
        """The methods' argument binders for `protocol`, by lower-cased target (hub.py)."""
        found = self._binders.get(protocol)
        if found is None:
            found = self._binders[protocol] = {
                key: method.binders[protocol] for key, method in self.methods.items() if protocol in method.binders
            }
        return found

    # --- connections coming and going (called by HubConnection) ----------------------------------

    def connected(self, conn: "HubConnection") -> None:
        self.clients.connected(conn)
        self.hub.on_connected(conn.call)

    def disconnected(self, conn: "HubConnection") -> None:
        try:
            self.hub.on_disconnected(conn.call)
        finally:
            self.clients.disconnected(conn)  # it leaves every group

    # --- entry points, called by HubConnection in arrival order -----------------------------

    async def invoke(self, conn: "HubConnection", msg: Invocation) -> None:
        method = self.methods.get(msg.target.lower())
        error = self._check(msg.target, method, msg.arguments, msg.stream_ids, streaming=False)
        if error is not None:
            await self._complete_error(conn, msg.invocation_id, msg.target, error)
            return
        assert method is not None
        if msg.stream_ids:
            if conn.open_streams >= conn.options.max_streams:
                await self._complete_error(conn, msg.invocation_id, msg.target, _too_many_streams(conn.options.max_streams))
                return
            uploads = self._open_uploads(conn, msg.stream_ids)
            if isinstance(uploads, str):
                await self._complete_error(conn, msg.invocation_id, msg.target, _unexpected(msg.target, uploads))
                return
            # Not awaited: the connection must go on reading to deliver the stream's items.
            task = asyncio.ensure_future(
                self._run_with_uploads(conn, method, msg.target, msg.invocation_id, msg.arguments, uploads)
            )
            conn.track(task, cancel_on_close=True)
            _count_stream(conn, task)
            return
        await self._run(conn, method, msg.target, msg.invocation_id, msg.arguments)

    async def stream_invoke(self, conn: "HubConnection", msg: StreamInvocation) -> None:
        method = self.methods.get(msg.target.lower())
        error = self._check(msg.target, method, msg.arguments, msg.stream_ids, streaming=True)
        if error is None and msg.invocation_id in conn.streams:
            error = f"Invocation ID '{msg.invocation_id}' is already in use."
        if error is None and conn.open_streams >= conn.options.max_streams:
            error = _too_many_streams(conn.options.max_streams)
        if error is not None:
            await self._complete_error(conn, msg.invocation_id, msg.target, error)
            return
        assert method is not None
        uploads = self._open_uploads(conn, msg.stream_ids)
        if isinstance(uploads, str):
            await self._complete_error(conn, msg.invocation_id, msg.target, _unexpected(msg.target, uploads))
            return
        task = asyncio.ensure_future(self._stream(conn, method, msg, uploads))
        conn.track(task, msg.invocation_id)
        _count_stream(conn, task)

    async def stream_item(self, conn: "HubConnection", msg: StreamItem) -> None:
        upload = conn.uploads.get(msg.invocation_id)
        if upload is None:  # ASP.NET logs "unexpected stream item" and goes on
            log.debug("stream item for unknown stream %s on %s", msg.invocation_id, conn.connection_id)
            return
        await upload.put(msg.item)

    async def stream_complete(self, conn: "HubConnection", msg: Completion) -> None:
        upload = conn.uploads.pop(msg.invocation_id, None)
        if upload is None:
            log.debug("completion for unknown stream %s on %s", msg.invocation_id, conn.connection_id)
            return
        upload.finish(msg.error)

    def cancel(self, conn: "HubConnection", msg: CancelInvocation) -> None:
        task = conn.streams.get(msg.invocation_id)
        if task is not None:
            task.cancel()

    # --- internals -----------------------------------------------------------------------------

    def _check(
        self, target: str, method: HubMethod | None, args: list, stream_ids: list, *, streaming: bool
    ) -> str | None:
        """ASP.NET's order: the method exists, the arguments bind, the invocation kind matches,
        the number of streams matches."""
        if method is None:
            return _not_found(target)
        if len(args) != method.arity:
            return _bad_arity(target, len(args), method.arity)
        if method.is_stream != streaming:
            kind = "streaming" if method.is_stream else "non-streaming"
            how = "a streaming" if streaming else "a non-streaming"
            return f"The client attempted to invoke the {kind} '{target}' method with {how} invocation."
        if len(stream_ids) != method.stream_params:
            return _unexpected(
                target, f"Client sent {len(stream_ids)} stream(s), Hub method expects {method.stream_params}."
            )
        return None

    @staticmethod
    def _open_uploads(conn: "HubConnection", stream_ids: list[str]) -> list[UploadStream] | str:
        """The streams' readers, registered on the connection; or why they cannot be."""
        if len(set(stream_ids)) != len(stream_ids) or any(sid in conn.uploads for sid in stream_ids):
            taken = next(sid for i, sid in enumerate(stream_ids) if sid in conn.uploads or sid in stream_ids[:i])
            return f"Stream ID '{taken}' is already in use."
        uploads = [UploadStream(sid, budget=conn.upload_budget) for sid in stream_ids]
        for upload in uploads:
            conn.uploads[upload.stream_id] = upload
        return uploads

    @staticmethod
    def _close_uploads(conn: "HubConnection", uploads: list[UploadStream]) -> None:
        for upload in uploads:
            if conn.uploads.get(upload.stream_id) is upload:
                del conn.uploads[upload.stream_id]
            upload.close()

    def _error_text(self, target: str, exc: BaseException) -> str:
        if isinstance(exc, (HubError, *self.hub.user_errors)):
            return _unexpected(target, str(exc))
        log.error("hub method %s failed", target, exc_info=exc)
        return _unexpected(target)

    def _stream_error_text(self, target: str, exc: BaseException) -> str:
        text = "An error occurred on the server while streaming results."
        if isinstance(exc, (HubError, *self.hub.user_errors)):
            return f"{text} HubException: {exc}"
        log.error("streaming hub method %s failed", target, exc_info=exc)
        return text

    async def _complete_error(self, conn: "HubConnection", invocation_id: str | None, target: str, error: str) -> None:
        if invocation_id is None:
            log.info("fire-and-forget invocation of %s failed: %s", target, error)
            return
        await conn.send(Completion.with_error(invocation_id, error))

    async def _run(
        self,
        conn: "HubConnection",
        method: HubMethod,
        target: str,
        invocation_id: str | None,
        args: list,
        *,
        defer: bool = True,
    ) -> None:
        try:
            result = await method.func(conn.call, *args)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes a Completion error
            await self._complete_error(conn, invocation_id, target, self._error_text(target, exc))
            return
        if isinstance(result, Deferred):
            finish = self._finish(conn, target, invocation_id, result)
            if defer and not _settled(result.awaitable):
                task = asyncio.ensure_future(finish)
                conn.track(task)
                conn.invocation_pending(task)  # counted against --max-invocations-per-connection
            else:
                await finish
            return
        if invocation_id is not None:
            await conn.send(Completion.with_result(invocation_id, result))

    async def _run_with_uploads(
        self,
        conn: "HubConnection",
        method: HubMethod,
        target: str,
        invocation_id: str | None,
        args: list,
        uploads: list[UploadStream],
    ) -> None:
        try:
            # A Deferred result is awaited here: the streams live until the result is final.
            await self._run(conn, method, target, invocation_id, [*args, *uploads], defer=False)
        finally:
            self._close_uploads(conn, uploads)

    async def _finish(self, conn: "HubConnection", target: str, invocation_id: str | None, deferred: Deferred) -> None:
        try:
            result = await deferred.awaitable
        except Exception as exc:  # noqa: BLE001
            await self._complete_error(conn, invocation_id, target, self._error_text(target, exc))
            return
        if invocation_id is not None:
            await conn.send(Completion.with_result(invocation_id, None if deferred.void else result))

    async def _stream(
        self, conn: "HubConnection", method: HubMethod, msg: StreamInvocation, uploads: list[UploadStream]
    ) -> None:
        iid = msg.invocation_id
        error: str | None = None
        items = method.func(conn.call, *msg.arguments, *uploads)
        try:
            async for item in items:
                # Back-pressure: under stateful reconnect this waits while the replay buffer is full.
                await conn.send(StreamItem(iid, item), backpressure=True)
        except asyncio.CancelledError:
            pass  # CancelInvocation, or the connection ended: stop quietly
        except Exception as exc:  # noqa: BLE001 - the stream ends with an error Completion
            error = self._stream_error_text(msg.target, exc)
        finally:
            try:
                await items.aclose()  # runs the generator's own cleanup (e.g. unsubscribing)
            except Exception:  # noqa: BLE001
                log.exception("closing stream %s of %s failed", iid, msg.target)
            self._close_uploads(conn, uploads)
        await conn.send(Completion(iid, error=error))


def _settled(awaitable: Any) -> bool:
    """Already done (a store that applied the write at call time): awaiting it will not suspend."""
    done = getattr(awaitable, "done", None)
    return done is not None and done()
