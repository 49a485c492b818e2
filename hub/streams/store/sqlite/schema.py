"""The sqlite store's file: its tables, the migration from older versions, and the pragmas each of
its two connections (the writer's, the reader's) is opened with. protocol-notes/stream-store.md
explains the schema."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from ..base import StoreUnavailable

# OFF is refused: it can corrupt the database on power loss, not just lose the last commits.
SYNCHRONOUS_LEVELS = ("NORMAL", "FULL", "EXTRA")
SCHEMA_VERSION = 3

log = logging.getLogger("hub.store")

# Version 2's data tables, a row per event or parameter row (version 1 is migrated through them).
DATA_TABLES_2 = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    stream INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    id TEXT NOT NULL,
    value TEXT,
    tags TEXT                                 -- JSON object, NULL when empty
);
CREATE INDEX IF NOT EXISTS events_by_stream ON events (stream);
CREATE TABLE IF NOT EXISTS parameter_rows (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    stream INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    row_values TEXT NOT NULL                  -- JSON, see parameter_rows.py
);
CREATE INDEX IF NOT EXISTS parameter_rows_by_stream ON parameter_rows (stream);
"""

# Version 1 had no AUTOINCREMENT (rows were never deleted then): copy into the new tables.
MIGRATE_1_TO_2 = (
    """
BEGIN;
ALTER TABLE events RENAME TO events_v1;
ALTER TABLE parameter_rows RENAME TO parameter_rows_v1;
DROP INDEX IF EXISTS events_by_stream;
DROP INDEX IF EXISTS parameter_rows_by_stream;
"""
    + DATA_TABLES_2
    + """
INSERT INTO events SELECT * FROM events_v1;
INSERT INTO parameter_rows SELECT * FROM parameter_rows_v1;
DROP TABLE events_v1;
DROP TABLE parameter_rows_v1;
PRAGMA user_version = 2;
COMMIT;
"""
)

# Blocks (blocks.py): the items one transaction wrote to one stream, as one JSON array. `seq` is the
# rowid: it grows with arrival, so with an item's index it is both the read order and the page cursor.
# An index on (stream) alone is enough for (stream, seq) reads: every SQLite index ends with the
# rowid. AUTOINCREMENT: retention deletes blocks, and a seq must never be reused (cursors).
BLOCK_TABLES = """
CREATE TABLE IF NOT EXISTS event_blocks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    stream INTEGER NOT NULL,
    first INTEGER NOT NULL DEFAULT 0,         -- items before this index were trimmed
    count INTEGER NOT NULL,                   -- items in data
    low INTEGER NOT NULL,                     -- lowest and highest timestamp of the items
    high INTEGER NOT NULL,
    data BLOB NOT NULL                        -- JSON array of {"id", "timestamp", "value", "tags"}
);
CREATE INDEX IF NOT EXISTS event_blocks_by_stream ON event_blocks (stream);
CREATE TABLE IF NOT EXISTS parameter_blocks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    stream INTEGER NOT NULL,
    first INTEGER NOT NULL DEFAULT 0,
    count INTEGER NOT NULL,
    low INTEGER NOT NULL,
    high INTEGER NOT NULL,
    data BLOB NOT NULL                        -- JSON array of [timestamp, values] (parameter_rows.py)
);
CREATE INDEX IF NOT EXISTS parameter_blocks_by_stream ON parameter_blocks (stream);
"""

