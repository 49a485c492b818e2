"""Stream store backends behind one interface (base.StreamStore), chosen by a URL."""

from __future__ import annotations

import os

from .base import DefinitionKind, StoreUnavailable, StreamStore
from .memory import MemoryStore
from .sqlite import SqliteStore

__all__ = ["DefinitionKind", "MemoryStore", "SqliteStore", "StoreUnavailable", "StreamStore", "open_store"]

ACCEPTED_URLS = "memory, sqlite, sqlite:///absolute/path.db, sqlite://relative/path.db, redis://host:port/db"


def open_store(url: str, data_dir: str) -> StreamStore:
    """The store a URL names; the caller still awaits start() on it.

    - `memory`: nothing survives the process.
    - `sqlite`: `<data_dir>/hub.db`; `sqlite:///abs/path.db` or `sqlite://relative.db` (relative to
      the working directory): that file.
    - `redis://…`: the Redis store (not available yet).
    """
    if url == "memory":
        return MemoryStore()
    if url == "sqlite":
        return SqliteStore(os.path.join(data_dir, "hub.db"))
    if url.startswith("sqlite://"):
        # sqlite:///abs -> "/abs"; sqlite://rel -> "rel" (the SQLAlchemy spelling)
        path = url[len("sqlite://") :]
        if not path or path == "/":
            raise ValueError(f"store URL {url!r} names no file; accepted forms: {ACCEPTED_URLS}")
        return SqliteStore(path)
    if url.startswith(("redis://", "rediss://")):
        # The seam for the Redis backend: construct it here once it exists.
        raise ValueError("the redis store is not available yet")
    raise ValueError(f"unknown store URL {url!r}; accepted forms: {ACCEPTED_URLS}")
