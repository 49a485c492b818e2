"""The promises of hub.streams.store.base.StreamStore, run against every backend (see conftest)."""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.streams.models import Event, ParameterData, QuarantinedRow, ReadWindow, StreamProperties
from hub.streams.store import StreamStore

T = "telemetry"
S = "car-1"


def events(*timestamps: int, prefix: str = "e") -> list[Event]:
    return [Event(f"{prefix}{i}", ts, f"v{i}", {"i": str(i)}) for i, ts in enumerate(timestamps)]


async def all_events(store: StreamStore, topic: str = T, stream_id: str = S, **filters: int) -> list[Event]:
    page = await store.read_events(topic, stream_id, ReadWindow(limit=100_000, **filters))
    assert page.next_cursor is None
    return page.items


# --- ordering -------------------------------------------------------------------------------------


async def test_pipelined_writes_are_stored_in_call_order(store: StreamStore) -> None:
    first = store.append_events(T, S, events(5, 6, prefix="a"))
    second = store.append_events(T, S, events(1, 2, prefix="b"))
    assert await second == 2  # awaited out of order on purpose
    assert await first == 2
    assert [e.id for e in await all_events(store)] == ["a0", "a1", "b0", "b1"]


async def test_many_pipelined_writes_awaited_in_reverse(store: StreamStore) -> None:
    pending = [store.append_events(T, S, [Event(f"e{i}", 1000 - i)]) for i in range(200)]
    for awaitable in reversed(pending):
        assert await awaitable == 1
    assert [e.id for e in await all_events(store)] == [f"e{i}" for i in range(200)]


async def test_lifecycle_writes_apply_in_call_order(store: StreamStore) -> None:
    written = store.append_events(T, S, events(1))
    closed = store.close_stream(T, S)
    renamed = store.put_properties(T, S, StreamProperties(name="lap"), reopen=False)
    info = await renamed
    await asyncio.gather(written, closed)
    assert info.status == "closed" and info.properties.name == "lap" and info.events == 1


async def test_returned_values(store: StreamStore) -> None:
    assert await store.append_events(T, S, events(1, 2, 3)) == 3
    assert await store.append_parameter_data(T, S, ParameterData([1, 2], {"speed": [1.0, 2.0]})) == 2
    info = await store.put_properties(T, S, StreamProperties(name="n"))
    assert (info.topic, info.stream_id, info.events, info.parameter_rows) == (T, S, 3, 2)


# --- round trip and range reads -------------------------------------------------------------------


async def test_events_round_trip(store: StreamStore) -> None:
    written = [
        Event("plain", 1),
        Event("tagged", -5, "héllo ✓", {"capacity": "3", "ünïcode": "ok"}),
        Event("big", 2**63 - 1, ""),
        Event("small", -(2**63), None, {}),
    ]
    await store.append_events(T, S, written)
    assert await all_events(store) == written


async def test_range_reads_filter_on_timestamp_in_arrival_order(store: StreamStore) -> None:
    await store.append_events(T, S, events(50, 10, 30, 20, 40, 20))
    got = await all_events(store, from_ts=20, to_ts=40)
    assert [e.timestamp for e in got] == [30, 20, 20]
    assert [e.id for e in got] == ["e2", "e3", "e5"]


async def test_from_is_inclusive_and_to_exclusive(store: StreamStore) -> None:
    await store.append_events(T, S, events(9, 10, 11, 19, 20, 21))
    assert [e.timestamp for e in await all_events(store, from_ts=10, to_ts=20)] == [10, 11, 19]
    assert [e.timestamp for e in await all_events(store, from_ts=10)] == [10, 11, 19, 20, 21]
    assert [e.timestamp for e in await all_events(store, to_ts=10)] == [9]
    assert await all_events(store, from_ts=20, to_ts=20) == []


async def test_unknown_stream_reads_empty(store: StreamStore) -> None:
    page = await store.read_events(T, "nope")
    assert page.items == [] and page.next_cursor is None
    data = await store.read_parameter_data(T, "nope")
    assert len(data.items) == 1 and data.items[0].rows == 0 and data.next_cursor is None
    assert await store.get_stream(T, "nope") is None


# --- paging ---------------------------------------------------------------------------------------


async def test_walk_2500_events_with_limit_1000(store: StreamStore) -> None:
    timestamps = list(range(2500))
    random.Random(7).shuffle(timestamps)  # cursors follow arrival, not timestamps
    for start in range(0, 2500, 250):
        await store.append_events(T, S, [Event(f"e{i}", timestamps[i]) for i in range(start, start + 250)])
    await store.append_events(T, "other", events(1, 2, 3))  # interleaved stream must not leak in

    seen: list[str] = []
    sizes: list[int] = []
    cursor: str | None = None
    while True:
        page = await store.read_events(T, S, ReadWindow(limit=1000, after=cursor))
        seen += [e.id for e in page.items]
        sizes.append(len(page.items))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sizes == [1000, 1000, 500]
    assert seen == [f"e{i}" for i in range(2500)]


