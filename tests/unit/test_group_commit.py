"""The group-commit writer alone: a plain sqlite3 connection and a toy `apply` that inserts each write
(a number) into one table; no streams. A `Hold` write keeps the writer busy in its batch until
released, so that a test knows which writes the next batch holds."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from hub.streams.store.sqlite.group_commit import GroupCommitWriter, Then


class Unavailable(Exception):
    pass


class Hold:
    """A write that holds its batch until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()

    async def wait_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, 10)


class ToyWriter(GroupCommitWriter[Any]):
    """Counts its commits and rollbacks and remembers the batches `apply` was given."""

    def __init__(self) -> None:
        super().__init__(self.insert_each, name="toy", unavailable=Unavailable, rolled_back=self.count_rollback)
        self.batches: list[list[Any]] = []
        self.commits = 0
        self.rollbacks = 0
        self.fail_commit_of: Any = None  # the commit of the next transaction holding this write fails

    def insert_each(self, conn: sqlite3.Connection, writes: list[Any]) -> list[Any]:
        self.batches.append(list(writes))
        results = []
        for write in writes:
            if isinstance(write, Hold):
                write.entered.set()
                assert write.released.wait(10)
                results.append("held")
            elif isinstance(write, BaseException):
                raise write
            else:
                conn.execute("INSERT INTO t (v) VALUES (?)", (write,))
                results.append(write * 10)
        return results

    def count_rollback(self) -> None:
        self.rollbacks += 1

    def commit(self, conn: sqlite3.Connection) -> None:
        if self.fail_commit_of is not None and self.fail_commit_of in self.batches[-1]:
            self.fail_commit_of = None
            raise sqlite3.OperationalError("disk I/O error (test)")
        self.commits += 1
        super().commit(conn)


def make_table(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("CREATE TABLE t (v INTEGER NOT NULL)")
    return conn


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "toy.db")


@pytest.fixture
async def writer(path: str) -> AsyncIterator[ToyWriter]:
    conn = make_table(path)
    writer = ToyWriter()
    writer.start(conn)
    yield writer
    await writer.close()
    conn.close()


async def behind_a_hold(writer: ToyWriter, writes: list[Any]) -> tuple[Hold, list[asyncio.Future]]:
    """Submit `writes` while the writer is busy with a held write, so that they make one batch; then
    release it. Returns the held write and the futures of `writes`."""
    hold = Hold()
    held = writer.submit(hold)
    await hold.wait_entered()
    futures = [writer.submit(write) for write in writes]
    hold.released.set()
    assert await held == "held"
    return hold, futures


def stored(path: str) -> list[int]:
    with sqlite3.connect(path) as conn:  # a connection of its own: sees only what was committed
        return [v for (v,) in conn.execute("SELECT v FROM t ORDER BY rowid")]


async def test_one_commit_per_batch(writer: ToyWriter, path: str) -> None:
    hold, rest = await behind_a_hold(writer, list(range(1, 101)))
    assert await asyncio.gather(*rest) == [i * 10 for i in range(1, 101)]
    assert writer.batches == [[hold], list(range(1, 101))]
    assert writer.commits == 2
    assert stored(path) == list(range(1, 101))


async def test_a_failing_write_fails_alone(writer: ToyWriter, path: str) -> None:
    bad_write = ValueError("bad write")
    hold, (good, bad, *also_good) = await behind_a_hold(writer, [1, bad_write, 2, 3])
    assert await good == 10
    with pytest.raises(ValueError, match="bad write"):
        await bad
    assert await asyncio.gather(*also_good) == [20, 30]
    assert stored(path) == [1, 2, 3]
    # the batch once, rolled back, then each of its writes in a transaction of its own
    assert writer.batches == [[hold], [1, bad_write, 2, 3], [1], [bad_write], [2], [3]]
    assert writer.rollbacks == 2  # the whole batch, then the bad write alone
    assert writer.commits == 1 + 3


