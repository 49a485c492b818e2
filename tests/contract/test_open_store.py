"""Choosing a backend by URL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hub.streams.store import MemoryStore, SqliteStore, open_store


def test_memory() -> None:
    assert isinstance(open_store("memory", "/nowhere"), MemoryStore)


def test_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    store = open_store("sqlite", str(tmp_path))
    assert isinstance(store, SqliteStore) and store.path == os.path.join(str(tmp_path), "hub.db")
    assert store.synchronous == "FULL"


def test_sqlite_file_urls() -> None:
    absolute = open_store("sqlite:///var/lib/hub/streams.db", "/data")
    assert isinstance(absolute, SqliteStore) and absolute.path == "/var/lib/hub/streams.db"
    relative = open_store("sqlite://streams.db", "/data")
    assert isinstance(relative, SqliteStore) and relative.path == "streams.db"


def test_redis_url() -> None:
    from hub.streams.store.redis import RedisStore

    store = open_store("redis://localhost:6379/0", "/data", "7d,1000")
    assert isinstance(store, RedisStore) and store.url == "redis://localhost:6379/0"
    assert (store.retention.max_age, store.retention.max_count) == (7 * 86400, 1000)


def test_retention_reaches_every_backend(tmp_path: Path) -> None:
    assert open_store("memory", "/data", "100").retention.max_count == 100  # type: ignore[attr-defined]
    assert open_store("sqlite", str(tmp_path), "12h").retention.max_age == 12 * 3600  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="retention 'forever'"):
        open_store("memory", "/data", "forever")


@pytest.mark.parametrize("url", ["", "postgres://x", "sqlite://", "sqlite:///", "Memory", "file.db"])
def test_unknown_urls_name_the_accepted_forms(url: str) -> None:
    with pytest.raises(ValueError, match="accepted forms: memory, sqlite, sqlite:///"):
        open_store(url, "/data")