async def test_last_page_has_no_cursor_even_on_an_exact_multiple(store: StreamStore) -> None:
    await store.append_events(T, S, events(*range(20)))
    first = await store.read_events(T, S, ReadWindow(limit=10))
    assert first.next_cursor is not None
    second = await store.read_events(T, S, ReadWindow(limit=10, after=first.next_cursor))
    assert [e.timestamp for e in second.items] == list(range(10, 20))
    assert second.next_cursor is None


async def test_a_cursor_stays_valid_while_the_stream_grows(store: StreamStore) -> None:
    await store.append_events(T, S, events(1, 2, 3))
    page = await store.read_events(T, S, ReadWindow(limit=2))
    await store.append_events(T, S, events(4, prefix="late"))
    rest = await store.read_events(T, S, ReadWindow(limit=2, after=page.next_cursor))
    assert [e.id for e in rest.items] == ["e2", "late0"] and rest.next_cursor is None


@pytest.mark.parametrize("cursor", ["nope", "-1", "1.5", "", " 1", "1" * 40, "١"])
async def test_bad_cursor_raises_value_error(store: StreamStore, cursor: str) -> None:
    await store.append_events(T, S, events(1))
    with pytest.raises(ValueError):
        await store.read_events(T, S, ReadWindow(after=cursor))
    with pytest.raises(ValueError):
        await store.read_parameter_data(T, S, ReadWindow(after=cursor))


@pytest.mark.parametrize("limit", [0, -1])
async def test_bad_limit_raises_value_error(store: StreamStore, limit: int) -> None:
    with pytest.raises(ValueError):
        await store.read_events(T, S, ReadWindow(limit=limit))


_fresh = itertools.count()  # not random: hypothesis reseeds it for every example


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    timestamps=st.lists(st.integers(-50, 50), max_size=40),
    from_ts=st.none() | st.integers(-60, 60),
    to_ts=st.none() | st.integers(-60, 60),
    limit=st.integers(1, 7),
)
async def test_paging_matches_a_filtered_list(
    store: StreamStore, timestamps: list[int], from_ts: int | None, to_ts: int | None, limit: int
) -> None:
    stream_id = f"s{next(_fresh)}"  # a fresh stream per example: the store is shared by them all
    await store.append_events(T, stream_id, events(*timestamps))
    expected = [
        f"e{i}"
        for i, ts in enumerate(timestamps)
        if (from_ts is None or ts >= from_ts) and (to_ts is None or ts < to_ts)
    ]
    got: list[str] = []
    cursor: str | None = None
    while True:
        page = await store.read_events(T, stream_id, ReadWindow(from_ts=from_ts, to_ts=to_ts, limit=limit, after=cursor))
        assert len(page.items) <= limit
        got += [e.id for e in page.items]
        if page.next_cursor is None:
            break
        assert len(page.items) == limit
        cursor = page.next_cursor
    assert got == expected


# --- parameter data -------------------------------------------------------------------------------


async def test_parameter_data_reads_back_the_union_of_names(store: StreamStore) -> None:
    await store.append_parameter_data(
        T, S, ParameterData([10, 20], {"speed": [1.5, None]}, binary_values={"blob": ["AAE=", None]})
    )
    await store.append_parameter_data(
        T, S, ParameterData([5], {"rpm": [3000.0]}, {"gear": ["3"]}, tag_values={"driver": ["ana"]})
    )
    page = await store.read_parameter_data(T, S)
    assert page.next_cursor is None
    [data] = page.items
    assert data.timestamps == [10, 20, 5]
    assert data.numeric_values == {"speed": [1.5, None, None], "rpm": [None, None, 3000.0]}
    assert data.string_values == {"gear": [None, None, "3"]}
    assert data.binary_values == {"blob": ["AAE=", None, None]}
    assert data.tag_values == {"driver": [None, None, "ana"]}


async def test_a_single_parameter_batch_reads_back_as_written(store: StreamStore) -> None:
    written = ParameterData(
        [1, 2, 3],
        {"speed": [1.0, None, 3.25], "none": [None, None, None]},
        {"gear": ["1", "2", None]},
        {},
        {"lap": ["1", "1", "2"]},
    )
    await store.append_parameter_data(T, S, written)
    [data] = (await store.read_parameter_data(T, S)).items
    assert data.to_json() == written.to_json()


