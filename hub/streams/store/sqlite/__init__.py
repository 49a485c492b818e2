"""The durable embedded store: one SQLite file in WAL mode, written by one thread in group commits.

- store.py: SqliteStore, the stream store itself (writes as operations on the writer thread, reads
  on a reader thread, live changes published after each commit);
- group_commit.py: GroupCommitWriter, the writer thread, which knows nothing of streams: it applies
  a batch of writes in one transaction, commits once, settles their futures, and on a failure redoes
  the batch one write at a time so that a bad write fails alone;
- data_writes.py: how the store applies a transaction's events and parameter rows together (one
  INSERT for many rows, seqs counted, each stream's counters updated once);
- schema.py: the tables, the migration from older files, and the pragmas of both connections;
- streams_table.py: the `streams` table as the writer uses it, and the open-stream cache;
- trim.py: retention by age and by count, and what it remembers between passes.
"""

from .store import SqliteStore

__all__ = ["SqliteStore"]
