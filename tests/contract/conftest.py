"""Backends the contract suite runs against. Each factory makes a store over the data kept under
`tmp_path`, so calling it again (after close) reopens the same data where the backend is durable.

To add a backend (e.g. redis), add a factory here that skips when its server is not reachable.
"""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator, Callable

import pytest

from hub.streams.store import MemoryStore, SqliteStore, StreamStore

StoreFactory = Callable[[], StreamStore]


def _memory(tmp_path: Path) -> StoreFactory:
    return MemoryStore


def _sqlite(tmp_path: Path) -> StoreFactory:
    return lambda: SqliteStore(str(tmp_path / "hub.db"))


BACKENDS: dict[str, Callable[[Path], StoreFactory]] = {"memory": _memory, "sqlite": _sqlite}


@pytest.fixture(params=list(BACKENDS))
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    return BACKENDS[request.param](tmp_path)


@pytest.fixture
async def store(store_factory: StoreFactory) -> AsyncIterator[StreamStore]:
    store = store_factory()
    await store.start()
    try:
        yield store
    finally:
        await store.close()
