"""Turns hub messages into hub method calls and their answers (Completion, StreamItem).

Ordering: plain invocations are applied one at a time in arrival order (ASP.NET's default of one
parallel invocation per client); a method that returns `Deferred` lets the next one start while its
Completion waits. Streaming invocations (either direction) run beside the receive loop, as in
ASP.NET's DefaultHubDispatcher: the connection goes on reading while they run. What runs beside it
is not started here: an entry point returns it as a `Job` (a `PendingCompletion` for a Completion
waiting on a store's future), and the connection runs, counts and cancels it (inflight.py). A
connection is seen through `ConnectionContext` (context.py) only.

Streams, both directions (texts as ASP.NET's; see protocol-notes/streaming-and-reconnect.md):
- client to server: an Invocation (or StreamInvocation) whose `streamIds` name the streams; each
  becomes an `UploadStream` argument (streaming.py); the client sends StreamItems with
  `invocationId` = the stream id, then the stream's own Completion (with `error` to fail it). When
  the method returns, its streams are forgotten: later items for them are ignored.
- server to client: a StreamInvocation of an async-generator method; each yielded value goes out as
  a StreamItem, then a Completion without result (with `error` if the generator raised). A
  CancelInvocation (or the connection ending) stops the generator; ASP.NET then still sends a
  Completion without error, and so do we.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from .call import HubError, Unauthorized
from .context import ConnectionContext
from .groups import HubClients
from .hub import Deferred, Hub, HubMethod
from .messages import CancelInvocation, Completion, Invocation, StreamInvocation, StreamItem
from .observer import HubObserver
from .protocols.base import ArgumentBinder
from .streaming import UploadStream

log = logging.getLogger("hub.signalr")


def _not_found(target: str) -> str:
    return f"Failed to invoke '{target}' due to an error on the server. HubException: Method does not exist."


def _bad_arity(target: str, given: int, expected: int) -> str:
    return (
        f"Failed to invoke '{target}' due to an error on the server. InvalidDataException: "
        f"Invocation provides {given} argument(s) but target expects {expected}."
    )


def _too_many_streams(limit: int) -> str:
    return f"Too many streams on this connection (limit {limit})."


def unauthorized(target: str) -> str:
    """ASP.NET's text when an authorization policy refuses a hub method."""
    return f"Failed to invoke '{target}' because user is unauthorized"


def _unexpected(target: str, detail: str | None = None) -> str:
    text = f"An unexpected error occurred invoking '{target}' on the server."
    return text if detail is None else f"{text} HubException: {detail}"


class JobKind(enum.Enum):
    # A Deferred's Completion: counted against --max-invocations-per-connection; left to finish
    # when the connection ends (what it wrote stays written), its send then dropped.
    COMPLETION = "completion"
    # A method reading client streams: counted against --max-streams-per-connection; cancelled
    # when the connection ends.
    UPLOADS = "uploads"
    # A server-to-client stream: the same, and cancelled by a CancelInvocation naming it.
    STREAM = "stream"


@dataclass(slots=True)
class Job:
    """Work an invocation leaves running beside the receive loop, for the connection to run."""

    kind: JobKind
    run: Coroutine[Any, Any, None]
    invocation_id: str | None = None  # STREAM: the invocation a CancelInvocation names


class PendingCompletion:
    """A Deferred's Completion waiting on a store's future (sqlite, redis): sent from the future's
    one done-callback, `settle`, with no Task, as `_finish` would send it. The connection counts it
    against --max-invocations-per-connection (inflight.py) and sets `then`, told once it is queued."""

    __slots__ = ("future", "dispatcher", "conn", "target", "invocation_id", "void", "started", "then")
    kind = JobKind.COMPLETION

    def __init__(
        self,
        future: asyncio.Future,
        dispatcher: HubDispatcher,
        conn: ConnectionContext,
        target: str,
        invocation_id: str | None,
        void: bool,
        started: float,
    ):
        self.future = future
        self.dispatcher = dispatcher
        self.conn = conn
        self.target = target
        self.invocation_id = invocation_id
        self.void = void
        self.started = started
        self.then: Callable[[asyncio.Future], None] | None = None

    def settle(self, future: asyncio.Future) -> None:
        dispatcher, target = self.dispatcher, self.target
        try:
            result = future.result()  # raises what the write raised
        except asyncio.CancelledError:
            pass  # as a cancelled Task: no Completion
        except Exception as exc:  # noqa: BLE001 - every failure becomes a Completion error
            dispatcher._complete_error(self.conn, self.invocation_id, target, dispatcher._error_text(target, exc), self.started)
        except BaseException as exc:  # noqa: BLE001 - not ours to answer; logged as a Task would
            log.error("hub method %s: its result failed with %r", target, exc)
        else:
            dispatcher._complete_ok(self.conn, self.invocation_id, target, None if self.void else result, self.started)
        finally:  # the bound frees after the Completion is queued, whatever happened to it
            if self.then is not None:
                self.then(future)


