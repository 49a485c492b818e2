"""The sqlite writer applies the data writes of one transaction together (a stream's writes share a
block, counters once a stream): what it stores and publishes must be what the same writes made one a
transaction store and publish (but for the cursors, which name blocks: each published cursor must
be the one a read gives that item), and a failing write in a group must still fail alone."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from hub.streams.models import Event, ParameterData, ReadWindow, StreamInfo, StreamProperties
from hub.streams.store import SqliteStore
from hub.streams.store.sqlite.blocks import MAX_BLOCK_ITEMS

T = "telemetry"
WAIT = 5.0
Write = Callable[[SqliteStore], Awaitable[Any]]


def _events(prefix: str, *timestamps: int) -> list[Event]:
    return [Event(f"{prefix}{i}", ts, f"v{i}", {"i": str(i)} if i % 2 else {}) for i, ts in enumerate(timestamps)]


def _writes() -> list[Write]:
    """Writes to several streams, of both kinds, with a close, a reopen, a new stream made mid-group,
    properties between data writes, an empty write and more rows than one INSERT carries."""
    many = _events("m", *range(MAX_BLOCK_ITEMS * 2 + 3))
    return [
        lambda s: s.append_events(T, "a", _events("a", 5, 3)),
        lambda s: s.append_events(T, "b", _events("b", 9)),
        lambda s: s.append_parameter_data(T, "a", ParameterData([1, 2], {"x": [1.0, None]}, {"g": [None, "2"]})),
        lambda s: s.append_events(T, "a", _events("c", 1, 8, 4)),
        lambda s: s.close_stream(T, "b"),
        lambda s: s.append_events(T, "b", _events("d", 2)),  # reopens b
        lambda s: s.append_events(T, "a", []),
        lambda s: s.put_properties(T, "a", StreamProperties("lap", "/car", {"k": "v"}, [], None)),
        lambda s: s.append_events(T, "new", many),  # made in the middle of the group
        lambda s: s.append_parameter_data(T, "b", ParameterData([7], {"x": [7.0]})),
        lambda s: s.append_events(T, "a", _events("e", 0)),
        lambda s: s.append_events(T, "b", _events("f", 11, 10)),
    ]


def _info(info: Any) -> dict[str, Any]:
    got = info.to_json()
    got.pop("lastActivity")  # the wall clock of each write
    return got


def _change(change: Any) -> tuple[Any, ...]:
    info = _info(change.info) if change.info is not None else None
    events = [e.to_json() for e in change.events] if change.events else None
    data = change.parameter_data.to_json() if change.parameter_data is not None else None
    return (change.kind, change.topic, change.stream_id, info, events, data, change.cursors)


def _without_cursors(run: tuple[list[Any], list[Any], Any]) -> tuple[list[Any], list[Any], Any]:
    """A run's results, changes and holdings with the cursors left out (they name blocks, and
    grouped writes share them)."""
    results, changes, held = run
    return results, [c[:6] + (len(c[6]),) for c in changes], [h[:2] + h[3:4] for h in held]


async def _run(store: SqliteStore, writes: list[Write], *, grouped: bool) -> tuple[list[Any], list[Any], Any]:
    """Run `writes` on `store` (all queued in one group when `grouped`, else one at a time); return
    their results (or errors), the changes published, and what the store then holds."""
    real_commit = store.writer.commit
    store.commits = 0  # type: ignore[attr-defined]

    def counting_commit(conn: Any) -> None:
        store.commits += 1  # type: ignore[attr-defined]
        real_commit(conn)

    store.writer.commit = counting_commit  # type: ignore[method-assign]
    async with await store.subscribe() as sub:
        if grouped:
            started, hold = threading.Event(), threading.Event()

            def busy(conn: Any) -> None:
                started.set()
                hold.wait(WAIT)

            held = store.writer.submit(busy)
            assert await asyncio.to_thread(started.wait, WAIT)
            pending = [write(store) for write in writes]  # queued while the writer is busy
            hold.set()
            await held
            results = await asyncio.gather(*pending, return_exceptions=True)
        else:
            results = []
            for write in writes:
                try:
                    results.append(await write(store))
                except Exception as error:
                    results.append(error)
        changes = []
        while sub.pending:  # every change is published before its write's caller hears of it
            changes.append(_change(await sub.get(WAIT)))
    held_now = []
    for info in await store.list_streams(T):
        events = await store.read_events(T, info.stream_id, ReadWindow(limit=10_000))
        rows = await store.read_parameter_data(T, info.stream_id, ReadWindow(limit=10_000))
        held_now.append((_info(info), [e.to_json() for e in events.items], events.last_cursor,
                         [r.to_json() for r in rows.items], rows.last_cursor))
    return [_result(r) for r in results], changes, held_now


def _result(result: Any) -> Any:
    if isinstance(result, Exception):
        return type(result)
    return _info(result) if isinstance(result, StreamInfo) else result


@pytest.fixture
async def two_stores(tmp_path: Path):  # type: ignore[no-untyped-def]
    stores = [SqliteStore(str(tmp_path / "grouped.db")), SqliteStore(str(tmp_path / "one-by-one.db"))]
    for store in stores:
        await store.start()
    yield stores
    for store in stores:
        await store.close()


async def test_grouped_data_writes_store_and_publish_what_single_writes_do(two_stores) -> None:  # type: ignore[no-untyped-def]
    grouped, one_by_one = two_stores
    expected = await _run(one_by_one, _writes(), grouped=False)
    got = await _run(grouped, _writes(), grouped=True)
    assert grouped.commits == 2  # the held operation, then all the writes in one transaction
    got_plain, expected_plain = _without_cursors(got), _without_cursors(expected)
    assert got_plain[0] == expected_plain[0]
    assert got_plain[1] == expected_plain[1]  # the same changes and stream states, in the same order
    assert got_plain[2] == expected_plain[2]  # the same rows, counters and timestamps
    assert [c[0] for c in got[1]].count("events") == 7  # the empty write publishes nothing
    # and what one-by-one writes give is what they gave before grouping: a made or reopened stream is
    # published as it was right after the write that made or reopened it ...
    assert [(c[2], c[3]["status"], _counts(c[3])) for c in got[1] if c[0] == "stream"] == [
        ("a", "open", (2, 0, 3, 5)),  # made by the first write
        ("b", "open", (1, 0, 9, 9)),
        ("b", "closed", (1, 0, 9, 9)),
        ("b", "open", (2, 0, 2, 9)),  # reopened by d0
        ("a", "open", (5, 2, 1, 8)),  # its properties, after its first four writes
        ("new", "open", (MAX_BLOCK_ITEMS * 2 + 3, 0, 0, MAX_BLOCK_ITEMS * 2 + 2)),
    ]
    # ... and each published event's cursor is its position in the stream, grouped or not
    for store, run in ((grouped, got), (one_by_one, expected)):
        for stream in ("a", "b", "new"):
            published = [cursor for c in run[1] if c[0] == "events" and c[2] == stream for cursor in c[6]]
            assert published == await _each_cursor(store, stream)
    # a block holds MAX_BLOCK_ITEMS at most: "new" got three
    assert len({c.split("-")[0] for c in await _each_cursor(grouped, "new")}) == 3


def _counts(info: dict[str, Any]) -> tuple[Any, ...]:
    return info["events"], info["parameterRows"], info["firstTimestamp"], info["lastTimestamp"]


async def _each_cursor(store: SqliteStore, stream: str) -> list[str]:
    cursors, after = [], None
    while (page := await store.read_events(T, stream, ReadWindow(limit=1, after=after))).items:
        cursors.append(after := page.last_cursor)
    return cursors


async def test_a_failing_write_in_a_group_fails_alone(two_stores) -> None:  # type: ignore[no-untyped-def]
    # Validation refuses lone surrogates; written directly, sqlite cannot encode them.
    bad: Write = lambda s: s.append_events(T, "bad", [Event("ok", 1), Event("\ud800", 2)])
    writes = _writes()
    writes.insert(6, bad)
    grouped, one_by_one = two_stores
    expected = await _run(one_by_one, writes, grouped=False)
    got = await _run(grouped, writes, grouped=True)
    assert got[0][6] is UnicodeEncodeError and expected[0][6] is UnicodeEncodeError
    assert grouped.commits == 1 + len(writes) - 1  # the group was redone one write a transaction
    got_plain, expected_plain = _without_cursors(got), _without_cursors(expected)
    assert got_plain[1] == expected_plain[1]
    assert got_plain[2] == expected_plain[2]
    assert "bad" not in [held[0]["streamId"] for held in got[2]]  # its stream was never made
