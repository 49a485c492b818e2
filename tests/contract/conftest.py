"""Backends the contract suite runs against. Each factory makes a store over the data kept under
`tmp_path`, so calling it again (after close) reopens the same data where the backend is durable.

redis runs against the session's real redis-server (tests/conftest.py), flushed before each test.
"""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator, Callable

import pytest

from hub.streams.store import MemoryStore, Retention, SqliteStore, StreamStore
from hub.streams.store.redis import RedisStore

# (retention=Retention(), cache_bound=None) -> a store, not started. `cache_bound` sets the bound of
# every in-process per-stream/per-key cache the backend has (StreamStore.cache_sizes); None: defaults.
StoreFactory = Callable[..., StreamStore]


def _memory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    def make(retention: Retention = Retention(), cache_bound: int | None = None) -> StreamStore:
        if cache_bound is None:
            return MemoryStore(retention)
        return MemoryStore(retention, max_idempotency_records=cache_bound)

    return make


def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    def make(retention: Retention = Retention(), cache_bound: int | None = None) -> StreamStore:
        path = str(tmp_path / "hub.db")
        if cache_bound is None:
            return SqliteStore(path, retention=retention)
        return SqliteStore(path, retention=retention, max_cached_streams=cache_bound)

    return make


def _redis(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    server = request.getfixturevalue("redis_server")
    server.flush()
    # no in-process cache per stream or key: everything lives in Redis
    return lambda retention=Retention(), cache_bound=None: RedisStore(server.url, retention)


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], StoreFactory]] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "redis": _redis,
}


@pytest.fixture(params=list(BACKENDS))
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    return BACKENDS[request.param](request, tmp_path)


@pytest.fixture
async def store(store_factory: StoreFactory) -> AsyncIterator[StreamStore]:
    store = store_factory()
    await store.start()
    try:
        yield store
    finally:
        await store.close()
