"""Retention on the sqlite store: what it deletes, always on the writer thread inside a transaction,
and what it remembers between passes to know where to delete.

- Age (`arrivals`): at most once a second a transaction records the highest block seqs stored by
  then; a pass deletes every block up to the seqs recorded before the cutoff.
- Count: a pass keeps the newest `max_count` items of each stream written since the last pass (the
  touched set), or of every stream when that set cannot be trusted (after a start, or a rollback
  that undid a trim); blocks.trim_to.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Iterable

from ..retention import Retention
from .blocks import trim_to
from .streams_table import every_stream_key


class Trimmer:
    def __init__(self, retention: Retention, max_touched: int):
        self.retention = retention
        self.max_touched = max_touched
        # Stream keys written since the last count pass. Bound: max_touched; before a write would add
        # one more, the streams already in it are trimmed at once (in that write's transaction) and
        # it is emptied, so retention stays exact. `trim_all` stands for "every stream": the next
        # pass walks the streams table instead, holding nothing in memory.
        self.touched: set[int] = set()
        self.trim_all = False
        self._trims = 0  # count trims run: tells whether a rollback undid one
        self._trims_at_begin = 0
        self._last_arrival_mark = 0.0

    def started(self) -> None:
        """The store (re)started: streams written before may hold more than the count kept."""
        self.trim_all = self.retention.max_count is not None

    def began(self) -> None:
        """A transaction began."""
        self._trims_at_begin = self._trims

    def rolled_back(self) -> None:
        """The transaction was rolled back: a trim it ran is undone, so redo it for every stream."""
        if self._trims != self._trims_at_begin:
            self.trim_all = True

    def counts_written(self) -> bool:
        """Whether writes must be told (`written`, `trim_due`): only count retention keeps the set."""
        return self.retention.max_count is not None

    def trim_due(self) -> bool:
        """Before a write: the touched set is full, run `trim_counts` first (see `touched`)."""
        return len(self.touched) >= self.max_touched

    def written(self, key: int) -> None:
        """Data was written to the stream `key`."""
        if self.retention.max_count is not None:
            self.touched.add(key)

    def after_writes(self, conn: sqlite3.Connection) -> None:
        if self.retention.max_age is not None:
            self.mark_arrival(conn)

    def mark_arrival(self, conn: sqlite3.Connection) -> None:
        """At most once a second: the highest seqs that have arrived by now (age retention)."""
        now = time.time()
        if now - self._last_arrival_mark < 1.0:
            return
        self._last_arrival_mark = now
        conn.execute(
            "INSERT INTO arrivals (at, events_seq, rows_seq) SELECT ?,"
            " coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'event_blocks'), 0),"
            " coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'parameter_blocks'), 0)",
            (now,),
        )

    def trim_counts(self, conn: sqlite3.Connection) -> None:
        """Count retention for the touched streams, or for every stream when `trim_all`; empties the
        touched set."""
        keep = self.retention.max_count
        if keep is not None:
            if self.trim_all:
                keys: Iterable[int] = every_stream_key(conn)
            else:
                keys = self.touched
            for key in keys:
                for table in ("event_blocks", "parameter_blocks"):
                    trim_to(conn, table, key, keep)
            self._trims += 1
        self.touched = set()
        self.trim_all = False

    def run_pass(self, conn: sqlite3.Connection, at: float) -> None:
        """One pass as if the clock read `at`: expired idempotency records, then age, then count."""
        retention = self.retention
        conn.execute("DELETE FROM idempotency WHERE expires <= ?", (at,))
        if retention.max_age is not None:
            # Everything stored so far has arrived by now: a mark for the tail the last (at most
            # once a second) mark missed, so a stream that stopped receiving ages out too.
            self._last_arrival_mark = 0.0
            self.mark_arrival(conn)
            cutoff = at - retention.max_age
            row = conn.execute("SELECT max(events_seq), max(rows_seq) FROM arrivals WHERE at < ?", (cutoff,)).fetchone()
            if row[0] is not None:
                conn.execute("DELETE FROM event_blocks WHERE seq <= ?", (row[0],))
                conn.execute("DELETE FROM parameter_blocks WHERE seq <= ?", (row[1],))
                conn.execute("DELETE FROM arrivals WHERE at < ?", (cutoff,))
        if retention.max_count is not None:
            self.trim_counts(conn)
