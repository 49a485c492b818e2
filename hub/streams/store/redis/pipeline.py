"""The Redis store's writes: one queue in call order, sent in pipelines, each write answered truthfully.

One writer task drains the queue and sends everything queued (up to WRITE_BATCH writes) in one
pipeline: one round trip for many writes (group commit). Pipelines go out on one connection of
their own, so Redis applies them in the order sent; up to MAX_IN_FLIGHT of them are on their way
at once, so the hub gathers and sends the next while Redis applies one, and a reader task takes
their replies in order. The writes go in as few calls of the library's `hub_batch` as their size
allows (CALL_ITEMS), each call carrying its writes MessagePack-encoded in one argument and answering
all of them in one MessagePack reply: the hub encodes and parses one value per call, not one
command per write. A write resolves when Redis replied, which with `appendfsync always` means it is
on disk. The client never retries a write on its own (a retry of a write whose reply was lost would
store it twice).

Failed means not stored: every call carries a deadline in Redis' clock, `timeout` after it is
sent, past which the function refuses it; a write is answered failed only once that deadline has
passed. Stored means stored: each call records its replies in its pipeline's outcome hash in the
same atomic call, and a pipeline whose replies were lost is answered from that hash.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import msgpack
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..base import StoreUnavailable
from .connection import DOWN_ERRORS, RedisConnection
from .keys import Keys

log = logging.getLogger("hub.store")

WRITE_BATCH = 1000  # writes per pipeline at most
# Pipelines sent and not yet answered at most; at the bound the writer waits for the oldest's replies
# (the writes queue meanwhile, and go in the next pipeline).
MAX_IN_FLIGHT = 2
# Keys and arguments per `hub_batch` call at most: Redis runs one call without serving anything
# else, so a pipeline of large writes (e.g. 1,000-event bodies) is split into several calls.
CALL_ITEMS = 20_000
# Our clock and Redis' may tick at slightly different rates between two measures of their offset.
DEADLINE_MARGIN = 0.05
# A pipeline whose replies did not come: how long the hub keeps asking Redis which of its writes it
# applied (their replies are kept in the pipeline's outcome hash) before it answers them failed
# unknowingly, and how long that hash outlives an unfinished pipeline in Redis.
OUTCOME_PATIENCE = 60.0
OUTCOME_TTL_MS = 600_000


def _unchanged(reply: Any) -> Any:
    return reply


@dataclass(slots=True)
class Write:
    function: str  # the name of one write of the library's `hub_batch` (writerhub.lua)
    keys: list[str]
    args: list[str | bytes]  # strings only: the library reads them as Lua strings
    convert: Callable[[Any], Any]  # its reply -> the write's result
    future: asyncio.Future[Any]


@dataclass(slots=True)
class Sent:
    """A pipeline on its way: its calls in order, its outcome hash, when it was sent (monotonic,
    for its deadline; perf_counter, for on_commit)."""

    calls: list[list[Write]]
    outcome: str
    sent: float
    began: float


class WritePipeline:
    """Writes sent over `connection` in call order; `timeout`: seconds a write may take."""

    def __init__(self, connection: RedisConnection, keys: Keys, timeout: float) -> None:
        self.connection = connection
        self.keys = keys
        # Seconds a write may take. It is sent with a deadline that far ahead in Redis' clock; the
        # hub answers it failed only once that deadline has passed (see _lost), so a write answered
        # failed is never applied later.
        self.timeout = timeout
        self._pipelines = itertools.count()  # names each pipeline's outcome hash, with a per-process token
        self._process_token = secrets.token_hex(6)
        self._settling: set[asyncio.Task[None]] = set()  # pipelines whose outcome is being asked for
        # Outcome hashes of pipelines answered in full: deleted by the next pipeline. (Not by their
        # own: Redis could freeze after that delete and before the replies, and the hash is the truth.)
        self._answered: list[str] = []
        self.on_commit: Callable[[float], None] | None = None  # told each pipeline's seconds, sent to answered
        self._pending: list[Write] = []  # in call order; taken WRITE_BATCH at a time
        self._closing = False  # the writer stops once it has sent what is queued
        self._wake: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        self._link: Any = None  # the writes' own connection (redis-py's), taken from the client's pool
        self._in_flight: deque[Sent] = deque()  # sent, replies not yet read; MAX_IN_FLIGHT at most
        self._moved: asyncio.Event | None = None  # set when a pipeline is sent or answered
        self._reader: asyncio.Task[None] | None = None
        # After replies were lost: no pipeline is sent before this (monotonic), the deadline of the
        # last one lost. Until then its leftovers could still be applied, and a later pipeline, on a
        # new connection, would not be ordered after them.
        self._hold_until = 0.0

    def start(self) -> None:
        self._closing = False
        self._wake = asyncio.Event()
        self._moved = asyncio.Event()
        self._writer = asyncio.create_task(self._write_loop())
        self._reader = asyncio.create_task(self._read_loop())

    async def close(self) -> None:
        """Send every write already queued, wait for their replies, then stop; writes still being
        settled fail."""
        if self._writer is not None:
            assert self._wake is not None
            self._closing = True  # after every write already queued
            self._wake.set()
            await self._writer
            self._writer = None
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        for pipeline in self._in_flight:  # only when the writer failed: nothing else leaves them here
            _fail([write for call in pipeline.calls for write in call], StoreUnavailable(f"redis store {self.connection.where}: closed"))
        self._in_flight.clear()
        left, self._pending = self._pending, []  # submitted after the writer stopped: never sent
        _fail(left, StoreUnavailable(f"redis store {self.connection.where}: closed"))
        if self._link is not None:
            link, self._link = self._link, None
            with contextlib.suppress(Exception):
                await link.disconnect()
            if self.connection.client is not None:
                with contextlib.suppress(Exception):
                    await self.connection.client.connection_pool.release(link)
        for task in list(self._settling):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def submit(
        self, function: str, keys: list[str], args: list[Any], convert: Callable[[Any], Any] = _unchanged
    ) -> asyncio.Future[Any]:
        """Queue one call of `function`; the future resolves to `convert(reply)`, or fails with
        StoreUnavailable (at once while Redis is unreachable)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        connection = self.connection
        if not connection.accepting:
            future.set_exception(StoreUnavailable(f"redis store {connection.where}: not started or already closed"))
        elif connection.down is not None:
            future.set_exception(connection.unavailable())
        else:
            self._pending.append(Write(function, keys, args, convert, future))
            assert self._wake is not None
            self._wake.set()
        return future

    async def _write_loop(self) -> None:
        assert self._wake is not None and self._moved is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                while len(self._in_flight) >= MAX_IN_FLIGHT:
                    await self._until_moved()
                if (hold := self._hold_until - time.monotonic()) > 0:
                    await asyncio.sleep(hold)
                batch = self._pending[:WRITE_BATCH]
                del self._pending[:WRITE_BATCH]
                await self._send(batch)
            if self._closing:
                while self._in_flight:  # their replies, before the store closes the connection
                    await self._until_moved()
                return

    async def _until_moved(self) -> None:
        assert self._moved is not None
        self._moved.clear()
        await self._moved.wait()

    async def _send(self, batch: list[Write]) -> None:
        connection = self.connection
        if connection.down is not None:
            _fail(batch, connection.unavailable())
            return
        assert connection.client is not None
        sent = time.monotonic()
        deadline = int((sent + connection.clock_offset + self.timeout) * 1000)  # ms, Redis' clock
        outcome = self.keys.outcome(self._process_token, next(self._pipelines))
        answered, self._answered = self._answered, []
        calls = split_calls(batch)
        try:
            if self._link is None:
                self._link = await connection.client.connection_pool.get_connection()
            link = self._link
            packed = link.pack_commands(
                ("FCALL", "hub_batch", 1 + len(dropped), outcome, *dropped, field, deadline, OUTCOME_TTL_MS,
                 encode_writes(call))
                for field, call, dropped in ((f, c, answered if f == 0 else []) for f, c in enumerate(calls))
            )
        except Exception as error:  # noqa: BLE001 - nothing was sent: a bug must not leave writers waiting
            _fail(batch, StoreUnavailable(f"redis store {connection.where}: {error!r}"))
            return
        pipeline = Sent(calls, outcome, sent, time.perf_counter())
        try:
            await link.send_packed_command(packed, check_health=False)
        except BaseException as error:  # down, or a bug: what reached Redis is unknown
            # Part of it may have reached Redis and been applied: answered from its outcome hash.
            # (The reader meets the broken connection too, and settles the pipelines sent before.)
            connection.mark_down(error)
            self._settle_later(pipeline)
            if isinstance(error, asyncio.CancelledError):
                raise
            return
        self._in_flight.append(pipeline)
        assert self._moved is not None
        self._moved.set()

    async def _read_loop(self) -> None:
        """Read the replies of the pipelines in flight, in the order sent, and answer their writes."""
        connection = self.connection
        while True:
            while not self._in_flight:
                await self._until_moved()
            pipeline = self._in_flight[0]
            replies: list[Any] = []
            try:
                for _ in pipeline.calls:
                    try:
                        replies.append(await self._link.read_response())
                    except ResponseError as refused:  # a whole call refused (its deadline, no library)
                        replies.append(refused)
            except asyncio.CancelledError:
                raise
            except BaseException as error:  # noqa: BLE001 - down, or a bug: the replies are lost either way
                await self._lost(error)
                continue
            self._in_flight.popleft()
            assert self._moved is not None
            self._moved.set()
            self._answered.append(pipeline.outcome)
            if self.on_commit is not None:
                with contextlib.suppress(Exception):
                    self.on_commit(time.perf_counter() - pipeline.began)
            if any(isinstance(r, ResponseError) and "function not found" in str(r).lower() for r in replies):
                # Redis restarted without its functions: nothing was applied. Loaded again before
                # these writes are answered, so that what their writers send next finds them.
                with contextlib.suppress(Exception):
                    await connection.load_library()
            for call, reply in zip(pipeline.calls, replies):
                if isinstance(reply, bytes):
                    answer(call, reply, connection.where)
                else:
                    _fail(call, StoreUnavailable(f"redis store {connection.where}: {reply}"))

    async def _lost(self, error: BaseException) -> None:
        """The replies of every pipeline in flight are lost (timed out, or the connection broke):
        some of their calls may have been applied (Redis froze before replying) and others may
        still sit in Redis' input (it is paused). Once a pipeline's deadline has passed none of the
        latter can be applied; its outcome hash then says which were, and only the others are
        answered failed."""
        connection = self.connection
        lost = list(self._in_flight)
        self._in_flight.clear()
        assert self._moved is not None
        self._moved.set()
        connection.mark_down(error)  # first: no pipeline is sent until Redis answers again
        gone = False
        try:
            if self._link is not None:
                with contextlib.suppress(Exception):
                    await self._link.disconnect()  # the next pipeline connects afresh
            gone = not isinstance(error, (RedisTimeoutError, asyncio.TimeoutError)) and await connection.process_gone()
        finally:  # (also when the store closes meanwhile: the settling is then cancelled, failing them)
            for pipeline in lost:
                if gone:  # a new process: what the old one applied is unknowable here
                    _fail([write for call in pipeline.calls for write in call], connection.unavailable())
                else:
                    self._settle_later(pipeline)

    def _settle_later(self, pipeline: Sent) -> None:
        self._hold_until = max(self._hold_until, pipeline.sent + self.timeout + DEADLINE_MARGIN)
        task = asyncio.create_task(self.settle_from_outcome(pipeline.calls, pipeline.outcome, pipeline.sent))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)
        writes = [write for call in pipeline.calls for write in call]
        closed = StoreUnavailable(f"redis store {self.connection.where}: closed")
        task.add_done_callback(lambda done: _fail(writes, closed) if done.cancelled() else None)  # even unstarted

    async def settle_from_outcome(self, calls: list[list[Write]], outcome: str, sent: float) -> None:
        """Answer each write of a pipeline whose replies were lost, truthfully: once its deadline has
        passed (the pipeline was sent at `sent`, monotonic), ask Redis (for up to OUTCOME_PATIENCE)
        which of its calls it applied and with what replies (the `outcome` hash, a field per call)."""
        where = self.connection.where
        batch = [write for call in calls for write in call]
        try:
            await self._until_past(sent)
            applied = await self._outcome(outcome)
        except asyncio.CancelledError:  # the store closes
            _fail(batch, StoreUnavailable(f"redis store {where}: closed"))
            raise
        if applied is None:
            log.warning("redis store %s: %d write(s) answered failed without knowing whether Redis applied "
                        "them (unreachable for %g s)", where, len(batch), OUTCOME_PATIENCE)
            _fail(batch, self.connection.unavailable())
            return
        refused = StoreUnavailable(
            f"redis store {where}: not applied within --store-timeout ({self.timeout:g} s), and never will be"
        )
        for field, call in enumerate(calls):
            packed = applied.get(str(field).encode())
            if packed is None:  # not applied, and past its deadline it never will be
                _fail(call, refused)
            else:
                answer(call, packed, where)

    async def _outcome(self, outcome: str) -> dict[bytes, bytes] | None:
        """The outcome hash of a pipeline (deleted once read), asked for until Redis answers or
        OUTCOME_PATIENCE passes (None)."""
        applied: dict[bytes, bytes] | None = None
        probe = self.connection.new_client(1.0)
        try:
            give_up = time.monotonic() + OUTCOME_PATIENCE
            while applied is None and time.monotonic() < give_up and self.connection.accepting:
                try:
                    applied = await probe.hgetall(outcome)
                    await probe.delete(outcome)
                except DOWN_ERRORS + (RedisError,):
                    await asyncio.sleep(0.1)
        finally:
            with contextlib.suppress(Exception):
                await probe.aclose()
        return applied

    async def _until_past(self, sent: float) -> None:
        """Wait until the deadline of writes sent at `sent` (monotonic) has passed in Redis' clock."""
        wait = sent + self.timeout + DEADLINE_MARGIN - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)