class HubDispatcher:
    """One per hub; stateless across connections (their state lives on each connection)."""

    def __init__(self, hub: Hub):
        self.hub = hub
        self.methods = hub.methods()
        self._binders: dict[str, dict[str, ArgumentBinder]] = {}  # protocol name -> target -> binder
        self.clients = HubClients()  # the connections past their handshake, and their groups
        hub.clients = self.clients
        self.observer = HubObserver(type(hub).__name__)  # logs connections; the app may wire one that counts

    def binders(self, protocol: str) -> dict[str, ArgumentBinder]:
        """The methods' argument binders for `protocol`, by lower-cased target (hub.py)."""
        found = self._binders.get(protocol)
        if found is None:
            found = self._binders[protocol] = {
                key: method.binders[protocol] for key, method in self.methods.items() if protocol in method.binders
            }
        return found

    # --- connections coming and going (called by the connection) ---------------------------------

    def connected(self, conn: ConnectionContext) -> None:
        self.observer.connected(conn)  # type: ignore[arg-type]
        self.clients.connected(conn)
        self.hub.on_connected(conn.call)

    def disconnected(self, conn: ConnectionContext) -> None:
        try:
            self.hub.on_disconnected(conn.call)
        finally:
            self.clients.disconnected(conn)  # it leaves every group
            self.observer.disconnected(conn)  # type: ignore[arg-type]

    # --- entry points, called by the connection in arrival order ---------------------------------

    async def invoke(self, conn: ConnectionContext, msg: Invocation) -> Job | PendingCompletion | None:
        started = time.perf_counter()  # the invocation's duration runs until its Completion is queued
        method = self.methods.get(msg.target.lower())
        error = self._check(msg.target, method, msg.arguments, msg.stream_ids, streaming=False)
        if error is not None:
            self._complete_error(conn, msg.invocation_id, msg.target, error, started)
            return None
        assert method is not None
        if msg.stream_ids:
            streams = conn.streams
            if streams.full:
                self.observer.refused("max_streams")
                self._complete_error(conn, msg.invocation_id, msg.target, _too_many_streams(streams.limit), started)
                return None
            uploads = self._open_uploads(conn, msg.stream_ids)
            if isinstance(uploads, str):
                self._complete_error(conn, msg.invocation_id, msg.target, _unexpected(msg.target, uploads), started)
                return None
            # Not awaited: the connection must go on reading to deliver the stream's items.
            run = self._run_with_uploads(conn, method, msg.target, msg.invocation_id, msg.arguments, uploads, started)
            return Job(JobKind.UPLOADS, run)
        return await self._run(conn, method, msg.target, msg.invocation_id, msg.arguments, started)

    async def stream_invoke(self, conn: ConnectionContext, msg: StreamInvocation) -> Job | None:
        method = self.methods.get(msg.target.lower())
        streams = conn.streams
        error = self._check(msg.target, method, msg.arguments, msg.stream_ids, streaming=True)
        if error is None and msg.invocation_id in streams.running:
            error = f"Invocation ID '{msg.invocation_id}' is already in use."
        if error is None and streams.full:
            self.observer.refused("max_streams")
            error = _too_many_streams(streams.limit)
        if error is not None:
            self._complete_error(conn, msg.invocation_id, msg.target, error)
            return None
        assert method is not None
        uploads = self._open_uploads(conn, msg.stream_ids)
        if isinstance(uploads, str):
            self._complete_error(conn, msg.invocation_id, msg.target, _unexpected(msg.target, uploads))
            return None
        return Job(JobKind.STREAM, self._stream(conn, method, msg, uploads), msg.invocation_id)

    async def stream_item(self, conn: ConnectionContext, msg: StreamItem) -> None:
        upload = conn.streams.uploads.get(msg.invocation_id)
        if upload is None:  # ASP.NET logs "unexpected stream item" and goes on
            log.debug("stream item for unknown stream %s on %s", msg.invocation_id, conn.connection_id)
            return
        await upload.put(msg.item)

    def stream_complete(self, conn: ConnectionContext, msg: Completion) -> None:
        upload = conn.streams.uploads.pop(msg.invocation_id, None)
        if upload is None:
            log.debug("completion for unknown stream %s on %s", msg.invocation_id, conn.connection_id)
            return
        upload.finish(msg.error)

    def cancel(self, conn: ConnectionContext, msg: CancelInvocation) -> None:
        task = conn.streams.running.get(msg.invocation_id)
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
    def _open_uploads(conn: ConnectionContext, stream_ids: list[str]) -> list[UploadStream] | str:
        """The streams' readers, registered on the connection; or why they cannot be."""
        if not stream_ids:
            return []
        streams = conn.streams
        registered = streams.uploads
        if len(set(stream_ids)) != len(stream_ids) or any(sid in registered for sid in stream_ids):
            taken = next(sid for i, sid in enumerate(stream_ids) if sid in registered or sid in stream_ids[:i])
            return f"Stream ID '{taken}' is already in use."
        uploads = [UploadStream(sid, budget=streams.budget) for sid in stream_ids]
        for upload in uploads:
            registered[upload.stream_id] = upload
        return uploads

    @staticmethod
    def _close_uploads(conn: ConnectionContext, uploads: list[UploadStream]) -> None:
        if not uploads:
            return
        registered = conn.streams.uploads
        for upload in uploads:
            if registered.get(upload.stream_id) is upload:
                del registered[upload.stream_id]
            upload.close()

    def _error_text(self, target: str, exc: BaseException) -> str:
        if isinstance(exc, Unauthorized):
            return unauthorized(target)
        if isinstance(exc, (HubError, *self.hub.user_errors)):
            return _unexpected(target, str(exc))
        log.error("hub method %s failed", target, exc_info=exc)
        return _unexpected(target)

    def _stream_error_text(self, target: str, exc: BaseException) -> str:
        text = "An error occurred on the server while streaming results."
        if isinstance(exc, Unauthorized):
            return unauthorized(target)
        if isinstance(exc, (HubError, *self.hub.user_errors)):
            return f"{text} HubException: {exc}"
        log.error("streaming hub method %s failed", target, exc_info=exc)
        return text

    def _complete_ok(
        self, conn: ConnectionContext, invocation_id: str | None, target: str, result: Any, started: float
    ) -> None:
        self.observer.completed(target, True, started)
        if invocation_id is not None:
            conn.send_now(Completion.with_result(invocation_id, result))

    def _complete_error(
        self, conn: ConnectionContext, invocation_id: str | None, target: str, error: str, started: float | None = None
    ) -> None:
        self.observer.completed(target, False, started)
        if invocation_id is None:
            log.info("fire-and-forget invocation of %s failed: %s", target, error)
            return
        conn.send_now(Completion.with_error(invocation_id, error))

    async def _run(
        self,
        conn: ConnectionContext,
        method: HubMethod,
        target: str,
        invocation_id: str | None,
        args: list,
        started: float,
        *,
        defer: bool = True,
    ) -> Job | PendingCompletion | None:
        try:
            result = await method.func(conn.call, *args)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes a Completion error
            self._complete_error(conn, invocation_id, target, self._error_text(target, exc), started)
            return None
        if isinstance(result, Deferred):
            awaitable = result.awaitable
            if defer and not _settled(awaitable):  # counted against --max-invocations-per-connection
                if isinstance(awaitable, asyncio.Future):  # a store's future: answered from its callback, no Task
                    return PendingCompletion(awaitable, self, conn, target, invocation_id, result.void, started)
                return Job(JobKind.COMPLETION, self._finish(conn, target, invocation_id, result, started))
            await self._finish(conn, target, invocation_id, result, started)
            return None
        self._complete_ok(conn, invocation_id, target, result, started)
        return None

    async def _run_with_uploads(
        self,
        conn: ConnectionContext,
        method: HubMethod,
        target: str,
        invocation_id: str | None,
        args: list,
        uploads: list[UploadStream],
        started: float,
    ) -> None:
        try:
            # A Deferred result is awaited here: the streams live until the result is final.
            await self._run(conn, method, target, invocation_id, [*args, *uploads], started, defer=False)
        finally:
            self._close_uploads(conn, uploads)

    async def _finish(
        self, conn: ConnectionContext, target: str, invocation_id: str | None, deferred: Deferred, started: float
    ) -> None:
        try:
            result = await deferred.awaitable
        except Exception as exc:  # noqa: BLE001
            self._complete_error(conn, invocation_id, target, self._error_text(target, exc), started)
            return
        self._complete_ok(conn, invocation_id, target, None if deferred.void else result, started)

    async def _stream(
        self, conn: ConnectionContext, method: HubMethod, msg: StreamInvocation, uploads: list[UploadStream]
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
        self.observer.completed(msg.target, error is None, None)  # a stream's duration is not timed
        await conn.send(Completion(iid, error=error))


def _settled(awaitable: Any) -> bool:
    """Already done (a store that applied the write at call time): awaiting it will not suspend."""
    done = getattr(awaitable, "done", None)
    return done is not None and done()
