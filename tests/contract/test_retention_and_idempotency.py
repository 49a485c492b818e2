"""Retention and idempotency records, run against every backend (see conftest)."""

from __future__ import annotations

import time
from typing import Any, Callable

import pytest

from hub.streams.models import Event, ParameterData, ReadWindow
from hub.streams.store import IdempotencyRecord, Retention, parse_retention

StoreFactory = Callable[..., Any]

T, S = "telemetry", "car-1"
DAY = 86400.0


async def started(factory: StoreFactory, **kwargs):  # type: ignore[no-untyped-def]
    store = factory(**kwargs)
    await store.start()
    return store


# --- retention ------------------------------------------------------------------------------------


async def test_count_retention_keeps_the_newest_per_stream(store_factory: StoreFactory) -> None:
    store = await started(store_factory, retention=Retention(max_count=10))
    try:
        early = None
        for batch in range(6):
            await store.append_events(T, S, [Event(f"e{batch * 5 + i}", 100 - batch * 5 - i) for i in range(5)])
            if batch == 0:
                early = await store.read_events(T, S, ReadWindow(limit=3))  # a cursor from before any trim
        await store.append_parameter_data(T, S, ParameterData(list(range(25)), {"x": [float(i) for i in range(25)]}))
        await store.append_events(T, "small", [Event("keep", 1)])
        await store.trim()  # (stores may also trim as they write)
        kept = await store.read_events(T, S, ReadWindow(limit=100))
        assert [e.id for e in kept.items] == [f"e{i}" for i in range(20, 30)]
        [rows] = (await store.read_parameter_data(T, S, ReadWindow(limit=100))).items
        assert rows.timestamps == list(range(15, 25))
        assert [e.id for e in (await store.read_events(T, "small")).items] == ["keep"]
        assert early is not None and early.next_cursor is not None
        rest = await store.read_events(T, S, ReadWindow(after=early.next_cursor, limit=4))  # the cursor still works
        assert [e.id for e in rest.items] == [f"e{i}" for i in range(20, 24)]
        rest = await store.read_events(T, S, ReadWindow(after=rest.next_cursor, limit=100))
        assert [e.id for e in rest.items] == [f"e{i}" for i in range(24, 30)]
        info = await store.get_stream(T, S)
        assert info is not None and info.events == 30  # counters count what was written
        await store.append_events(T, S, [Event("after-trim", 0)])
        assert (await store.read_events(T, S, ReadWindow(limit=100))).items[-1].id == "after-trim"
    finally:
        await store.close()


async def test_age_retention_drops_what_arrived_too_long_ago(store_factory: StoreFactory) -> None:
    store = await started(store_factory, retention=Retention(max_age=7 * DAY))
    try:
        await store.append_events(T, S, [Event("a", 1), Event("b", 2)])
        await store.append_parameter_data(T, S, ParameterData([1], {"x": [1.0]}))
        await store.trim()  # nothing is old yet
        assert len((await store.read_events(T, S)).items) == 2
        await store.trim(now=time.time() + 8 * DAY)
        assert (await store.read_events(T, S)).items == []
        assert (await store.read_parameter_data(T, S)).items[0].rows == 0
        assert (await store.get_stream(T, S)) is not None  # the stream itself stays
        await store.append_events(T, S, [Event("fresh", 3)])
        assert [e.id for e in (await store.read_events(T, S)).items] == ["fresh"]
    finally:
        await store.close()


@pytest.mark.parametrize(
    "text, age, count",
    [("7d", 7 * DAY, None), ("100000", None, 100000), ("7d,100000", 7 * DAY, 100000), (" 100 , 12h ", 43200, 100),
     ("90s", 90, None), ("2w", 14 * DAY, None), ("", None, None), (None, None, None)],
)
def test_parse_retention(text: str | None, age: float | None, count: int | None) -> None:
    retention = parse_retention(text)
    assert (retention.max_age, retention.max_count) == (age, count)


@pytest.mark.parametrize("text", ["7x", "d", "-5", "0", "7d,8d", "1,2", "7.5d", "0d", "forever"])
def test_bad_retention_says_what_is_wrong(text: str) -> None:
    with pytest.raises(ValueError, match=f"retention {text!r}"):
        parse_retention(text)


# --- idempotency records --------------------------------------------------------------------------


async def test_claim_finish_and_replay(store_factory: StoreFactory) -> None:
    store = await started(store_factory)
    try:
        assert await store.claim_idempotency("scope", "k1", "fp", lease=60) is None
        assert await store.claim_idempotency("scope", "k1", "other", lease=60) == IdempotencyRecord("fp")
        assert await store.claim_idempotency("scope2", "k1", "fp", lease=60) is None  # scopes are apart
        await store.finish_idempotency("scope", "k1", "fp", 200, b'{"ok":\n1}', ttl=DAY)
        assert await store.claim_idempotency("scope", "k1", "fp", lease=60) == IdempotencyRecord("fp", 200, b'{"ok":\n1}')
    finally:
        await store.close()
    reopened = await started(store_factory)  # durable backends keep records across a restart
    try:
        found = await reopened.claim_idempotency("scope", "k1", "fp", lease=60)
        if type(reopened).__name__ != "MemoryStore":
            assert found == IdempotencyRecord("fp", 200, b'{"ok":\n1}')
    finally:
        await reopened.close()


async def test_release_frees_only_a_pending_claim(store_factory: StoreFactory) -> None:
    store = await started(store_factory)
    try:
        assert await store.claim_idempotency("s", "k", "fp", lease=60) is None
        await store.release_idempotency("s", "k", "fp")
        assert await store.claim_idempotency("s", "k", "fp2", lease=60) is None  # free again
        await store.finish_idempotency("s", "k", "fp2", 201, b"done", ttl=DAY)
        await store.release_idempotency("s", "k", "fp2")  # finished: stays
        assert (await store.claim_idempotency("s", "k", "fp2", lease=60)) == IdempotencyRecord("fp2", 201, b"done")
    finally:
        await store.close()


async def test_records_expire(store_factory: StoreFactory, async_wait_for) -> None:  # type: ignore[no-untyped-def]
    store = await started(store_factory)
    try:
        assert await store.claim_idempotency("s", "lease", "fp", lease=0.2) is None
        await store.finish_idempotency("s", "done", "fp", 200, b"x", ttl=0.2)
        # a claim that finds no live record takes it: so this waits until the lease ran out
        await async_wait_for(lambda: _claims(store, "lease"), timeout=5, message="the lease expires")
        await async_wait_for(lambda: _claims(store, "done"), timeout=5, message="the record expires")
        await store.trim()  # and expired records are cleaned up without error
    finally:
        await store.close()


async def _claims(store, key: str) -> bool:  # type: ignore[no-untyped-def]
    return await store.claim_idempotency("s", key, "fp", lease=60) is None


async def test_a_late_release_never_drops_another_attempt_s_claim(store) -> None:  # type: ignore[no-untyped-def]
    assert await store.claim_idempotency("s", "k", "fp", 60.0, "attempt-1") is None
    await store.release_idempotency("s", "k", "fp", "attempt-1")
    assert await store.claim_idempotency("s", "k", "fp", 60.0, "attempt-2") is None  # the retry
    await store.release_idempotency("s", "k", "fp", "attempt-1")  # the first attempt's, arriving late
    found = await store.claim_idempotency("s", "k", "fp", 60.0, "attempt-3")
    assert found is not None and found.status is None  # attempt 2 still holds the key
    await store.release_idempotency("s", "k", "fp", "attempt-2")
    assert await store.claim_idempotency("s", "k", "fp", 60.0, "attempt-3") is None