async def test_parameter_rows_filter_and_page(store: StreamStore) -> None:
    for batch in range(5):
        timestamps = [batch * 10 + i for i in range(10)]
        await store.append_parameter_data(T, S, ParameterData(timestamps, {"x": [float(t) for t in timestamps]}))
    rows: list[int] = []
    cursor: str | None = None
    while True:
        page = await store.read_parameter_data(T, S, ReadWindow(from_ts=5, to_ts=45, limit=7, after=cursor))
        [data] = page.items
        assert data.numeric_values["x"] == [float(t) for t in data.timestamps]
        rows += data.timestamps
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert rows == list(range(5, 45))


# --- stream lifecycle -----------------------------------------------------------------------------


async def test_properties_create_and_replace(store: StreamStore) -> None:
    full = StreamProperties("lap 1", "/car/lap1", {"driver": "ana"}, ["parent-1"], "2024-05-01T12:00:00Z")
    info = await store.put_properties(T, S, full)
    assert info.properties == full and info.status == "open"
    info = await store.put_properties(T, S, StreamProperties(name="lap 2"))
    assert info.properties == StreamProperties(name="lap 2")  # replaced, not merged
    got = await store.get_stream(T, S)
    assert got is not None and got.properties == StreamProperties(name="lap 2")


async def test_close_and_reopen(store: StreamStore) -> None:
    await store.append_events(T, S, events(1))
    info = await store.close_stream(T, S)
    assert info.status == "closed"
    assert (await store.close_stream(T, S)).status == "closed"  # idempotent
    await store.append_events(T, S, events(2))
    assert (await store.get_stream(T, S)).status == "open"  # type: ignore[union-attr]
    await store.close_stream(T, S)
    await store.append_parameter_data(T, S, ParameterData([3], {"x": [1.0]}))
    assert (await store.get_stream(T, S)).status == "open"  # type: ignore[union-attr]


async def test_properties_reopen_unless_told_not_to(store: StreamStore) -> None:
    await store.close_stream(T, S)
    assert (await store.put_properties(T, S, StreamProperties(), reopen=False)).status == "closed"
    assert (await store.put_properties(T, S, StreamProperties())).status == "open"


async def test_closing_an_unknown_stream_creates_it_closed(store: StreamStore) -> None:
    info = await store.close_stream(T, "new")
    assert (info.status, info.events) == ("closed", 0)
    assert [s.stream_id for s in await store.list_streams(T)] == ["new"]


async def test_definitions(store: StreamStore) -> None:
    event_defs = [{"id": "crash", "name": "Crash", "level": "Critical"}]
    parameter_defs = [{"id": "speed", "unit": "km/h", "minimumValue": 0.0, "maximumValue": 400.0}]
    info = await store.set_definitions(T, S, "events", event_defs)
    assert info.event_definitions == event_defs and info.status == "open"
    await store.set_definitions(T, S, "parameters", parameter_defs)
    await store.close_stream(T, S)
    info = await store.set_definitions(T, S, "events", [{"id": "pit"}])  # replaced; not a data write
    assert info.event_definitions == [{"id": "pit"}]
    assert info.parameter_definitions == parameter_defs
    assert info.status == "closed"


async def test_returned_info_is_a_snapshot(store: StreamStore) -> None:
    info = await store.put_properties(T, S, StreamProperties(metadata={"a": "1"}))
    info.properties.metadata["b"] = "2"
    info.status = "closed"
    got = await store.get_stream(T, S)
    assert got is not None and got.properties.metadata == {"a": "1"} and got.status == "open"


# --- listings and counters ------------------------------------------------------------------------


async def test_list_topics_and_streams(store: StreamStore) -> None:
    assert await store.list_topics() == []
    for topic, stream_id in [("zeta", "b"), ("alpha", "x"), ("zeta", "a"), ("zeta", "c")]:
        await store.append_events(topic, stream_id, [])
    assert [t.to_json() for t in await store.list_topics()] == [
        {"topic": "alpha", "streams": 1},
        {"topic": "zeta", "streams": 3},
    ]
    assert [s.stream_id for s in await store.list_streams("zeta")] == ["b", "a", "c"]  # creation order
    assert await store.list_streams("unknown") == []


async def test_stream_ids_are_scoped_by_topic(store: StreamStore) -> None:
    await store.append_events("a", S, events(1))
    await store.append_events("b", S, events(2, 3))
    assert [e.timestamp for e in await all_events(store, "a")] == [1]
    assert (await store.get_stream("b", S)).events == 2  # type: ignore[union-attr]


async def test_counters(store: StreamStore) -> None:
    await store.put_properties(T, S, StreamProperties())
    info = await store.get_stream(T, S)
    assert info is not None
    assert (info.events, info.parameter_rows, info.first_timestamp, info.last_timestamp) == (0, 0, None, None)
    first_activity = info.last_activity
    assert first_activity is not None

    await store.append_events(T, S, events(50, 10, 30))
    await store.append_parameter_data(T, S, ParameterData([5, 60], {"x": [1.0, 2.0]}))
    await store.append_events(T, S, events(20))
    info = await store.get_stream(T, S)
    assert info is not None
    assert (info.events, info.parameter_rows, info.first_timestamp, info.last_timestamp) == (4, 2, 5, 60)
    assert info.last_activity is not None and info.last_activity >= first_activity
    assert info.to_json()["parameterRows"] == 2


