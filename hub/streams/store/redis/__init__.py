"""The Redis store: for several hub processes sharing one data set (`--store redis://host:port/db`).

- store.py: RedisStore, the StreamStore methods (reads straight to Redis, writes via the pipeline);
- pipeline.py: the writes, in call order, group-committed in pipelines of few `hub_batch` calls,
  each with a deadline in Redis' clock and its replies kept in the pipeline's outcome hash (failed
  means not stored);
- follower.py: the change-log follower that brings every process's writes to local subscribers;
- connection.py: the clients, up/down state and reconnecting, loading the function library;
- keys.py: the key layout; codec.py: entries and records as stored, replies back to models;
- writerhub.lua: the function library every write calls (package data, loaded at each connect).
"""

from .pipeline import Write, encode_writes
from .store import RedisStore

__all__ = ["RedisStore", "Write", "encode_writes"]