async def test_writes_are_applied_in_call_order_whatever_the_await_order(writer: ToyWriter, path: str) -> None:
    ran: list[int] = []

    def insert_then_note(conn: sqlite3.Connection, writes: list[int]) -> list[Any]:
        conn.executemany("INSERT INTO t (v) VALUES (?)", [(w,) for w in writes])
        return [Then(w, lambda w=w: ran.append(w)) for w in writes]

    writer.apply = insert_then_note
    futures = [writer.submit(i) for i in range(200)]
    for i, future in reversed(list(enumerate(futures))):
        assert await future == i
        assert i in ran  # run on the loop once committed, before the future resolved
    assert ran == list(range(200))
    assert stored(path) == list(range(200))


async def test_a_failed_commit_fails_its_whole_batch(writer: ToyWriter, path: str) -> None:
    writer.fail_commit_of = 2  # not in the held write's transaction: in the next one
    _, doomed = await behind_a_hold(writer, [1, 2, 3])
    for future in doomed:
        with pytest.raises(Unavailable, match=r"^toy: transaction not committed: disk I/O error \(test\)$"):
            await future
    assert writer.rollbacks == 1
    assert await writer.submit(4) == 40  # the writer goes on
    assert stored(path) == [4]


async def test_close_drains_what_was_queued(path: str) -> None:
    conn = make_table(path)
    writer = ToyWriter()
    with pytest.raises(Unavailable, match="^toy: the store is not started or already closed$"):
        await writer.submit(0)
    writer.start(conn)
    pending = [writer.submit(i) for i in range(50)]
    await writer.close()
    assert stored(path) == list(range(50))  # committed before close() returned
    assert await asyncio.gather(*pending) == [i * 10 for i in range(50)]
    with pytest.raises(Unavailable, match="^toy: the store is not started or already closed$"):
        await writer.submit(51)
    conn.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # it stops, raising
async def test_a_writer_stopped_by_a_bug_answers_every_write(path: str) -> None:
    conn = make_table(path)
    writer = ToyWriter()
    writer.start(conn)
    _, stopping = await behind_a_hold(writer, [SystemExit("bug"), 1])  # not an Exception: not a write's own failure
    for future in stopping:
        with pytest.raises(Unavailable, match=r"^sqlite writer stopped: SystemExit\('bug'\)$"):
            await future
    assert writer.rollbacks == 1
    # A write made once the stop answered those: refused at once, or by the thread still stopping.
    with pytest.raises(Unavailable, match=r"^(toy: bug|sqlite writer stopped: SystemExit\('bug'\))$"):
        await writer.submit(2)
    await writer.close()
    assert stored(path) == []
    conn.close()


async def test_work_after_a_commit_that_fails_still_answers_every_write(writer: ToyWriter, path: str, caplog) -> None:  # type: ignore[no-untyped-def]
    def boom() -> None:
        raise RuntimeError("a bug in what runs after the commit")

    def insert(conn: sqlite3.Connection, writes: list[int]) -> list[Any]:
        conn.executemany("INSERT INTO t (v) VALUES (?)", [(w,) for w in writes])
        return [Then(w, boom if w == 2 else (lambda: None)) for w in writes]

    writer.apply = insert
    futures = [writer.submit(i) for i in range(5)]
    assert await asyncio.gather(*futures) == [0, 1, 2, 3, 4]  # stored, and told so: 2 as well
    assert stored(path) == [0, 1, 2, 3, 4]
    assert "a bug in what runs after the commit" in caplog.text


async def test_the_writer_thread_alone_runs_without_wakeup_preemption(path: str) -> None:
    """SCHED_BATCH for the writer thread (Linux): its wake-ups do not preempt the event loop, which
    holds the GIL it needs. The loop's thread keeps its own policy."""
    conn = make_table(path)
    writer: GroupCommitWriter[Any] = GroupCommitWriter(
        lambda _conn, writes: [os.sched_getscheduler(0) for _ in writes], name="probe", unavailable=Unavailable
    )
    writer.start(conn)
    try:
        assert await writer.submit("probe") == os.SCHED_BATCH
        assert os.sched_getscheduler(0) == os.SCHED_OTHER
    finally:
        await writer.close()
        conn.close()
