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


def test_redis_is_not_available_yet() -> None:
    with pytest.raises(ValueError, match="^the redis store is not available yet$"):
        open_store("redis://localhost:6379/0", "/data")


@pytest.mark.parametrize("url", ["", "postgres://x", "sqlite://", "sqlite:///", "Memory", "file.db"])
def test_unknown_urls_name_the_accepted_forms(url: str) -> None:
    with pytest.raises(ValueError, match="accepted forms: memory, sqlite, sqlite:///"):
        open_store(url, "/data")