def split_calls(batch: list[Write]) -> list[list[Write]]:
    """The writes of a pipeline in call order, cut into `hub_batch` calls of about CALL_ITEMS keys and
    arguments each (a write is never split)."""
    calls: list[list[Write]] = []
    call: list[Write] = []
    items = 0
    for write in batch:
        size = len(write.keys) + len(write.args)
        if call and items + size > CALL_ITEMS:
            calls.append(call)
            call, items = [], 0
        call.append(write)
        items += size
    if call:
        calls.append(call)
    return calls


def encode_writes(call: list[Write]) -> bytes:
    """The `hub_batch` argument that carries a call's writes (raw strings: Redis' MessagePack reads no `bin`)."""
    return msgpack.packb([(write.function, write.keys, write.args) for write in call], use_bin_type=False)


def answer(call: list[Write], packed: bytes, where: str) -> None:
    """Settle a call's writes from its reply (MessagePack: one value, or {err}, per write in order)."""
    try:
        replies = msgpack.unpackb(packed, raw=True)
    except Exception as error:  # noqa: BLE001 - a bug must not leave writers waiting
        _fail(call, StoreUnavailable(f"redis store {where}: unreadable reply ({error!r})"))
        return
    for write, reply in zip(call, replies):
        if write.future.done():
            continue
        if type(reply) is dict:
            message = reply.get(b"err", b"").decode(errors="replace")
            write.future.set_exception(StoreUnavailable(f"redis store {where}: {message}"))
            continue
        try:
            write.future.set_result(write.convert(None if reply is False else reply))
        except Exception as error:  # noqa: BLE001
            write.future.set_exception(error)
    if len(replies) < len(call):
        _fail(call[len(replies):], StoreUnavailable(f"redis store {where}: no reply for this write"))


def _fail(batch: list[Write], error: BaseException) -> None:
    for write in batch:
        if not write.future.done():
            write.future.set_exception(error)
