"""Stream store backends behind one interface (base.StreamStore), chosen by a URL (open_store).

- base.py: the interface, each method's promise stated where it is declared.
- memory.py; sqlite/ (the default: schema, a generic group-commit writer, the store); redis/ (the store,
  its ordered write pipeline, the change-log follower, the Lua library as package data).
- broadcast.py: each durable write as a Change to every subscriber in this process, bounded per subscriber.
- encoding.py (what the durable stores write), cursor.py, parameter_rows.py, retention.py, resolved.py:
  the parts the backends share.
"""

from __future__ import annotations

import os

from .base import IdempotencyRecord, StoreUnavailable, StreamStore
from .broadcast import Change, SubscriptionOverflow
from .memory import MemoryStore
from .retention import Retention, parse_retention
from .sqlite import SqliteStore

__all__ = [
    "Change",
    "IdempotencyRecord",
    "MemoryStore",
    "Retention",
    "SqliteStore",
    "StoreUnavailable",
    "StreamStore",
    "SubscriptionOverflow",
    "open_store",
    "parse_retention",
]

ACCEPTED_URLS = "memory, sqlite, sqlite:///absolute/path.db, sqlite://relative/path.db, redis://host:port/db"


def open_store(
    url: str, data_dir: str, retention: Retention | str | None = None, *, timeout: float | None = None
) -> StreamStore:
    """The store a URL names; the caller still awaits start() on it.

    - `memory`: nothing survives the process.
    - `sqlite`: `<data_dir>/hub.db`; `sqlite:///abs/path.db` or `sqlite://relative.db` (relative to
      the working directory): that file.
    - `redis://host:port/db` (or `rediss://`, `redis://:password@host…`): the Redis store.

    `retention`: a Retention, or `--retention` text (parse_retention: ValueError when bad).
    `timeout`: seconds a write may take (redis only; None: the store's default).
    """
    if not isinstance(retention, Retention):
        retention = parse_retention(retention)
    if url == "memory":
        return MemoryStore(retention)
    if url == "sqlite":
        return SqliteStore(os.path.join(data_dir, "hub.db"), retention=retention)
    if url.startswith("sqlite://"):
        # sqlite:///abs -> "/abs"; sqlite://rel -> "rel" (the SQLAlchemy spelling)
        path = url[len("sqlite://") :]
        if not path or path == "/":
            raise ValueError(f"store URL {url!r} names no file; accepted forms: {ACCEPTED_URLS}")
        return SqliteStore(path, retention=retention)
    if url.startswith(("redis://", "rediss://")):
        from .redis import RedisStore  # imports the redis client only when used

        return RedisStore(url, retention) if timeout is None else RedisStore(url, retention, timeout=timeout)
    raise ValueError(f"unknown store URL {url!r}; accepted forms: {ACCEPTED_URLS}")
