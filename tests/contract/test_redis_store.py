"""What the redis backend promises beyond the shared contract: several processes' worth of stores on
one Redis see the same data and the same live changes, and an outage fails writes instead of
acknowledging them, then heals."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from hub.streams.models import Event, ReadWindow, StreamProperties
from hub.streams.store import StoreUnavailable
from hub.streams.store.redis import RedisStore, Write, encode_writes

T, S = "telemetry", "car-1"


@pytest.fixture
async def two_stores(redis_server):  # type: ignore[no-untyped-def]
    redis_server.flush()
    a, b = RedisStore(redis_server.url), RedisStore(redis_server.url)
    await a.start()
    await b.start()
    yield a, b
    await a.close()
    await b.close()


async def test_two_stores_share_data_and_changes(two_stores) -> None:  # type: ignore[no-untyped-def]
    a, b = two_stores
    sub = await b.subscribe(T)
    try:
        await a.put_properties(T, S, StreamProperties(name="lap"))
        writes = [a.append_events(T, S, [Event(f"a{i}", i)]) if i % 2 else b.append_events(T, S, [Event(f"b{i}", i)])
                  for i in range(20)]
        await asyncio.gather(*writes)
        info = await b.get_stream(T, S)
        assert info is not None and info.events == 20 and info.properties.name == "lap"
        assert [s.stream_id for s in await a.list_streams(T)] == [S]
        stored = [e.id for e in (await a.read_events(T, S, ReadWindow(limit=100))).items]
        assert sorted(stored) == sorted([f"a{i}" for i in range(1, 20, 2)] + [f"b{i}" for i in range(0, 20, 2)])
        first = await sub.get(5)
        assert first.kind == "stream" and first.info is not None and first.info.properties.name == "lap"
        fed: list[str] = []
        while len(fed) < 20:
            fed += [e.id for e in (await sub.get(5)).events]
        assert fed == stored  # B's feed delivers A's and B's writes in the order Redis applied them
    finally:
        sub.close()


async def test_an_outage_fails_writes_then_heals(own_redis) -> None:  # type: ignore[no-untyped-def]
    store = RedisStore(own_redis.url)
    await store.start()
    try:
        assert await store.ready()
        assert await store.append_events(T, S, [Event("before", 1)]) == 1
        own_redis.stop()
        with pytest.raises(StoreUnavailable, match="unreachable"):
            await store.append_events(T, S, [Event("during", 2)])
        assert not await store.ready()
        with pytest.raises(StoreUnavailable):  # failing fast now, not waiting on a socket
            await asyncio.wait_for(store.append_events(T, S, [Event("during", 3)]), 1)
        with pytest.raises(StoreUnavailable):
            await store.read_events(T, S)
        own_redis.start()

        async def healed() -> bool:
            return await store.ready()

        deadline = asyncio.get_running_loop().time() + 10
        while not await healed():
            assert asyncio.get_running_loop().time() < deadline, "the store did not reconnect"
            await asyncio.sleep(0.05)
        assert await store.append_events(T, S, [Event("after", 4)]) == 1
        ids = [e.id for e in (await store.read_events(T, S)).items]
        assert ids == ["before", "after"]  # the AOF kept the acknowledged write; none of the failed ones
    finally:
        await store.close()


async def test_a_write_answered_failed_while_redis_is_paused_is_never_applied(own_redis) -> None:  # type: ignore[no-untyped-def]
    store = RedisStore(own_redis.url, timeout=0.5)
    await store.start()
    assert own_redis.proc is not None
    try:
        assert await store.append_events(T, S, [Event("before", 1)]) == 1
        os.kill(own_redis.proc.pid, signal.SIGSTOP)  # Redis takes the writes into its socket, applies nothing
        # Resumed after their deadline: Redis then reads the queued writes, all too late. (The hub
        # answers them once Redis can tell it which it applied: none.)
        resume = asyncio.get_running_loop().call_later(1.5, os.kill, own_redis.proc.pid, signal.SIGCONT)
        try:
            started = time.monotonic()
            writes = [
                store.append_events(T, S, [Event("paused", 2)]),
                store.put_properties(T, S, StreamProperties(name="paused")),
                store.close_stream(T, "other"),
                store.claim_idempotency("scope", "key", "fp", 60.0, "attempt"),
            ]
            results = await asyncio.gather(*writes, return_exceptions=True)
            assert all(isinstance(r, StoreUnavailable) for r in results), results
            assert time.monotonic() - started >= 0.5  # answered only once the deadline had passed
        finally:
            resume.cancel()
            os.kill(own_redis.proc.pid, signal.SIGCONT)
        deadline = asyncio.get_running_loop().time() + 10
        while not await store.ready():
            assert asyncio.get_running_loop().time() < deadline, "the store did not reconnect"
            await asyncio.sleep(0.05)
        assert await store.append_events(T, S, [Event("after", 3)]) == 1
        assert [e.id for e in (await store.read_events(T, S)).items] == ["before", "after"]
        info = await store.get_stream(T, S)
        assert info is not None and info.events == 2 and info.properties.name is None
        assert await store.get_stream(T, "other") is None
        assert await store.claim_idempotency("scope", "key", "fp", 60.0) is None  # the paused claim never landed
    finally:
        await store.close()


async def test_starting_while_redis_is_down(own_redis) -> None:  # type: ignore[no-untyped-def]
    own_redis.stop()
    store = RedisStore(own_redis.url)
    await store.start()  # does not fail: it reconnects in the background
    try:
        assert not await store.ready()
        with pytest.raises(StoreUnavailable):
            await store.append_events(T, S, [])
        own_redis.start()
        deadline = asyncio.get_running_loop().time() + 10
        while not await store.ready():
            assert asyncio.get_running_loop().time() < deadline, "the store did not connect"
            await asyncio.sleep(0.05)
        assert await store.append_events(T, S, [Event("x", 1)]) == 1
    finally:
        await store.close()


async def test_lost_functions_are_loaded_again(redis_server) -> None:  # type: ignore[no-untyped-def]
    redis_server.flush()
    store = RedisStore(redis_server.url)
    await store.start()
    try:
        assert redis_server.command("FUNCTION", "FLUSH").startswith(b"+OK")
        with pytest.raises(StoreUnavailable, match="(?i)function"):
            await store.append_events(T, S, [Event("lost", 1)])  # not applied: the function was missing
        assert await store.append_events(T, S, [Event("ok", 2)]) == 1
        assert [e.id for e in (await store.read_events(T, S)).items] == ["ok"]
    finally:
        await store.close()


async def test_writes_are_pipelined_in_call_order(redis_server) -> None:  # type: ignore[no-untyped-def]
    redis_server.flush()
    store = RedisStore(redis_server.url)
    await store.start()
    try:
        pending = [store.append_events(T, S, [Event(f"e{i}", -i)]) for i in range(2000)]
        assert sum(await asyncio.gather(*pending)) == 2000
        assert [e.id for e in (await store.read_events(T, S, ReadWindow(limit=5000))).items] == [f"e{i}" for i in range(2000)]
    finally:
        await store.close()


async def test_writes_whose_replies_were_lost_are_answered_from_their_pipelines_outcome(own_redis) -> None:  # type: ignore[no-untyped-def]
    """Redis froze after applying part of a pipeline (its first `hub_batch` call) and before its
    replies left: the hub then reads the pipeline's outcome hash, written by each call in the same
    atomic call. The writes applied get their true reply; the others, refused past their deadline,
    are answered failed."""
    store = RedisStore(own_redis.url, timeout=0.3)
    await store.start()
    try:
        loop = asyncio.get_running_loop()
        captured: list[tuple] = []
        submit = store.pipeline.submit
        store.pipeline.submit = lambda function, keys, args, convert=lambda r: r: (  # type: ignore[method-assign]
            captured.append((function, keys, args, convert)) or loop.create_future())
        store.append_events(T, S, [Event("applied", 1)])
        store.put_properties(T, S, StreamProperties(name="lap"))
        store.append_events(T, S, [Event("lost", 2)])
        store.pipeline.submit = submit  # type: ignore[method-assign]
        outcome = "hub/w/test/0"
        client = store.connection.client
        assert client is not None
        writes = [Write(function, keys, args, convert, loop.create_future()) for function, keys, args, convert in captured]
        calls = [writes[:2], writes[2:]]  # Redis applied the first call, then froze
        far = int((time.time() + 60) * 1000)
        await client.fcall("hub_batch", 1, outcome, 0, far, 60_000, encode_writes(calls[0]))
        await store.pipeline.settle_from_outcome(calls, outcome, time.monotonic() - 1)
        assert writes[0].future.result() == 1
        info = writes[1].future.result()
        assert info.properties.name == "lap" and info.events == 1
        with pytest.raises(StoreUnavailable, match="never will be"):
            writes[2].future.result()
        assert [e.id for e in (await store.read_events(T, S)).items] == ["applied"]
        assert not await client.exists(outcome)  # read once, then gone
    finally:
        await store.close()
