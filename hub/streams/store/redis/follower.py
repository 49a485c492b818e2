"""Live changes across processes: each process follows the Redis change log (`hub/changes`, written
by every write's function) and publishes what its own subscribers want to its in-process ChangeBroadcast.
So a write made through any process reaches subscribers on every process, in write order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio as aioredis

from ..broadcast import Change, ChangeBroadcast, ChangeKind
from ..encoding import loads
from .codec import Entry, event_of, parameter_data_of, stream_info_of, text
from .connection import RedisConnection
from .keys import STREAM_CHANGED, DataKind, Keys

log = logging.getLogger("hub.store")


class ChangeFollower:
    """One task (started by the first subscription) XREADs the change log on the connection's
    `feed_client` and, for the changes a local subscriber wants, fetches the new entries (a stream
    change carries the stream's hash as it was), then publishes them to `changes` in log order."""

    def __init__(self, connection: RedisConnection, keys: Keys, changes: ChangeBroadcast) -> None:
        self.connection = connection
        self.keys = keys
        self.changes = changes
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def follow(self) -> None:
        """Follow the log from where it ends now, unless already following: every change after
        this reaches a subscriber made after this returns."""
        async with self._lock:
            if self._task is None or self._task.done():
                last = await self.connection.call(lambda c: c.xrevrange(self.keys.changes, count=1))
                position = text(last[0][0]) if last else "0-0"
                self._task = asyncio.create_task(self._follow(position))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _follow(self, position: str) -> None:
        assert self.connection.feed_client is not None
        client = self.connection.feed_client
        log_key = self.keys.changes
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
            position = text(entries[-1][0])
            try:
                await self._deliver(client, entries)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001
                log.warning("change feed: could not fetch changes: %s", error)

    async def _deliver(self, client: aioredis.Redis, entries: list[Entry]) -> None:
        """Fetch what local subscribers want of these change-log entries, publish in log order."""
        changes = self.changes
        wanted: list[tuple[str, str, str, Any]] = []
        pipe = client.pipeline(transaction=False)
        for _, fields in entries:
            kind, topic, stream_id = text(fields[b"k"]), text(fields[b"t"]), text(fields[b"s"])
            if not changes.wants(topic, stream_id):
                continue
            if kind == STREAM_CHANGED:
                wanted.append((kind, topic, stream_id, loads(fields[b"h"])))
            else:
                wanted.append((kind, topic, stream_id, None))
                pipe.xrange(self.keys.data(DataKind(kind), topic, stream_id), min=fields[b"a"], max=fields[b"b"])
        if not wanted:
            return
        fetched = iter(await pipe.execute())
        for kind, topic, stream_id, snapshot in wanted:
            reply = snapshot if kind == STREAM_CHANGED else next(fetched)
            if kind == STREAM_CHANGED:
                info = stream_info_of(reply)
                if info is not None:
                    changes.publish(Change(ChangeKind.STREAM, topic, stream_id, info=info))
            elif reply:
                cursors = [text(entry_id) for entry_id, _ in reply]
                if kind == DataKind.EVENTS:
                    events = [event_of(fields) for _, fields in reply]
                    changes.publish(Change(ChangeKind.EVENTS, topic, stream_id, events=events, cursors=cursors))
                else:
                    data = parameter_data_of(reply)
                    changes.publish(Change(ChangeKind.PARAMETERS, topic, stream_id, parameter_data=data, cursors=cursors))
