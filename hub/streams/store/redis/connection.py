"""The link to one Redis: its clients, whether Redis is reachable, and reconnecting.

When Redis is unreachable the link is *down*: every call fails at once with StoreUnavailable and a
task reconnects with backoff (50 ms doubling to 2 s). Each connect loads the `writerhub` function
library (writerhub.lua, `FUNCTION LOAD REPLACE`) and measures Redis' clock and process id, which
the write pipeline's deadlines and outcomes rest on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from importlib import resources
from typing import Any, Awaitable, Callable

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..base import StoreUnavailable

log = logging.getLogger("hub.store")

# Errors that say Redis is unreachable (or did not answer in time), as opposed to refusing a command.
DOWN_ERRORS = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError, asyncio.TimeoutError)

# Every write is applied by this library (Lua), many writes in one call: each atomic with its
# counters, indexes and change-log entry, so any number of hub processes can write at once.
LIBRARY = resources.files(__package__).joinpath("writerhub.lua").read_text(encoding="utf-8")


class RedisConnection:
    """A client for writes and reads (`client`) and one for the change follower's blocking reads
    (`feed_client`), both never resending a command on their own (a resent write whose reply was
    lost would be stored twice); `down` says why Redis is unreachable (None: reachable)."""

    def __init__(self, url: str, *, connect_timeout: float, socket_timeout: float) -> None:
        self.url = url
        self.where = url.split("@")[-1]  # for messages: never a password
        self.connect_timeout = connect_timeout
        self.socket_timeout = socket_timeout  # of `client`
        self.clock_offset = 0.0  # Redis' clock minus time.monotonic(), at most (see connect)
        self.run_id: str | None = None  # the Redis process connected to (INFO run_id)
        self.client: aioredis.Redis | None = None
        self.feed_client: aioredis.Redis | None = None
        self.accepting = False  # between open() and close(): calls are taken
        self.down: str | None = "not started"
        self._reconnect: asyncio.Task[None] | None = None

    def new_client(self, socket_timeout: float | None) -> aioredis.Redis:
        return aioredis.from_url(
            self.url,
            socket_connect_timeout=self.connect_timeout,
            socket_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0),  # never resend a write on our behalf: it could be stored twice
            health_check_interval=0,
        )

    async def open(self) -> None:
        """Connect, or when Redis is unreachable, go down and keep trying in the background."""
        self.client = self.new_client(self.socket_timeout)
        self.feed_client = self.new_client(None)
        self.accepting = True
        try:
            await self.connect()
        except DOWN_ERRORS + (RedisError,) as error:
            log.warning("redis store %s unreachable at start (%s); reconnecting in the background", self.where, error)
            self.mark_down(error)

    async def connect(self) -> None:
        assert self.client is not None
        await self.client.ping()
        await self.load_library()
        # Redis read its clock between `before` and now: the offset taken against now is never more
        # than the true one, so a deadline built on it passes in Redis no later than in our clock.
        seconds, micros = await self.client.time()
        self.clock_offset = seconds + micros / 1e6 - time.monotonic()
        self.run_id = (await self.client.info("server")).get("run_id")
        self.down = None

    async def load_library(self) -> None:
        assert self.client is not None
        await self.client.function_load(LIBRARY, replace=True)

    def stop_accepting(self) -> None:
        """New calls fail from now on; the clients stay open for what is already queued."""
        self.accepting = False

    async def close(self) -> None:
        self.accepting = False
        if self._reconnect is not None:
            self._reconnect.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reconnect
            self._reconnect = None
        for client in (self.client, self.feed_client):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
        self.client = self.feed_client = None
        self.down = "closed"

    async def ready(self) -> bool:
        if self.down is not None or self.client is None:
            return False
        try:
            await asyncio.wait_for(self.client.ping(), 1.0)
            return True
        except DOWN_ERRORS + (RedisError,) as error:
            self.mark_down(error)
            return False

    def mark_down(self, error: BaseException) -> None:
        if self.down is None or self.down == "not started":
            log.warning("redis store %s is unreachable: %s", self.where, error or type(error).__name__)
        self.down = str(error) or type(error).__name__
        if self.accepting and (self._reconnect is None or self._reconnect.done()):
            self._reconnect = asyncio.create_task(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        delay = 0.05
        while self.accepting:
            await asyncio.sleep(delay)
            try:
                await self.connect()
            except DOWN_ERRORS + (RedisError,) as error:
                self.down = str(error) or type(error).__name__
                delay = min(delay * 2, 2.0)
                continue
            log.warning("redis store %s is reachable again", self.where)
            return

    def unavailable(self) -> StoreUnavailable:
        return StoreUnavailable(f"redis at {self.where} is unreachable ({self.down})")

    async def call(self, make: Callable[[aioredis.Redis], Awaitable[Any]]) -> Any:
        """What `make` asks of `client`; StoreUnavailable at once while down, or when Redis
        turns out unreachable (the link then goes down)."""
        if self.down is not None or self.client is None:
            raise self.unavailable()
        try:
            return await make(self.client)
        except DOWN_ERRORS as error:
            self.mark_down(error)
            raise self.unavailable() from None

    async def process_gone(self) -> bool:
        """After a broken connection: whether the Redis process we wrote to is no more (a connection
        is refused, or another process answers), so no write it had not applied ever will
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
        return run_id is not None and run_id != self.run_id