async def test_empty_batches(store: StreamStore) -> None:
    assert await store.append_events(T, S, []) == 0
    assert await store.append_parameter_data(T, S, ParameterData([])) == 0
    info = await store.get_stream(T, S)
    assert info is not None  # an empty write still creates the stream
    assert (info.events, info.parameter_rows, info.first_timestamp, info.status) == (0, 0, None, "open")
    assert (await store.read_events(T, S)).items == []


# --- concurrency ----------------------------------------------------------------------------------


async def test_many_tasks_writing_to_several_streams(store: StreamStore) -> None:
    streams = [f"s{i}" for i in range(4)]

    async def writer(task: int) -> None:
        for batch in range(25):
            stream_id = streams[(task + batch) % len(streams)]
            batch_events = [Event(f"t{task}", batch * 10 + i, str(i)) for i in range(10)]
            if batch % 3 == 0:
                await store.append_events(T, stream_id, batch_events)
            else:  # pipelined: not awaited before the next call on purpose
                store.append_events(T, stream_id, batch_events)
            await asyncio.sleep(0)

    await asyncio.gather(*(writer(task) for task in range(12)))
    await store.append_events(T, streams[0], [])  # in call order: resolves after all the above
    total = 0
    for stream_id in streams:
        stored = await all_events(store, stream_id=stream_id)
        total += len(stored)
        assert (await store.get_stream(T, stream_id)).events == len(stored)  # type: ignore[union-attr]
        for task in range(12):  # each task's events keep their call order within a stream
            mine = [e.timestamp for e in stored if e.id == f"t{task}"]
            assert mine == sorted(mine)
    assert total == 12 * 25 * 10


# --- quarantine -----------------------------------------------------------------------------------


def quarantined(*lines: int, stream_id: str = S) -> list[QuarantinedRow]:
    return [QuarantinedRow(stream_id, n, f"line {n}: bad", f'{{"n": {n}, "ü": "✓"}}', 1700000000.5) for n in lines]


async def test_quarantine_round_trip_in_arrival_order_per_topic(store: StreamStore) -> None:
    first = store.append_quarantine(T, quarantined(3, 1))
    second = store.append_quarantine(T, quarantined(2, stream_id="other"))
    assert await second == 1 and await first == 2  # awaited out of order: still call order
    await store.append_quarantine("elsewhere", quarantined(9))
    page = await store.read_quarantine(T)
    assert page.items == quarantined(3, 1) + quarantined(2, stream_id="other") and page.next_cursor is None
    assert (await store.read_quarantine("unknown")).items == []
    assert await store.list_topics() == []  # quarantine alone makes no topic or stream
    assert await store.append_quarantine(T, []) == 0


async def test_quarantine_pages(store: StreamStore) -> None:
    await store.append_quarantine(T, quarantined(*range(1, 8)))
    await store.append_quarantine("elsewhere", quarantined(99))  # another topic must not leak in
    got: list[int] = []
    cursor: str | None = None
    while True:
        page = await store.read_quarantine(T, ReadWindow(limit=3, after=cursor))
        got += [r.line for r in page.items]
        if page.next_cursor is None:
            break
        assert len(page.items) == 3
        cursor = page.next_cursor
    assert got == list(range(1, 8))
    with pytest.raises(ValueError):
        await store.read_quarantine(T, ReadWindow(after="nope"))
    with pytest.raises(ValueError):
        await store.read_quarantine(T, ReadWindow(limit=0))


async def test_quarantine_newest_first_pages_back_through_every_row(store: StreamStore) -> None:
    await store.append_quarantine(T, quarantined(*range(1, 8)))
    await store.append_quarantine("elsewhere", quarantined(99))
    got: list[int] = []
    cursor: str | None = None
    while True:
        page = await store.read_quarantine(T, ReadWindow(limit=3, after=cursor), newest_first=True)
        got += [r.line for r in page.items]
        if page.next_cursor is None:
            break
        assert len(page.items) == 3
        cursor = page.next_cursor
    assert got == list(range(7, 0, -1))
    page = await store.read_quarantine(T, ReadWindow(limit=7), newest_first=True)
    assert [r.line for r in page.items] == list(range(7, 0, -1)) and page.next_cursor is None
    assert (await store.read_quarantine("unknown", newest_first=True)).items == []
    with pytest.raises(ValueError):
        await store.read_quarantine(T, ReadWindow(after="nope"), newest_first=True)
