"""The Redis store: for several hub processes sharing one data set (`--store redis://host:port/db`).

Layout (prefix `hub`; topic and stream ids never contain `/`, so `/` separates key parts):

    hub/topics              sorted set: topic -> creation sequence (of its first stream)
    hub/t/{topic}           sorted set: stream id -> creation sequence (list_streams order)
    hub/seq                 counter for the creation sequences
    hub/s/{topic}/{stream}  hash: topic, stream_id, properties, status, events, rows, first, last,
                            activity, edefs, pdefs (JSON where structured)
    hub/e/{topic}/{stream}  stream: one entry per event, {t: timestamp, d: JSON [id, value, tags]}
    hub/p/{topic}/{stream}  stream: one entry per parameter row, {t: timestamp, d: JSON row values}
    hub/q/{topic}           stream: quarantined rows, {d: JSON [streamId, line, reason, raw, receivedAt]}
    hub/changes             stream: the change log every process's feed reads, {k, t, s, a, b | h}
    hub/i/{scope}/{key}     string: an idempotency record, expiring on its own (PX)

Entry ids are Redis' own `ms-seq` (arrival order, and the page cursor as is). Every write is one
call of a function of the `writerhub` library (Lua, loaded at start and after every reconnect), so
a write with its counters, indexes and change-log entry is atomic, and any number of hub processes
can write at once. Range reads scan forward from the cursor and filter on the event's own
timestamp, as the other backends do.

Writes: one writer task drains a queue in call order and sends everything queued in one pipeline
(one round trip for many writes: group commit); a write resolves when Redis replied, which with
`appendfsync always` means it is on disk. The client never retries a write on its own (a retry of a
write whose reply was lost would store it twice). When Redis is unreachable the store is *down*:
every write and read fails at once with StoreUnavailable, `ready()` says False, and a task
reconnects with backoff (50 ms doubling to 2 s).

Live changes: each process runs one feed reader (started by the first subscribe) that XREADs
`hub/changes` and, for the changes a local subscriber wants, fetches the new entries or the stream's
hash, then hands them to the in-process ChangeFeed. So a write made through any process reaches
subscribers on every process, in write order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import itertools
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import msgpack
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..models import Event, Page, ParameterData, QuarantinedRow, ReadWindow, StreamInfo, StreamProperties, TopicSummary
from .base import DefinitionKind, IdempotencyRecord, StoreUnavailable, StreamStore
from .broadcast import DEFAULT_MAX_PENDING, Change, ChangeBroadcast as ChangeFeed, ChangeSubscription as Subscription
from .encoding import dumps, loads, stream_info
from .parameter_rows import join_rows, split_rows
from .retention import KEEP_EVERYTHING, Retention, trim_every


log = logging.getLogger("hub.store")

_DOWN_ERRORS = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError, asyncio.TimeoutError)
_CURSOR = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
CHANGES_MAXLEN = 100_000
WRITE_BATCH = 1000  # writes per pipeline at most
DEFAULT_TIMEOUT = 10.0  # seconds a write may take (--store-timeout)
# Our clock and Redis' may tick at slightly different rates between two measures of their offset.
DEADLINE_MARGIN = 0.05
# A pipeline whose replies did not come: how long the hub keeps asking Redis which of its writes it
# applied (their replies are kept in the pipeline's outcome hash) before it answers them failed
# unknowingly, and how long that hash outlives an unfinished pipeline in Redis.
OUTCOME_PATIENCE = 60.0
OUTCOME_TTL_MS = 600_000
LIBRARY = "writerhub"

# KEYS of the stream functions: 1 hash, 2 topic's stream index, 3 topic index, 4 sequence,
# 5 change log[, 6 data stream]. ARGV: 1 topic, 2 stream id, 3 now (seconds), then per function.
LUA = r"""#!lua name=writerhub

local CHANGES_MAXLEN = 100000

-- a < b for decimal int64 text (Lua numbers are doubles: nanosecond timestamps do not fit)
local function lt(a, b)
  local na, nb = string.sub(a, 1, 1) == '-', string.sub(b, 1, 1) == '-'
  if na ~= nb then return na end
  if na then a, b = string.sub(b, 2), string.sub(a, 2) end
  if #a ~= #b then return #a < #b end
  return a < b
end

-- creates the stream if new; true when it did
local function ensure(keys, topic, sid, status)
  if redis.call('EXISTS', keys[1]) == 1 then return false end
  local seq = redis.call('INCR', keys[4])
  redis.call('ZADD', keys[3], 'NX', seq, topic)
  redis.call('ZADD', keys[2], 'NX', seq, sid)
  redis.call('HSET', keys[1], 'topic', topic, 'stream_id', sid, 'properties', '{}', 'status', status,
    'events', 0, 'rows', 0, 'edefs', '[]', 'pdefs', '[]')
  return true
