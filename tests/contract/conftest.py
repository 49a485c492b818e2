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

StoreFactory = Callable[..., StreamStore]  # (retention=Retention()) -> a store, not started


def _memory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    return lambda retention=Retention(): MemoryStore(retention)


def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    return lambda retention=Retention(): SqliteStore(str(tmp_path / "hub.db"), retention=retention)


def _redis(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    server = request.getfixturevalue("redis_server")
    server.flush()
    return lambda retention=Retention(): RedisStore(server.url, retention)


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