# Version 2 kept a row per item: each row becomes a block of one with the row's seq (so a version 2
# cursor, the bare seq, still continues after it), and each table's sequence carries over (rows
# deleted by retention may have had seqs above any left, and a seq is never reused).
MIGRATE_2_TO_3 = (
    "BEGIN;"
    + BLOCK_TABLES
    + """
INSERT INTO event_blocks (seq, stream, first, count, low, high, data)
    SELECT seq, stream, 0, 1, timestamp, timestamp, json_array(json_object('id', id, 'timestamp', timestamp, 'value', value, 'tags', json(coalesce(tags, '{}'))))
    FROM events ORDER BY seq;
INSERT INTO parameter_blocks (seq, stream, first, count, low, high, data)
    SELECT seq, stream, 0, 1, timestamp, timestamp, json_array(json_array(timestamp, json(row_values)))
    FROM parameter_rows ORDER BY seq;
DELETE FROM sqlite_sequence WHERE name IN ('event_blocks', 'parameter_blocks');
INSERT INTO sqlite_sequence (name, seq) SELECT 'event_blocks', seq FROM sqlite_sequence WHERE name = 'events';
INSERT INTO sqlite_sequence (name, seq) SELECT 'parameter_blocks', seq FROM sqlite_sequence WHERE name = 'parameter_rows';
DROP TABLE events;
DROP TABLE parameter_rows;
PRAGMA user_version = 3;
COMMIT;
"""
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS streams (
    key INTEGER PRIMARY KEY,                  -- creation order
    topic TEXT NOT NULL,
    stream_id TEXT NOT NULL,
    properties TEXT NOT NULL DEFAULT '{}',    -- StreamProperties.to_json()
    status TEXT NOT NULL DEFAULT 'open',
    events INTEGER NOT NULL DEFAULT 0,
    parameter_rows INTEGER NOT NULL DEFAULT 0,
    first_timestamp INTEGER,
    last_timestamp INTEGER,
    last_activity REAL,
    event_definitions TEXT NOT NULL DEFAULT '[]',
    parameter_definitions TEXT NOT NULL DEFAULT '[]',
    UNIQUE (topic, stream_id)
);
CREATE TABLE IF NOT EXISTS idempotency (     -- X-Idempotency-Key records
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER,                           -- NULL while the first request runs
    body BLOB NOT NULL DEFAULT x'',
    expires REAL NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE TABLE IF NOT EXISTS arrivals (         -- for age retention: blocks up to these seqs had arrived by `at`
    at REAL NOT NULL,
    events_seq INTEGER NOT NULL,
    rows_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (       -- rows of lenient batches that were not valid events
    seq INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    stream_id TEXT NOT NULL,
    line INTEGER NOT NULL,
    reason TEXT NOT NULL,
    raw TEXT NOT NULL,
    received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS quarantine_by_topic ON quarantine (topic);
""" + BLOCK_TABLES


def check_synchronous(synchronous: str) -> str:
    """The `PRAGMA synchronous` level named (any case), upper-cased; ValueError for OFF or a typo."""
    level = synchronous.upper()
    if level not in SYNCHRONOUS_LEVELS:
        raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS_LEVELS)}, not {synchronous!r}")
    return level


#: Pages in the WAL at which the commit that reaches them also checkpoints (SQLite's default: 1,000).
#: That commit copies the pages into the file and fsyncs it; at half the store's maximum rate here it
#: takes about 1.7 ms instead of 0.2 and starts nearly every latency spike (bench/RESULTS.md, fifth
#: round). At 4,000 such commits come a quarter as often; the WAL file may reach about 16 MB.
WAL_AUTOCHECKPOINT_PAGES = 4000


def open_connections(path: str, synchronous: str) -> tuple[sqlite3.Connection, sqlite3.Connection]:
    """(writer's connection, reader's connection) to the file at `path`, made (folder included) or
    migrated to SCHEMA_VERSION. StoreUnavailable when the file is from a newer hub or not in WAL mode."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: the writer issues BEGIN/COMMIT itself. check_same_thread=False: each
    # connection is opened here but used only by its own thread afterwards.
    write = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        mode = write.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise StoreUnavailable(f"{path}: could not switch to WAL mode (got {mode})")
        write.execute(f"PRAGMA synchronous={synchronous}")
        write.execute("PRAGMA busy_timeout=5000")
        write.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        version = write.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreUnavailable(f"{path}: schema version {version} is newer than this hub knows")
        if 0 < version < SCHEMA_VERSION:
            _migrate(write, path, version)
        write.executescript(SCHEMA)
        write.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        read = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        read.execute("PRAGMA query_only=ON")
        read.execute("PRAGMA busy_timeout=5000")
    except BaseException:
        write.close()
        raise
    return write, read


def _migrate(conn: sqlite3.Connection, path: str, version: int) -> None:
    """Bring a file of an older hub to SCHEMA_VERSION, a step (one transaction) a version; logged,
    since a large file takes a while (the start waits for it)."""
    began = time.monotonic()
    log.info("%s: migrating the file from schema version %d to %d", path, version, SCHEMA_VERSION)
    if version == 1:
        conn.executescript(MIGRATE_1_TO_2)
    conn.executescript(MIGRATE_2_TO_3)
    log.info("%s: migrated to schema version %d in %.1f s", path, SCHEMA_VERSION, time.monotonic() - began)


def close_connections(write: sqlite3.Connection | None, read: sqlite3.Connection | None) -> None:
    """Checkpoint the WAL into the file (keeps it small) and close both connections."""
    if write is not None:
        try:
            write.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass
        write.close()
    if read is not None:
        read.close()
