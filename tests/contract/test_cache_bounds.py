"""Every in-process cache a store keeps per stream or per key stays within its bound, and writes to
streams it has forgotten stay correct. Run against every backend (see conftest): `cache_bound=50`
sets the bound of each cache the backend has (StreamStore.cache_sizes); Redis keeps none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from hub.streams.models import Event, ParameterData, ReadWindow
from hub.streams.store import Retention, SqliteStore

StoreFactory = Callable[..., Any]

BOUND = 50
STREAMS = 3 * BOUND  # more distinct streams than any cache may remember
ROUNDS = 4
KEEP = 3


def _assert_within_bound(store: Any) -> None:
    for name, size in store.cache_sizes().items():
        assert size <= BOUND, f"{name}: {size} entries, bound {BOUND}"


def _stream(i: int) -> tuple[str, str]:
    return f"topic-{i % 3}", f"s{i}"


async def test_writes_to_more_streams_than_the_bound_stay_correct(store_factory: StoreFactory) -> None:
    store = store_factory(retention=Retention(max_count=KEEP), cache_bound=BOUND)
    await store.start()
    try:
        await store.trim()  # the pass after a start may look at every stream; the next ones may not
        for r in range(ROUNDS):
            for i in range(STREAMS):
                topic, sid = _stream(i)
                # the timestamps go down then up, so both first and last move across rounds
                await store.append_events(topic, sid, [Event(f"r{r}-a", 1000 - r), Event(f"r{r}-b", 2000 + r)])
                if r == 1 and i % 7 == 0:
                    await store.close_stream(topic, sid)  # the next round's write reopens it
            await store.append_parameter_data("params", "p", ParameterData([r], {"x": [float(r)]}))
            _assert_within_bound(store)
        await store.trim()
        _assert_within_bound(store)
        for i in range(STREAMS):
            topic, sid = _stream(i)
            info = await store.get_stream(topic, sid)
            assert info is not None, (topic, sid)
            assert (info.events, info.status) == (2 * ROUNDS, "open"), (topic, sid)
            assert (info.first_timestamp, info.last_timestamp) == (1000 - (ROUNDS - 1), 2000 + ROUNDS - 1)
            kept = await store.read_events(topic, sid, ReadWindow(limit=100))
            assert [e.id for e in kept.items] == ["r2-b", "r3-a", "r3-b"], (topic, sid)  # the newest, in order
        [rows] = (await store.read_parameter_data("params", "p", ReadWindow(limit=100))).items
        assert rows.timestamps == [1, 2, 3]
        topics = {t.topic: t.streams for t in await store.list_topics()}
        assert topics == {"params": 1, "topic-0": BOUND, "topic-1": BOUND, "topic-2": BOUND}
    finally:
        await store.close()


async def test_idempotency_records_stay_within_the_bound(store_factory: StoreFactory) -> None:
    store = store_factory(cache_bound=BOUND)
    await store.start()
    try:
        for i in range(3 * BOUND):
            assert await store.claim_idempotency("user/t", f"key-{i}", f"fp-{i}", 60.0) is None
            if i % 2:
                await store.finish_idempotency("user/t", f"key-{i}", f"fp-{i}", 200, b"{}", 3600.0)
            _assert_within_bound(store)
        # the most recently written records are remembered, finished or pending
        for i in range(2 * BOUND + 1, 3 * BOUND):
            found = await store.claim_idempotency("user/t", f"key-{i}", "other", 60.0)
            assert found is not None and found.fingerprint == f"fp-{i}"
            assert found.status == (200 if i % 2 else None)
        _assert_within_bound(store)
    finally:
        await store.close()


async def test_sqlite_retention_after_a_restart_reaches_streams_written_before(tmp_path: Path) -> None:
    path = str(tmp_path / "hub.db")
    store = SqliteStore(path, max_cached_streams=10)
    await store.start()
    for i in range(4 * 10):
        await store.append_events("t", f"s{i}", [Event(f"e{n}", n) for n in range(6)])
    await store.close()
    # restarted with count retention: streams written only before the restart are trimmed too,
    # while new writes fill (and overflow) the touched-stream set
    store = SqliteStore(path, retention=Retention(max_count=KEEP), max_cached_streams=10)
    await store.start()
    try:
        for i in range(25):
            await store.append_events("t", f"new{i}", [Event(f"e{n}", n) for n in range(6)])
            assert store.cache_sizes()["touched streams"] <= 10
        await store.trim()
        for sid in [f"s{i}" for i in range(40)] + [f"new{i}" for i in range(25)]:
            kept = await store.read_events("t", sid, ReadWindow(limit=100))
            assert [e.id for e in kept.items] == ["e3", "e4", "e5"], sid
    finally:
        await store.close()


async def test_sqlite_a_rolled_back_early_trim_is_redone(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    store = SqliteStore(str(tmp_path / "hub.db"), retention=Retention(max_count=KEEP), max_cached_streams=5)
    await store.start()
    try:
        for i in range(5):
            await store.append_events("t", f"s{i}", [Event(f"e{n}", n) for n in range(6)])
        assert store.cache_sizes()["touched streams"] == 5
        real_commit = store.writer.commit

        def failing_commit(conn: Any) -> None:
            monkeypatch.setattr(store.writer, "commit", real_commit)  # only once
            raise __import__("sqlite3").OperationalError("disk I/O error (test)")

        monkeypatch.setattr(store.writer, "commit", failing_commit)
        # this write finds the set full: the five streams are trimmed in its transaction, which fails
        try:
            await store.append_events("t", "s5", [Event("x", 0)])
        except Exception:  # noqa: BLE001 - expected: the commit failed
            pass
        await store.trim()
        for i in range(5):
            kept = await store.read_events("t", f"s{i}", ReadWindow(limit=100))
            assert [e.id for e in kept.items] == ["e3", "e4", "e5"], i
    finally:
        await store.close()