end

-- data changes name their entries (a..b); stream changes carry the hash as it is now (h), so a
-- reader sees each state in turn even when it fetches later
local function notify(keys, kind, topic, sid, a, b)
  if a then
    redis.call('XADD', keys[5], 'MAXLEN', '~', CHANGES_MAXLEN, '*', 'k', kind, 't', topic, 's', sid, 'a', a, 'b', b)
  else
    local h = cjson.encode(redis.call('HGETALL', keys[1]))
    redis.call('XADD', keys[5], 'MAXLEN', '~', CHANGES_MAXLEN, '*', 'k', kind, 't', topic, 's', sid, 'h', h)
  end
end

-- ARGV 4 kind (e|p), 5 lowest timestamp, 6 highest ('' when none), 7 maxlen (0: none),
-- 8 max age ms (0: none), then pairs: timestamp, JSON
local function append(keys, args)
  local topic, sid, h = args[1], args[2], keys[1]
  local changed = ensure(keys, topic, sid, 'open')
  if not changed and redis.call('HGET', h, 'status') == 'closed' then
    redis.call('HSET', h, 'status', 'open')
    changed = true
  end
  local maxlen = tonumber(args[7])
  local first, last
  local n = 0
  for i = 9, #args, 2 do
    local id
    if maxlen > 0 then
      id = redis.call('XADD', keys[6], 'MAXLEN', '~', maxlen, '*', 't', args[i], 'd', args[i + 1])
    else
      id = redis.call('XADD', keys[6], '*', 't', args[i], 'd', args[i + 1])
    end
    first = first or id
    last = id
    n = n + 1
  end
  if args[8] ~= '0' and n > 0 then
    local now = redis.call('TIME')
    local minid = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(args[8])
    if minid > 0 then redis.call('XTRIM', keys[6], 'MINID', '~', string.format('%d', minid)) end
  end
  if args[4] == 'e' then
    redis.call('HINCRBY', h, 'events', n)
  else
    redis.call('HINCRBY', h, 'rows', n)
  end
  redis.call('HSET', h, 'activity', args[3])
  if args[6] ~= '' then
    local f = redis.call('HGET', h, 'first')
    if not f or lt(args[5], f) then redis.call('HSET', h, 'first', args[5]) end
    local l = redis.call('HGET', h, 'last')
    if not l or lt(l, args[6]) then redis.call('HSET', h, 'last', args[6]) end
  end
  if changed then notify(keys, 's', topic, sid) end
  if n > 0 then notify(keys, args[4], topic, sid, first, last) end
  return n
end

-- ARGV 4 properties JSON, 5 reopen (1|0)
local function put_properties(keys, args)
  ensure(keys, args[1], args[2], 'open')
  redis.call('HSET', keys[1], 'properties', args[4], 'activity', args[3])
  if args[5] == '1' then redis.call('HSET', keys[1], 'status', 'open') end
  notify(keys, 's', args[1], args[2])
  return redis.call('HGETALL', keys[1])
end

local function close_stream(keys, args)
  ensure(keys, args[1], args[2], 'closed')
  redis.call('HSET', keys[1], 'status', 'closed', 'activity', args[3])
  notify(keys, 's', args[1], args[2])
  return redis.call('HGETALL', keys[1])
end

-- ARGV 4 field (edefs|pdefs), 5 JSON
local function set_definitions(keys, args)
  ensure(keys, args[1], args[2], 'open')
  redis.call('HSET', keys[1], args[4], args[5], 'activity', args[3])
  notify(keys, 's', args[1], args[2])
  return redis.call('HGETALL', keys[1])
end

-- KEYS 1 record; ARGV 1 pending value, 2 lease ms. The existing record, or nil after claiming.
local function claim(keys, args)
  local found = redis.call('GET', keys[1])
  if found then return found end
  redis.call('SET', keys[1], args[1], 'PX', args[2])
  return false
end

-- KEYS 1 record; ARGV 1 the pending value to drop
local function release(keys, args)
  if redis.call('GET', keys[1]) == args[1] then redis.call('DEL', keys[1]) end
  return 0
end

-- KEYS 1 the topic's quarantine; ARGV the rows' JSON. All or nothing, unlike separate XADDs.
local function quarantine(keys, args)
  for i = 1, #args do redis.call('XADD', keys[1], '*', 'd', args[i]) end
  return #args
end

