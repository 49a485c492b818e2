"""The service's streamed writes and reads over a real store: event items stored as they arrive,
bad items named, the stored-then-live hand-over (nothing twice, nothing lost) and the bound on a
slow live reader."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

import pytest

from hub.streams.event_follower import FellBehind, follow_events
from hub.streams.models import Event, ReadWindow
from hub.streams.service import StreamService
from hub.streams.store.memory import MemoryStore
from hub.streams.store.sqlite import SqliteStore
from hub.streams.errors import ValidationError


def ev(i: int, ts: int | None = None) -> dict[str, Any]:
    return {"id": f"e{i}", "timestamp": i if ts is None else ts, "value": str(i)}


async def items(*values: Any) -> AsyncIterator[Any]:
    for value in values:
        yield value


@pytest.fixture(params=["memory", "sqlite"])
async def service(request, tmp_path):
    if request.param == "memory":
        store = MemoryStore()
    else:
        store = SqliteStore(str(tmp_path / "hub.db"))
    await store.start()
    yield StreamService(store)
    await store.close()


async def stored_ids(service: StreamService, topic: str = "t", stream_id: str = "s") -> list[str]:
    page = await service.read_events(topic, stream_id, ReadWindow(limit=10_000))
    return [e.id for e in page.items]


async def test_event_items_one_or_many_each_stored(service) -> None:
    count = await service.send_event_stream("t", "s", items(ev(0), [ev(1), ev(2)], [], ev(3)))
    assert count == 4
    assert await stored_ids(service) == ["e0", "e1", "e2", "e3"]


async def test_a_bad_item_is_named_and_the_ones_before_stay(service) -> None:
    with pytest.raises(ValidationError) as error:
        await service.send_event_stream("t", "s", items(ev(0), [ev(1), {"id": "x"}], ev(3)))
    assert str(error.value) == "items[1][1].timestamp: expected an integer of nanoseconds"
    assert await stored_ids(service) == ["e0"]
    with pytest.raises(ValidationError, match=r"^items\[0\]: expected an event or an array of events$"):
        await service.send_event_stream("t", "s", items("nope"))
    with pytest.raises(ValidationError, match="^streamId: "):
        await service.send_event_stream("t", "", items(ev(0)))


async def test_parameter_items(service) -> None:
    rows = await service.send_parameter_stream(
        "t", "s", items({"timestamps": [1, 2], "numericValues": {"a": [1, 2]}}, [{"timestamps": [3]}])
    )
    assert rows == 3
    with pytest.raises(ValidationError, match=r"^items\[0\]\[0\]\.timestamps: required"):
        await service.send_parameter_stream("t", "s", items([{}]))


async def test_many_items_keep_their_order(service) -> None:
    count = await service.send_event_stream("t", "s", items(*[ev(i) for i in range(300)]))
    assert count == 300
    assert await stored_ids(service) == [f"e{i}" for i in range(300)]


async def collect(stream: AsyncIterator[Event], n: int, timeout: float = 5.0) -> list[str]:
    out: list[str] = []
    async with asyncio.timeout(timeout):
        async for event in stream:
            out.append(event.id)
            if len(out) == n:
                break
    return out


async def test_event_stream_without_follow_ends_after_the_stored_ones(service) -> None:
    await service.send_events("t", "s", [ev(i) for i in range(5)])
    got = [e.id async for e in service.event_stream("t", "s", 2, False)]
    assert got == ["e2", "e3", "e4"]
    assert [e.id async for e in service.event_stream("t", "nothing-here", None, False)] == []


async def test_stored_then_live_with_writes_racing_the_hand_over(service) -> None:
    """A writer keeps writing while the reader starts: every event arrives once, in order."""
    await service.send_events("t", "s", [ev(i) for i in range(2500)])  # more than one stored page
    total = 4000

    async def writer() -> None:
        for i in range(2500, total, 10):
            await service.send_events("t", "s", [ev(j) for j in range(i, i + 10)])
            await asyncio.sleep(0)

    writing = asyncio.ensure_future(writer())
    stream = service.event_stream("t", "s", None, True)
    got = await collect(stream, total)
    await writing
    await stream.aclose()
    assert got == [f"e{i}" for i in range(total)]


async def test_live_events_respect_from_timestamp(service) -> None:
    stream = service.event_stream("t", "s", 100, True)
    first = asyncio.ensure_future(collect(stream, 2))
    await asyncio.sleep(0.01)
    await service.send_events("t", "s", [ev(1, 50), ev(2, 150)])
    await service.send_events("t", "s", [ev(3, 99), ev(4, 100)])
    assert await first == ["e2", "e4"]
    await stream.aclose()


async def test_event_stream_argument_errors(service) -> None:
    with pytest.raises(ValidationError, match="^fromTimestamp: expected an integer of nanoseconds$"):
        await anext(service.event_stream("t", "s", "yesterday", False))
    with pytest.raises(ValidationError, match="^follow: expected true or false$"):
        await anext(service.event_stream("t", "s", None, "yes"))
    # A whole float (how JavaScript's msgpack encoder sends big integers) is a timestamp.
    assert [e.id async for e in service.event_stream("t", "s", 1.618133869e18, False)] == []


async def test_a_slow_live_reader_falls_behind_and_writers_never_wait() -> None:
    store = MemoryStore()
    await store.start()
    service = StreamService(store)
    live = await follow_events(store, "t", "s", max_waiting=100)
    async with live:
        for i in range(0, 150, 10):  # nobody reads: 150 events > 100 waiting
            await service.send_events("t", "s", [ev(j) for j in range(i, i + 10)])
        await asyncio.sleep(0.01)  # let the pump take what was published
        with pytest.raises(FellBehind, match=r"^t/s: the reader fell behind: more than 100 events"):
            async for _ in live:
                pass
    await store.close()


async def test_closing_a_follower_unsubscribes() -> None:
    store = MemoryStore()
    await store.start()
    service = StreamService(store)
    stream = service.event_stream("t", "s", None, True)
    reading = asyncio.ensure_future(collect(stream, 1))
    await asyncio.sleep(0.01)
    assert store.changes.count == 1
    await service.send_events("t", "s", [ev(0)])
    assert await reading == ["e0"]
    await stream.aclose()
    await asyncio.sleep(0)
    assert store.changes.count == 0
    await store.close()
