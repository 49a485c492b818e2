"""Where the Redis store keeps what. Prefix `hub`; topic and stream ids never contain `/`, so `/`
separates key parts:

    hub/topics              sorted set: topic -> creation sequence (of its first stream)
    hub/t/{topic}           sorted set: stream id -> creation sequence (list_streams order)
    hub/seq                 counter for the creation sequences
    hub/s/{topic}/{stream}  hash: topic, stream_id, properties, status, events, rows, first, last,
                            activity, edefs, pdefs (JSON where structured)
    hub/e/{topic}/{stream}  stream: one entry per event, {t: timestamp, d: JSON [id, value, tags]}
    hub/p/{topic}/{stream}  stream: one entry per parameter row, {t: timestamp, d: JSON row values}
    hub/q/{topic}           stream: quarantined rows, {d: JSON [streamId, line, reason, raw, receivedAt]}
    hub/changes             stream: the change log every process's follower reads, {k, t, s, a, b | h}
    hub/i/{scope}/{key}     string: an idempotency record, expiring on its own (PX)
    hub/w/{process}/{n}     hash: the replies of one write pipeline (pipeline.py), expiring on its own
"""

from __future__ import annotations

from enum import StrEnum


class DataKind(StrEnum):
    """The key part of a stream's data streams, and the `k` of their entries in the change log."""

    EVENTS = "e"
    PARAMETERS = "p"


STREAM_CHANGED = "s"  # the `k` of a change-log entry that carries a stream's new state (its hash, `h`)


class Keys:
    """The key names under one prefix."""

    __slots__ = ("changes", "prefix", "sequence", "topics")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.topics = f"{prefix}/topics"
        self.changes = f"{prefix}/changes"
        self.sequence = f"{prefix}/seq"

    def topic(self, topic: str) -> str:
        """The topic's stream index."""
        return f"{self.prefix}/t/{topic}"

    def stream(self, topic: str, stream_id: str) -> str:
        """The stream's hash."""
        return f"{self.prefix}/s/{topic}/{stream_id}"

    def stream_function(self, topic: str, stream_id: str) -> list[str]:
        """The KEYS of the library's stream functions: 1 hash, 2 topic's stream index, 3 topic index,
        4 sequence, 5 change log (hub_append adds 6, the data stream)."""
        p = self.prefix
        return [f"{p}/s/{topic}/{stream_id}", f"{p}/t/{topic}", self.topics, self.sequence, self.changes]

    def data(self, kind: DataKind, topic: str, stream_id: str) -> str:
        """The Redis stream holding a stream's events or its parameter rows."""
        return f"{self.prefix}/{kind}/{topic}/{stream_id}"

    def quarantine(self, topic: str) -> str:
        return f"{self.prefix}/q/{topic}"

    def idempotency(self, scope: str, key: str) -> str:
        return f"{self.prefix}/i/{scope}/{key}"

    def outcome(self, process: str, pipeline: int) -> str:
        """The outcome hash of a process's `pipeline`-th write pipeline."""
        return f"{self.prefix}/w/{process}/{pipeline}"
