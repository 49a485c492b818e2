"""RedisStore: the StreamStore methods over Redis (keys.py says where each thing lives).

Entry ids are Redis' own `ms-seq` (arrival order, and the page cursor as is). Every write is one
write of the `writerhub` library (named as in its WRITES table), sent through the write pipeline
(pipeline.py) in one `hub_batch` call with the writes queued beside it; reads go straight to Redis.
Range reads scan forward from the cursor and filter on the event's own timestamp, as the other
backends do. When Redis is unreachable every write and read fails at once
with StoreUnavailable and `ready()` says False until it is back (connection.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Awaitable, Callable

import redis.asyncio as aioredis

from ...models import Event, Page, ParameterData, QuarantinedRow, ReadWindow, StreamInfo, StreamProperties, TopicSummary
from ..base import DefinitionKind, IdempotencyRecord, StreamStore
from ..broadcast import DEFAULT_MAX_PENDING, ChangeBroadcast, ChangeSubscription
from ..encoding import dumps, loads
from ..parameter_rows import split_rows
from ..retention import KEEP_EVERYTHING, Retention, trim_every
from .codec import (
    Entry, event_data, event_of, parameter_data_of, range_start, record_of, record_value, stream_info_of, text,
)
from .connection import RedisConnection
from .follower import ChangeFollower
from .keys import DataKind, Keys
from .pipeline import DEADLINE_MARGIN, WritePipeline

DEFAULT_TIMEOUT = 10.0  # seconds a write may take (--store-timeout)


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
        self.timeout = timeout  # seconds a write may take (pipeline.py: what the hub answers past it)
        self.keys = Keys(prefix)
        # a reply later than the write's own deadline: the deadline passed (plus the margin)
        self.connection = RedisConnection(
            url, connect_timeout=connect_timeout, socket_timeout=timeout + DEADLINE_MARGIN
        )
        self.pipeline = WritePipeline(self.connection, self.keys, timeout)
        self.changes = ChangeBroadcast()
        self.follower = ChangeFollower(self.connection, self.keys, self.changes)
        self._trimmer: asyncio.Task[None] | None = None
        self._maxlen = str(retention.max_count or 0)
        self._max_age_ms = str(int(retention.max_age * 1000)) if retention.max_age else "0"

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.connection.open()
        self.pipeline.start()
        self._trimmer = asyncio.create_task(trim_every(self, self.trim_interval))

    async def close(self) -> None:
        self.connection.stop_accepting()
        await self.pipeline.close()
        await self.follower.close()
        if self._trimmer is not None:
            self._trimmer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._trimmer
            self._trimmer = None
        self.changes.close()
        await self.connection.close()

    def observe_commits(self, observe: Callable[[float], None]) -> None:
        self.pipeline.on_commit = observe

    async def ready(self) -> bool:
        return await self.connection.ready()

    # --- writes -----------------------------------------------------------------------------------

    def _append(
        self, kind: DataKind, topic: str, stream_id: str, entries: list[str | bytes], timestamps: list[int]
    ) -> Awaitable[int]:
        """One append: `entries` the entries' fields in pairs (timestamp as text, `d`), `timestamps`
        theirs (the stream's counters take their lowest and highest)."""
        low, high = (min(timestamps), max(timestamps)) if timestamps else (None, None)
        keys = self.keys.stream_function(topic, stream_id)
        keys.append(self.keys.data(kind, topic, stream_id))
        args: list[str | bytes] = [
            topic, stream_id, repr(time.time()), kind, "" if low is None else str(low), "" if high is None else str(high),
            self._maxlen, self._max_age_ms,
        ]
        args += entries
        return self.pipeline.submit("append", keys, args, int)

    def append_events(self, topic: str, stream_id: str, events: list[Event]) -> Awaitable[int]:
        entries: list[str | bytes] = []
        for event in events:
            entries += (str(event.timestamp), event_data(event))
        return self._append(DataKind.EVENTS, topic, stream_id, entries, [event.timestamp for event in events])

    def append_parameter_data(self, topic: str, stream_id: str, data: ParameterData) -> Awaitable[int]:
        entries: list[str | bytes] = []
        for ts, values in split_rows(data):
            entries += (str(ts), dumps(values))
        return self._append(DataKind.PARAMETERS, topic, stream_id, entries, data.timestamps)

    def _stream_call(self, function: str, topic: str, stream_id: str, *extra: Any) -> Awaitable[StreamInfo]:
        keys = self.keys.stream_function(topic, stream_id)
        args = [topic, stream_id, repr(time.time()), *extra]
        return self.pipeline.submit(function, keys, args, stream_info_of)

    def put_properties(
        self, topic: str, stream_id: str, properties: StreamProperties, *, reopen: bool = True
    ) -> Awaitable[StreamInfo]:
        encoded = dumps(properties.to_json())
        return self._stream_call("put_properties", topic, stream_id, encoded, "1" if reopen else "0")

    def close_stream(self, topic: str, stream_id: str) -> Awaitable[StreamInfo]:
        return self._stream_call("close_stream", topic, stream_id)

    def set_definitions(
        self, topic: str, stream_id: str, kind: DefinitionKind, definitions: list[dict[str, Any]]
    ) -> Awaitable[StreamInfo]:
        field = {DefinitionKind.EVENTS: "edefs", DefinitionKind.PARAMETERS: "pdefs"}.get(kind)
        if field is None:
            future: asyncio.Future[StreamInfo] = asyncio.get_running_loop().create_future()
            future.set_exception(ValueError(f"unknown definition kind {kind!r}"))
            return future
        return self._stream_call("set_definitions", topic, stream_id, field, dumps(definitions))

    def append_quarantine(self, topic: str, rows: list[QuarantinedRow]) -> Awaitable[int]:
        encoded = [dumps([r.stream_id, r.line, r.reason, r.raw, r.received_at]) for r in rows]
        return self.pipeline.submit("quarantine", [self.keys.quarantine(topic)], encoded, int)

    # --- reads ------------------------------------------------------------------------------------

    async def _ids(self, index: str) -> list[str]:
        """The members of a sorted set (topics, or a topic's stream ids) in their order."""
        return [text(member) for member in await self.connection.call(lambda c: c.zrange(index, 0, -1))]

    async def list_topics(self) -> list[TopicSummary]:
        topics = await self._ids(self.keys.topics)
        if not topics:
            return []

        async def counts(client: aioredis.Redis) -> list[int]:
            pipe = client.pipeline(transaction=False)
            for topic in topics:
                pipe.zcard(self.keys.topic(topic))
            return await pipe.execute()

        found = await self.connection.call(counts)
        return sorted((TopicSummary(t, n) for t, n in zip(topics, found) if n), key=lambda s: s.topic)

    async def list_streams(self, topic: str) -> list[StreamInfo]:
        ids = await self._ids(self.keys.topic(topic))
        if not ids:
            return []

        async def hashes(client: aioredis.Redis) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            for stream_id in ids:
                pipe.hgetall(self.keys.stream(topic, stream_id))
            return await pipe.execute()

        return [info for info in map(stream_info_of, await self.connection.call(hashes)) if info is not None]

    async def get_stream(self, topic: str, stream_id: str) -> StreamInfo | None:
        return stream_info_of(await self.connection.call(lambda c: c.hgetall(self.keys.stream(topic, stream_id))))

    async def _scan(self, key: str, window: ReadWindow) -> tuple[list[Entry], str | None, str | None]:
        """Up to `window.limit` entries after the cursor whose `t` is in the window, the next cursor
        (set only when one more matching entry exists) and the last entry's id."""
        limit = window.limit
        start = range_start(window.after)
        filtered = window.filtered
        admits = window.admits
        chunk = min(max(limit + 1, 512), 10_000) if filtered else limit + 1
        found: list[Entry] = []
        while True:
            entries = await self.connection.call(lambda c: c.xrange(key, min=start, max="+", count=chunk))
            for entry_id, fields in entries:
                if filtered:
                    if not admits(int(fields[b"t"])):
                        continue
                if len(found) == limit:
                    last = text(found[-1][0])
                    return found, last, last
                found.append((entry_id, fields))
            if len(entries) < chunk:
                return found, None, text(found[-1][0]) if found else None
            start = "(" + text(entries[-1][0])

    async def read_events(self, topic: str, stream_id: str, window: ReadWindow = ReadWindow()) -> Page[Event]:
        entries, cursor, last = await self._scan(self.keys.data(DataKind.EVENTS, topic, stream_id), window)
        return Page([event_of(fields) for _, fields in entries], cursor, last)

    async def read_parameter_data(
        self, topic: str, stream_id: str, window: ReadWindow = ReadWindow()
    ) -> Page[ParameterData]:
        entries, cursor, last = await self._scan(self.keys.data(DataKind.PARAMETERS, topic, stream_id), window)
        return Page([parameter_data_of(entries)], cursor, last)

    async def read_quarantine(
        self, topic: str, window: ReadWindow = ReadWindow(), newest_first: bool = False
    ) -> Page[QuarantinedRow]:
        if newest_first:
            entries, cursor, last = await self._scan_newest_first(self.keys.quarantine(topic), window)
        else:
            entries, cursor, last = await self._scan(self.keys.quarantine(topic), window.positions_only())
        return Page([QuarantinedRow(*loads(fields[b"d"])) for _, fields in entries], cursor, last)

    async def _scan_newest_first(self, key: str, window: ReadWindow) -> tuple[list[Entry], str | None, str | None]:
        """Up to `window.limit` entries before the cursor, newest first (no timestamp bounds)."""
        limit = window.limit
        end = "+" if window.after is None else range_start(window.after)  # "(id": exclusive
        entries = await self.connection.call(lambda c: c.xrevrange(key, max=end, min="-", count=limit + 1))
        found = entries[:limit]
        last = text(found[-1][0]) if found else None
        return found, last if len(entries) > limit else None, last

    # --- idempotency ------------------------------------------------------------------------------

    def claim_idempotency(
        self, scope: str, key: str, fingerprint: str, lease: float, attempt: str = ""
    ) -> Awaitable[IdempotencyRecord | None]:
        pending = record_value(fingerprint, None, attempt.encode())
        lease_ms = max(1, int(lease * 1000))
        return self.pipeline.submit(
            "claim", [self.keys.idempotency(scope, key)], [pending, str(lease_ms)],
            lambda reply: None if reply is None else record_of(reply),
        )

    def finish_idempotency(
        self, scope: str, key: str, fingerprint: str, status: int, body: bytes, ttl: float
    ) -> Awaitable[None]:
        value = record_value(fingerprint, status, body)
        return self.pipeline.submit(
            "finish", [self.keys.idempotency(scope, key)], [value, str(max(1, int(ttl * 1000)))], lambda _: None
        )

    def release_idempotency(self, scope: str, key: str, fingerprint: str, attempt: str = "") -> Awaitable[None]:
        pending = record_value(fingerprint, None, attempt.encode())
        return self.pipeline.submit("release", [self.keys.idempotency(scope, key)], [pending], lambda _: None)

    # --- retention --------------------------------------------------------------------------------

    async def trim(self, now: float | None = None) -> None:
        """Exact trims of every data stream (writes trim approximately, `~`, as they go).
        Idempotency records expire on their own."""
        retention = self.retention
        if not retention.enabled:
            return
        at = time.time() if now is None else now
        for topic in await self._ids(self.keys.topics):
            ids = await self._ids(self.keys.topic(topic))

            async def trim_topic(client: aioredis.Redis) -> None:
                pipe = client.pipeline(transaction=False)
                for stream_id in ids:
                    for kind in DataKind:
                        key = self.keys.data(kind, topic, stream_id)
                        if retention.max_count is not None:
                            pipe.xtrim(key, maxlen=retention.max_count, approximate=False)
                        if retention.max_age is not None:
                            pipe.xtrim(key, minid=str(max(0, int((at - retention.max_age) * 1000))), approximate=False)
                await pipe.execute()

            await self.connection.call(trim_topic)

    # --- live changes -----------------------------------------------------------------------------

    async def subscribe(
        self, topic: str | None = None, stream_id: str | None = None, *, max_pending: int = DEFAULT_MAX_PENDING
    ) -> ChangeSubscription:
        await self.follower.follow()
        return self.changes.subscribe(topic, stream_id, max_pending)