-- KEYS 1 record; ARGV 1 value, 2 ttl ms
local function finish(keys, args)
  redis.call('SET', keys[1], args[1], 'PX', args[2])
  return 0
end

-- Every write: last KEY its pipeline's outcome hash, last two ARGV its field there and its deadline.
-- Past the deadline (Redis' clock) the write is refused; once applied, its reply is kept in the
-- outcome hash in the same atomic call, so the hub learns it even if Redis froze before replying.
local function before_deadline(f)
  return function(keys, args)
    local deadline = tonumber(table.remove(args))
    local field = table.remove(args)
    local outcome = table.remove(keys)
    local now = redis.call('TIME')
    if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > deadline then
      return redis.error_reply('DEADLINE the hub gave up waiting for this write: not applied')
    end
    local reply = f(keys, args)
    redis.call('HSET', outcome, field, cmsgpack.pack(reply))
    return reply
  end
end

redis.register_function('hub_append', before_deadline(append))
redis.register_function('hub_quarantine', before_deadline(quarantine))
redis.register_function('hub_put_properties', before_deadline(put_properties))
redis.register_function('hub_close_stream', before_deadline(close_stream))
redis.register_function('hub_set_definitions', before_deadline(set_definitions))
redis.register_function('hub_claim', before_deadline(claim))
redis.register_function('hub_release', before_deadline(release))
redis.register_function('hub_finish', before_deadline(finish))
"""


@dataclass(slots=True)
class _Op:
    function: str  # one function of the library: the write's one command
    keys: list[str]
    args: list[Any]  # the deadline is appended when the write is sent
    convert: Callable[[Any], Any]  # the reply of its last command -> the write's result
    future: asyncio.Future[Any]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _check_cursor(after: str | None) -> str:
    """The XRANGE start for a page after `after` (exclusive)."""
    if after is None:
        return "-"
    if type(after) is not str or not after.isascii() or _CURSOR.fullmatch(after) is None:
        raise ValueError(f"not a cursor from this store: {after!r}")
    ms, seq = after.split("-")
    if int(ms) >= 2**64 or int(seq) >= 2**64:
        raise ValueError(f"not a cursor from this store: {after!r}")
    return "(" + after


def _info(fields: Any) -> StreamInfo | None:
    """A stream hash (HGETALL as a dict, or the flat list a function returns) -> StreamInfo."""
    if isinstance(fields, list):
        fields = dict(zip(fields[0::2], fields[1::2]))
    if not fields:
        return None
    f = {_text(k): v for k, v in fields.items()}
    first, last, activity = f.get("first"), f.get("last"), f.get("activity")
    return stream_info(
        _text(f["topic"]),
        _text(f["stream_id"]),
        f["properties"],
        _text(f["status"]),  # type: ignore[arg-type]
        int(f["events"]),
        int(f["rows"]),
        None if first is None else int(first),
        None if last is None else int(last),
        None if activity is None else float(activity),
        f["edefs"],
        f["pdefs"],
    )


def _event(fields: dict[bytes, bytes]) -> Event:
    id_, value, tags = loads(fields[b"d"])
    return Event(id_, int(fields[b"t"]), value, tags or {})


class RedisStore(StreamStore):
    def __init__(
        self,
        url: str,
        retention: Retention = KEEP_EVERYTHING,
        *,
        prefix: str = "hub",
        trim_interval: float = 60.0,
        connect_timeout: float = 2.0,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        self.url = url
        self.retention = retention
        self.prefix = prefix
        self.trim_interval = trim_interval
        self.connect_timeout = connect_timeout
        # Seconds a write may take. It is sent with a deadline that far ahead in Redis' clock; the
        # hub answers it failed only once that deadline has passed (see _run), so a write answered
        # failed is never applied later.
        self.timeout = timeout
        self._clock_offset = 0.0  # Redis' clock minus time.monotonic(), at most (see _connect)
        self._run_id: str | None = None  # the Redis process connected to (INFO run_id)
        self._pipelines = itertools.count()  # names each pipeline's outcome hash, with a per-process token
        self._process_token = secrets.token_hex(6)
        self._settling: set[asyncio.Task[None]] = set()  # pipelines whose outcome is being asked for
        # Outcome hashes of pipelines answered in full: deleted by the next pipeline. (Not by their
        # own: Redis could freeze after that delete and before the replies, and the hash is the truth.)
        self._answered: list[str] = []
        self.changes = ChangeFeed()
        self._client: aioredis.Redis | None = None
        self._feed_client: aioredis.Redis | None = None
        self._pending: deque[_Op | None] = deque()
        self._wake: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        self._feed: asyncio.Task[None] | None = None
        self._feed_lock: asyncio.Lock | None = None
        self._reconnect: asyncio.Task[None] | None = None
        self._trimmer: asyncio.Task[None] | None = None
        self._accepting = False
        self._down: str | None = "not started"
        maxlen = retention.max_count or 0
        self._maxlen = str(maxlen)
        self._max_age_ms = str(int(retention.max_age * 1000)) if retention.max_age else "0"

    # --- keys -------------------------------------------------------------------------------------

    def _stream_keys(self, topic: str, stream_id: str) -> list[str]:
        p = self.prefix
        return [f"{p}/s/{topic}/{stream_id}", f"{p}/t/{topic}", f"{p}/topics", f"{p}/seq", f"{p}/changes"]

    def _data_key(self, kind: str, topic: str, stream_id: str) -> str:
        return f"{self.prefix}/{kind}/{topic}/{stream_id}"

    def _idempotency_key(self, scope: str, key: str) -> str:
        return f"{self.prefix}/i/{scope}/{key}"

    # --- lifecycle --------------------------------------------------------------------------------

    def _new_client(self, socket_timeout: float | None) -> aioredis.Redis:
        return aioredis.from_url(
            self.url,
            socket_connect_timeout=self.connect_timeout,
            socket_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0),  # never resend a write on our behalf: it could be stored twice
            health_check_interval=0,
        )

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._feed_lock = asyncio.Lock()
        # a reply later than the write's own deadline: the deadline passed (plus the margin)
        self._client = self._new_client(self.timeout + DEADLINE_MARGIN)
        self._feed_client = self._new_client(None)
        self._accepting = True
        try:
            await self._connect()
        except _DOWN_ERRORS + (RedisError,) as error:
            log.warning("redis store %s unreachable at start (%s); reconnecting in the background", self._where, error)
            self._mark_down(error)
        self._writer = asyncio.create_task(self._write_loop())
        self._trimmer = asyncio.create_task(trim_every(self, self.trim_interval))

    @property
    def _where(self) -> str:
        return self.url.split("@")[-1]  # never a password

    async def _connect(self) -> None:
        assert self._client is not None
        await self._client.ping()
        await self._client.function_load(LUA, replace=True)
        # Redis read its clock between `before` and now: the offset taken against now is never more
        # than the true one, so a deadline built on it passes in Redis no later than in our clock.
        seconds, micros = await self._client.time()
        self._clock_offset = seconds + micros / 1e6 - time.monotonic()
        self._run_id = (await self._client.info("server")).get("run_id")
        self._down = None

    async def close(self) -> None:
        self._accepting = False
        if self._writer is not None:
            assert self._wake is not None
            self._pending.append(None)  # after every write already queued
            self._wake.set()
            await self._writer
            self._writer = None
        for task in (self._feed, self._reconnect, self._trimmer, *self._settling):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._feed = self._reconnect = self._trimmer = None
        self.changes.close()
        for client in (self._client, self._feed_client):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
        self._client = self._feed_client = None
        self._down = "closed"

    async def ready(self) -> bool:
        if self._down is not None or self._client is None:
            return False
        try:
            await asyncio.wait_for(self._client.ping(), 1.0)
            return True
        except _DOWN_ERRORS + (RedisError,) as error:
            self._mark_down(error)
            return False

    def _mark_down(self, error: BaseException) -> None:
        if self._down is None or self._down == "not started":
            log.warning("redis store %s is unreachable: %s", self._where, error or type(error).__name__)
        self._down = str(error) or type(error).__name__
        if self._accepting and (self._reconnect is None or self._reconnect.done()):
            self._reconnect = asyncio.create_task(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        delay = 0.05
        while self._accepting:
            await asyncio.sleep(delay)
            try:
                await self._connect()
            except _DOWN_ERRORS + (RedisError,) as error:
                self._down = str(error) or type(error).__name__
                delay = min(delay * 2, 2.0)
                continue
            log.warning("redis store %s is reachable again", self._where)
            return

    def _unavailable(self) -> StoreUnavailable:
        return StoreUnavailable(f"redis at {self._where} is unreachable ({self._down})")

    # --- the writer task --------------------------------------------------------------------------

    def _submit(
        self, function: str, keys: list[str], args: list[Any], convert: Callable[[Any], Any] = lambda r: r
    ) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self._accepting:
            future.set_exception(StoreUnavailable(f"redis store {self._where}: not started or already closed"))
        elif self._down is not None:
            future.set_exception(self._unavailable())
        else:
            self._pending.append(_Op(function, keys, args, convert, future))
            assert self._wake is not None
            self._wake.set()
        return future

    async def _write_loop(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch: list[_Op] = []
                stop = False
                while self._pending and len(batch) < WRITE_BATCH:
                    op = self._pending.popleft()
                    if op is None:
                        stop = True
                        break
                    batch.append(op)
                if batch:
                    await self._run(batch)
                if stop:
                    return

    async def _run(self, batch: list[_Op]) -> None:
        if self._down is not None:
            _fail(batch, self._unavailable())
            return
        assert self._client is not None
        pipe = self._client.pipeline(transaction=False)
        sent = time.monotonic()
        deadline = int((sent + self._clock_offset + self.timeout) * 1000)  # ms, Redis' clock
        outcome = f"{self.prefix}/w/{self._process_token}/{next(self._pipelines)}"
        answered, self._answered = self._answered, []
        pipe.delete(outcome, *answered)
        pipe.hset(outcome, "-", "")  # made first, so that it expires even if the pipeline stops midway
        pipe.pexpire(outcome, OUTCOME_TTL_MS)
        for i, op in enumerate(batch):
            pipe.fcall(op.function, len(op.keys) + 1, *op.keys, outcome, *op.args, i, deadline)
        try:
            replies = (await pipe.execute(raise_on_error=False))[3:]
        except _DOWN_ERRORS as error:
            # Timed out, or the connection broke: some writes may have been applied (their replies
            # lost: Redis froze before sending them) and others may still sit in Redis' input (it
            # is paused). Once the deadline has passed none of the latter can be applied; the
            # outcome hash then says which were, and only the others are answered failed.
            self._mark_down(error)
            if not isinstance(error, (RedisTimeoutError, asyncio.TimeoutError)) and await self._process_gone():
                _fail(batch, self._unavailable())  # a new process: what the old one applied is unknowable here
                return
            task = asyncio.create_task(self._settle_from_outcome(batch, outcome, sent))
            self._settling.add(task)
            task.add_done_callback(self._settling.discard)
            return
        except Exception as error:  # noqa: BLE001 - a bug must not leave writers waiting
            await self._until_past(sent)
            _fail(batch, StoreUnavailable(f"redis store {self._where}: {error!r}"))
            return
        self._answered.append(outcome)
        reload = False
        for op, reply in zip(batch, replies):
            if op.future.done():
                continue
            if isinstance(reply, Exception):
                if isinstance(reply, ResponseError) and "function" in str(reply).lower() and "not found" in str(reply).lower():
                    reload = True  # Redis restarted without its functions: nothing was applied
                op.future.set_exception(StoreUnavailable(f"redis store {self._where}: {reply}"))
            else:
                try:
                    op.future.set_result(op.convert(reply))
                except Exception as error:  # noqa: BLE001
                    op.future.set_exception(error)
        if reload:
            with contextlib.suppress(Exception):
                await self._client.function_load(LUA, replace=True)

    async def _settle_from_outcome(self, batch: list[_Op], outcome: str, sent: float) -> None:
        """Answer each write of a pipeline whose replies were lost, truthfully: once its deadline has
        passed, ask Redis (for up to OUTCOME_PATIENCE) which writes it applied and with what reply."""
        try:
            await self._until_past(sent)
            applied = await self._outcome(outcome)
        except asyncio.CancelledError:  # the store closes
            _fail(batch, StoreUnavailable(f"redis store {self._where}: closed"))
            raise
        if applied is None:
            log.warning("redis store %s: %d write(s) answered failed without knowing whether Redis applied "
                        "them (unreachable for %g s)", self._where, len(batch), OUTCOME_PATIENCE)
            _fail(batch, self._unavailable())
            return
        refused = StoreUnavailable(
            f"redis store {self._where}: not applied within --store-timeout ({self.timeout:g} s), and never will be"
        )
        for i, op in enumerate(batch):
            packed = applied.get(str(i).encode())
            if op.future.done():
                continue
            if packed is None:  # not applied, and past its deadline it never will be
                op.future.set_exception(refused)
                continue
            try:
                reply = msgpack.unpackb(packed, raw=True)
                op.future.set_result(op.convert(None if reply is False else reply))
            except Exception as error:  # noqa: BLE001
                op.future.set_exception(error)

    async def _outcome(self, outcome: str) -> dict[bytes, bytes] | None:
        """The outcome hash of a pipeline (deleted once read), asked for until Redis answers or
        OUTCOME_PATIENCE passes (None)."""
        applied: dict[bytes, bytes] | None = None
        probe = self._new_client(1.0)
        try:
            give_up = time.monotonic() + OUTCOME_PATIENCE
            while applied is None and time.monotonic() < give_up and self._accepting:
                try:
                    applied = await probe.hgetall(outcome)
                    await probe.delete(outcome)
                except _DOWN_ERRORS + (RedisError,):
                    await asyncio.sleep(0.1)
        finally:
            with contextlib.suppress(Exception):
                await probe.aclose()
        return applied

    async def _process_gone(self) -> bool:
        """After a broken connection: whether the Redis process we wrote to is no more (nothing
        refuses a connection, or another process answers), so no write it had not applied ever will
        be, and a failure can be answered at once. When unsure (e.g. it does not answer): False."""
        probe = aioredis.from_url(
            self.url, socket_connect_timeout=min(1.0, self.connect_timeout), socket_timeout=1.0,
            retry=Retry(NoBackoff(), 0), health_check_interval=0,
        )
        try:
            run_id = (await probe.info("server")).get("run_id")
        except RedisConnectionError as error:
            return isinstance(error.__cause__ or error.__context__, ConnectionRefusedError) or "refused" in str(error)
        except Exception:  # noqa: BLE001 - a timeout or anything else: unsure
            return False
        finally:
            with contextlib.suppress(Exception):
                await probe.aclose()
        return run_id is not None and run_id != self._run_id

    async def _until_past(self, sent: float) -> None:
        """Wait until the deadline of writes sent at `sent` (monotonic) has passed in Redis' clock."""
        wait = sent + self.timeout + DEADLINE_MARGIN - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    # --- writes -----------------------------------------------------------------------------------

    def _append(self, kind: str, topic: str, stream_id: str, items: list[tuple[int, bytes]]) -> Awaitable[int]:
        keys = self._stream_keys(topic, stream_id) + [self._data_key(kind, topic, stream_id)]
        timestamps = [ts for ts, _ in items]
        low, high = (str(min(timestamps)), str(max(timestamps))) if timestamps else ("", "")
        args: list[Any] = [topic, stream_id, repr(time.time()), kind, low, high, self._maxlen, self._max_age_ms]
        for ts, data in items:
            args.append(ts)
            args.append(data)
        return self._submit("hub_append", keys, args, int)

    def append_events(self, topic: str, stream_id: str, events: list[Event]) -> Awaitable[int]:
        return self._append(
            "e", topic, stream_id, [(e.timestamp, dumps([e.id, e.value, e.tags or None])) for e in events]
        )

    def append_parameter_data(self, topic: str, stream_id: str, data: ParameterData) -> Awaitable[int]:
        return self._append("p", topic, stream_id, [(ts, dumps(values)) for ts, values in split_rows(data)])

    def _stream_call(self, function: str, topic: str, stream_id: str, *extra: Any) -> Awaitable[StreamInfo]:
        keys = self._stream_keys(topic, stream_id)
        args = [topic, stream_id, repr(time.time()), *extra]
        return self._submit(function, keys, args, _info)

    def put_properties(
        self, topic: str, stream_id: str, properties: StreamProperties, *, reopen: bool = True
    ) -> Awaitable[StreamInfo]:
        encoded = dumps(properties.to_json())
        return self._stream_call("hub_put_properties", topic, stream_id, encoded, "1" if reopen else "0")

    def close_stream(self, topic: str, stream_id: str) -> Awaitable[StreamInfo]:
        return self._stream_call("hub_close_stream", topic, stream_id)

    def set_definitions(
        self, topic: str, stream_id: str, kind: DefinitionKind, definitions: list[dict[str, Any]]
    ) -> Awaitable[StreamInfo]:
        field = {"events": "edefs", "parameters": "pdefs"}.get(kind)
        if field is None:
            future: asyncio.Future[StreamInfo] = asyncio.get_running_loop().create_future()
            future.set_exception(ValueError(f"unknown definition kind {kind!r}"))
            return future
        return self._stream_call("hub_set_definitions", topic, stream_id, field, dumps(definitions))

    def append_quarantine(self, topic: str, rows: list[QuarantinedRow]) -> Awaitable[int]:
        key = f"{self.prefix}/q/{topic}"
        encoded = [dumps([r.stream_id, r.line, r.reason, r.raw, r.received_at]) for r in rows]

        return self._submit("hub_quarantine", [key], encoded, int)

    # --- reads ------------------------------------------------------------------------------------

    async def _call(self, make: Callable[[aioredis.Redis], Awaitable[Any]]) -> Any:
        if self._down is not None or self._client is None:
            raise self._unavailable()
        try:
            return await make(self._client)
        except _DOWN_ERRORS as error:
            self._mark_down(error)
            raise self._unavailable() from None

    async def list_topics(self) -> list[TopicSummary]:
        topics = [_text(t) for t in await self._call(lambda c: c.zrange(f"{self.prefix}/topics", 0, -1))]
        if not topics:
            return []

        async def counts(client: aioredis.Redis) -> list[int]:
            pipe = client.pipeline(transaction=False)
            for topic in topics:
                pipe.zcard(f"{self.prefix}/t/{topic}")
            return await pipe.execute()

        found = await self._call(counts)
        return sorted((TopicSummary(t, n) for t, n in zip(topics, found) if n), key=lambda s: s.topic)

    async def list_streams(self, topic: str) -> list[StreamInfo]:
        ids = [_text(s) for s in await self._call(lambda c: c.zrange(f"{self.prefix}/t/{topic}", 0, -1))]
        if not ids:
            return []

        async def hashes(client: aioredis.Redis) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            for stream_id in ids:
                pipe.hgetall(f"{self.prefix}/s/{topic}/{stream_id}")
            return await pipe.execute()

        return [info for info in map(_info, await self._call(hashes)) if info is not None]

    async def get_stream(self, topic: str, stream_id: str) -> StreamInfo | None:
        return _info(await self._call(lambda c: c.hgetall(f"{self.prefix}/s/{topic}/{stream_id}")))

    async def _scan(
        self, key: str, window: ReadWindow
    ) -> tuple[list[tuple[bytes, dict[bytes, bytes]]], str | None, str | None]:
        """Up to `window.limit` entries after the cursor whose `t` is in the window, the next cursor
        (set only when one more matching entry exists) and the last entry's id."""
        limit = window.limit
        start = _check_cursor(window.after)
        filtered = window.filtered
        admits = window.admits
        chunk = min(max(limit + 1, 512), 10_000) if filtered else limit + 1
        found: list[tuple[bytes, dict[bytes, bytes]]] = []
        while True:
            entries = await self._call(lambda c: c.xrange(key, min=start, max="+", count=chunk))
            for entry_id, fields in entries:
                if filtered:
                    if not admits(int(fields[b"t"])):
                        continue
                if len(found) == limit:
                    last = _text(found[-1][0])
                    return found, last, last
                found.append((entry_id, fields))
            if len(entries) < chunk:
                return found, None, _text(found[-1][0]) if found else None
            start = "(" + _text(entries[-1][0])

    async def read_events(self, topic: str, stream_id: str, window: ReadWindow = ReadWindow()) -> Page[Event]:
        entries, cursor, last = await self._scan(self._data_key("e", topic, stream_id), window)
        return Page([_event(fields) for _, fields in entries], cursor, last)

    async def read_parameter_data(
        self, topic: str, stream_id: str, window: ReadWindow = ReadWindow()
    ) -> Page[ParameterData]:
        entries, cursor, last = await self._scan(self._data_key("p", topic, stream_id), window)
        data = join_rows((int(fields[b"t"]), loads(fields[b"d"])) for _, fields in entries)
        return Page([data], cursor, last)

    async def read_quarantine(self, topic: str, window: ReadWindow = ReadWindow()) -> Page[QuarantinedRow]:
        unfiltered = ReadWindow(limit=window.limit, after=window.after)  # quarantined rows have no timestamp
        entries, cursor, last = await self._scan(f"{self.prefix}/q/{topic}", unfiltered)
        return Page([QuarantinedRow(*loads(fields[b"d"])) for _, fields in entries], cursor, last)

    # --- idempotency ------------------------------------------------------------------------------

    def claim_idempotency(
        self, scope: str, key: str, fingerprint: str, lease: float, attempt: str = ""
    ) -> Awaitable[IdempotencyRecord | None]:
        record_key = self._idempotency_key(scope, key)
        pending = _record_value(fingerprint, None, attempt.encode())
        lease_ms = max(1, int(lease * 1000))
        return self._submit(
            "hub_claim", [record_key], [pending, lease_ms],
            lambda reply: None if reply is None else _record(reply),
        )

    def finish_idempotency(
        self, scope: str, key: str, fingerprint: str, status: int, body: bytes, ttl: float
    ) -> Awaitable[None]:
        record_key = self._idempotency_key(scope, key)
        value = _record_value(fingerprint, status, body)
        return self._submit("hub_finish", [record_key], [value, max(1, int(ttl * 1000))], lambda _: None)

    def release_idempotency(self, scope: str, key: str, fingerprint: str, attempt: str = "") -> Awaitable[None]:
        record_key = self._idempotency_key(scope, key)
        pending = _record_value(fingerprint, None, attempt.encode())
        return self._submit("hub_release", [record_key], [pending], lambda _: None)

    # --- retention --------------------------------------------------------------------------------

    async def trim(self, now: float | None = None) -> None:
        """Exact trims of every data stream (writes trim approximately, `~`, as they go).
        Idempotency records expire on their own."""
        retention = self.retention
        if not retention.enabled:
            return
        at = time.time() if now is None else now
        topics = [_text(t) for t in await self._call(lambda c: c.zrange(f"{self.prefix}/topics", 0, -1))]
        for topic in topics:
            ids = [_text(s) for s in await self._call(lambda c: c.zrange(f"{self.prefix}/t/{topic}", 0, -1))]

            async def trim_topic(client: aioredis.Redis) -> None:
                pipe = client.pipeline(transaction=False)
                for stream_id in ids:
                    for kind in ("e", "p"):
                        key = self._data_key(kind, topic, stream_id)
                        if retention.max_count is not None:
                            pipe.xtrim(key, maxlen=retention.max_count, approximate=False)
                        if retention.max_age is not None:
                            pipe.xtrim(key, minid=str(max(0, int((at - retention.max_age) * 1000))), approximate=False)
                await pipe.execute()

            await self._call(trim_topic)

    # --- live changes -----------------------------------------------------------------------------

    async def subscribe(
        self, topic: str | None = None, stream_id: str | None = None, *, max_pending: int = DEFAULT_MAX_PENDING
    ) -> Subscription:
        assert self._feed_lock is not None
        async with self._feed_lock:
            if self._feed is None or self._feed.done():
                # Where the log ends now: every change after this reaches the new subscriber.
                last = await self._call(lambda c: c.xrevrange(f"{self.prefix}/changes", count=1))
                position = _text(last[0][0]) if last else "0-0"
                self._feed = asyncio.create_task(self._follow_changes(position))
        return self.changes.subscribe(topic, stream_id, max_pending)

    async def _follow_changes(self, position: str) -> None:
        assert self._feed_client is not None
        client = self._feed_client
        log_key = f"{self.prefix}/changes"
        delay = 0.05
        while True:
            try:
                reply = await client.xread({log_key: position}, count=1000, block=1000)
                delay = 0.05
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - Redis down: the writers say so; retry
                log.debug("change feed: %s", error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if not reply:
                continue
            entries = reply[0][1]
            position = _text(entries[-1][0])
            try:
                await self._deliver(client, entries)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001
                log.warning("change feed: could not fetch changes: %s", error)

    async def _deliver(self, client: aioredis.Redis, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """Fetch what local subscribers want of these change-log entries, publish in log order."""
        wanted: list[tuple[str, str, str, Any]] = []
        pipe = client.pipeline(transaction=False)
        for _, fields in entries:
            kind, topic, stream_id = _text(fields[b"k"]), _text(fields[b"t"]), _text(fields[b"s"])
            if not self.changes.wants(topic, stream_id):
                continue
            if kind == "s":
                wanted.append((kind, topic, stream_id, loads(fields[b"h"])))
            else:
                wanted.append((kind, topic, stream_id, None))
                pipe.xrange(self._data_key(kind, topic, stream_id), min=fields[b"a"], max=fields[b"b"])
        if not wanted:
            return
        fetched = iter(await pipe.execute())
        for kind, topic, stream_id, snapshot in wanted:
            reply = snapshot if kind == "s" else next(fetched)
            if kind == "s":
                info = _info(reply)
                if info is not None:
                    self.changes.publish(Change("stream", topic, stream_id, info=info))
            elif reply:
                cursors = [_text(entry_id) for entry_id, _ in reply]
                if kind == "e":
                    events = [_event(fields) for _, fields in reply]
                    self.changes.publish(Change("events", topic, stream_id, events=events, cursors=cursors))
                else:
                    data = join_rows((int(fields[b"t"]), loads(fields[b"d"])) for _, fields in reply)
                    self.changes.publish(Change("parameters", topic, stream_id, parameter_data=data, cursors=cursors))


def _fail(batch: list[_Op], error: BaseException) -> None:
    for op in batch:
        if not op.future.done():
            op.future.set_exception(error)


def _record_value(fingerprint: str, status: int | None, body: bytes) -> bytes:
    return fingerprint.encode() + b"\n" + (b"" if status is None else str(status).encode()) + b"\n" + body


def _record(value: bytes) -> IdempotencyRecord:
    fingerprint, status, body = value.split(b"\n", 2)
    return IdempotencyRecord(fingerprint.decode(), int(status) if status else None, body)
