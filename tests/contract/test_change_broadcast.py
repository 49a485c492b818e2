"""The live change broadcast (StreamStore.subscribe), run against every backend (see conftest)."""

from __future__ import annotations

import asyncio

import pytest

from hub.streams.models import Event, ParameterData, ReadWindow, StreamProperties
from hub.streams.store import Change, StreamStore, SubscriptionOverflow

T, S = "telemetry", "car-1"
WAIT = 5.0


def events(*timestamps: int, prefix: str = "e") -> list[Event]:
    return [Event(f"{prefix}{i}", ts, f"v{i}", {"i": str(i)}) for i, ts in enumerate(timestamps)]


async def take(sub, count: int) -> list[Change]:
    return [await sub.get(WAIT) for _ in range(count)]


async def test_events_arrive_in_write_order_with_their_cursors(store: StreamStore) -> None:
    await store.append_events(T, S, events(1))  # the stream exists before subscribing
    async with await store.subscribe(T, S) as sub:
        first = store.append_events(T, S, events(50, 10, prefix="a"))
        second = store.append_events(T, S, events(30, prefix="b"))
        await second
        await first
        got = await take(sub, 2)
        assert [c.kind for c in got] == ["events", "events"]
        assert [e.id for c in got for e in c.events] == ["a0", "a1", "b0"]
        assert [e.timestamp for c in got for e in c.events] == [50, 10, 30]
        # the cursors are the stream's own positions: reading after one continues behind it
        page = await store.read_events(T, S, ReadWindow(after=got[0].cursors[0]))
        assert [e.id for e in page.items] == ["a1", "b0"]
        assert got[1].cursors[-1] == page.last_cursor


async def test_parameter_data_arrives_as_written(store: StreamStore) -> None:
    await store.put_properties(T, S, StreamProperties())
    async with await store.subscribe(T, S) as sub:
        written = ParameterData([5, 6], {"speed": [1.0, None]}, {"gear": ["1", "2"]})
        await store.append_parameter_data(T, S, written)
        [change] = await take(sub, 1)
        assert change.kind == "parameters" and change.parameter_data is not None
        assert change.parameter_data.to_json() == written.to_json()
        assert len(change.cursors) == 2


async def test_stream_lifecycle_changes(store: StreamStore) -> None:
    async with await store.subscribe(T) as sub:
        await store.append_events(T, S, [])  # creates the stream
        await store.put_properties(T, S, StreamProperties(name="lap"))
        await store.set_definitions(T, S, "events", [{"id": "crash"}])
        await store.close_stream(T, S)
        await store.append_events(T, S, events(7))  # reopens it, then the data
        got = await take(sub, 6)
    assert [c.kind for c in got] == ["stream"] * 5 + ["events"]
    infos = [c.info for c in got[:5]]
    assert all(i is not None and (i.topic, i.stream_id) == (T, S) for i in infos)
    assert [i.status for i in infos] == ["open", "open", "open", "closed", "open"]  # type: ignore[union-attr]
    assert infos[1].properties.name == "lap"  # type: ignore[union-attr]
    assert infos[2].event_definitions == [{"id": "crash"}]  # type: ignore[union-attr]


async def test_subscriptions_match_topic_stream_and_wildcards(store: StreamStore) -> None:
    for topic, stream_id in [(T, S), (T, "car-2"), ("other", S)]:
        await store.append_events(topic, stream_id, [])
    exact = await store.subscribe(T, S)
    whole_topic = await store.subscribe(T)
    everything = await store.subscribe()
    one_stream_any_topic = await store.subscribe(None, S)
    try:
        await store.append_events(T, S, events(1, prefix="x"))
        await store.append_events(T, "car-2", events(2, prefix="y"))
        await store.append_events("other", S, events(3, prefix="z"))

        async def ids(sub, count: int) -> list[str]:
            return [c.events[0].id + "@" + c.topic + "/" + c.stream_id for c in await take(sub, count)]

        assert await ids(exact, 1) == [f"x0@{T}/{S}"]
        assert await ids(whole_topic, 2) == [f"x0@{T}/{S}", f"y0@{T}/car-2"]
        assert await ids(everything, 3) == [f"x0@{T}/{S}", f"y0@{T}/car-2", f"z0@other/{S}"]
        assert await ids(one_stream_any_topic, 2) == [f"x0@{T}/{S}", f"z0@other/{S}"]
        await store.append_events(T, S, events(4, prefix="last"))  # nothing else was queued before it
        assert (await take(exact, 1))[0].events[0].id == "last0"
    finally:
        for sub in (exact, whole_topic, everything, one_stream_any_topic):
            sub.close()


async def test_a_subscriber_that_falls_behind_is_ended_and_writers_go_on(store: StreamStore) -> None:
    await store.append_events(T, S, [])
    slow = await store.subscribe(T, S, max_pending=3)
    keeping_up = await store.subscribe(T, S)
    try:
        for i in range(10):
            assert await store.append_events(T, S, events(i, prefix=f"b{i}-")) == 1
        assert len(await take(keeping_up, 10)) == 10
        with pytest.raises(SubscriptionOverflow, match="behind"):
            for _ in range(10):
                await slow.get(WAIT)
    finally:
        slow.close()
        keeping_up.close()


async def test_closing_a_subscription_ends_its_iteration(store: StreamStore) -> None:
    sub = await store.subscribe(T, S)
    reader = asyncio.ensure_future(sub.get(WAIT))
    await asyncio.sleep(0)
    sub.close()
    with pytest.raises(StopAsyncIteration):
        await reader
    await store.append_events(T, S, events(1))  # publishing to nobody is fine


async def test_stored_then_live_without_gaps_or_duplicates(store: StreamStore) -> None:
    """What a follow reader does: subscribe, read what is stored, then skip live changes it has."""
    await store.append_events(T, S, events(*range(5), prefix="old"))
    sub = await store.subscribe(T, S)
    try:
        store.append_events(T, S, events(5, 6, prefix="mid"))  # lands between subscribe and the read
        page = await store.read_events(T, S, ReadWindow(limit=100))
        seen = [e.id for e in page.items]
        await store.append_events(T, S, events(7, prefix="new"))
        while seen[-1] != "new0":
            change = (await sub.get(WAIT)).after(page.last_cursor)
            seen += [e.id for e in change.events]
        assert seen == [f"old{i}" for i in range(5)] + ["mid0", "mid1", "new0"]
    finally:
        sub.close()


async def test_many_concurrent_writers_feed_in_store_order(store: StreamStore) -> None:
    await store.append_events(T, S, [])
    async with await store.subscribe(T, S) as sub:

        async def writer(task: int) -> None:
            for batch in range(10):
                await store.append_events(T, S, [Event(f"t{task}-{batch}", batch)])

        await asyncio.gather(*(writer(t) for t in range(8)))
        fed = [e.id for c in await take(sub, 80) for e in c.events]
    stored = [e.id for e in (await store.read_events(T, S, ReadWindow(limit=1000))).items]
    assert fed == stored
