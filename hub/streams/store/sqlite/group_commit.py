"""Group commit on one sqlite3 connection: one thread applies every write queued while the previous
transaction was being committed, in one transaction, and commits once. One fsync thus acknowledges
all of them: throughput grows with the writes in flight instead of being capped at one per fsync.

The writer knows nothing of what a write is. Its owner queues opaque writes with `submit` (from an
event loop; the queue order is the call order) and supplies `apply(conn, writes) -> results`, which
runs them in order inside the transaction the writer began. Then:
- `apply` returned and COMMIT succeeded: each write's future resolves to its result (for an
  `AfterCommit` result: its `after_commit()` runs first, then the future gets its `outcome()`), on
  its own event loop (thread-safely, one wake-up per loop and batch), in queue order;
- `apply` raised: the transaction is rolled back and the batch is done again one write a transaction,
  so a bad write fails alone (its future gets what `apply` raised) while the others commit;
- BEGIN or COMMIT failed: the transaction is rolled back and every write of it fails with
  `unavailable("<name>: transaction not committed: <error>")`.
After every rollback the owner's `rolled_back()` runs, so that state it keeps beside the database
(caches filled while applying) can forget what the rollback undid: `apply` may see a write again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import sqlite3
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterable, TypeVar

W = TypeVar("W")  # a write, as the owner queues it: opaque here

log = logging.getLogger("hub.store")


class AfterCommit:
    """What `apply` returns for a write whose caller must not hear of it before some work has run:
    once its transaction is committed, `after_commit()` runs on the write's event loop, then the
    write's future resolves to `outcome()`. If `after_commit` raises, that is logged and the future
    still gets its outcome: the write is stored, and its caller is told so. A base class, so that a
    write can be its own result (the store's data writes are: no object more a write)."""

    __slots__ = ()

    def after_commit(self) -> None:
        raise NotImplementedError

    def outcome(self) -> Any:
        raise NotImplementedError


@dataclass(slots=True)
class Then(AfterCommit):
    """AfterCommit for an operation: `run()` once committed, then the future gets `result`."""

    result: Any
    run: Callable[[], None]

    def after_commit(self) -> None:
        self.run()

    def outcome(self) -> Any:
        return self.result


# A queued write: (the write, its future, the future's loop). A tuple: one is made per write.
_Queued = tuple[Any, "asyncio.Future[Any]", asyncio.AbstractEventLoop]

Outcome = tuple[_Queued, Any, BaseException | None]  # (write, result, error)


class _ApplyFailed(Exception):
    """`apply` raised `error` (which write of the batch made it is not known)."""

    def __init__(self, error: Exception):
        self.error = error


class GroupCommitWriter(Generic[W]):
    """Applies the writes its owner submits on its own thread, in group commits (module docstring).

    `name` starts the texts of the errors it makes, `unavailable` makes them (the owner's "could not
    store it, retry" exception)."""

    def __init__(
        self,
        apply: Callable[[sqlite3.Connection, list[W]], list[Any]],
        *,
        name: str,
        unavailable: Callable[[str], Exception],
        rolled_back: Callable[[], None] = lambda: None,
        thread_name: str = "sqlite-writer",
    ):
        self.apply = apply
        self.name = name
        self.unavailable = unavailable
        self.rolled_back = rolled_back
        self.thread_name = thread_name
        # Told each committed transaction's seconds (BEGIN to COMMIT), on the writer thread.
        self.on_commit: Callable[[float], None] | None = None
        # Unbounded: `submit` is a plain call that queues at once (so the queue order is the call
        # order) and cannot wait for room. The owner's callers bound it: each awaits its writes and
        # keeps a limited number in flight (for the hub's store, see hub/streams/store/sqlite/store.py).
        self._queue: queue.SimpleQueue[_Queued | None] = queue.SimpleQueue()
        self._conn: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None
        # Guards accepting writes against the thread stopping, so no write is queued unanswered.
        self._lock = threading.Lock()
        self._accepting = False
        self._broken: BaseException | None = None

    def start(self, conn: sqlite3.Connection) -> None:
        """Start the thread writing on `conn` (opened with isolation_level=None; used only by that
        thread from now on, until close() returns)."""
        self._conn = conn
        self._accepting = True
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def submit(self, write: W) -> asyncio.Future[Any]:
        """Queue `write` (call it on the running event loop); the future settles as the module
        docstring says, or at once with `unavailable(...)` when the writer is not running."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            if not self._accepting:
                reason = self._broken or "the store is not started or already closed"
                future.set_exception(self.unavailable(f"{self.name}: {reason}"))
            else:
                self._queue.put((write, future, loop))
        return future

    async def close(self) -> None:
        """Stop accepting writes and return once every write already queued is applied and settled."""
        with self._lock:
            self._accepting = False
            if self._thread is not None:
                self._queue.put(None)  # after every write already queued
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        self._conn = None

    def commit(self, conn: sqlite3.Connection) -> None:
        # A method of its own so that a test can make the commit fail.
        conn.execute("COMMIT")

    # --- the writer thread ----------------------------------------------------------------------

    def _run(self) -> None:
        _no_wakeup_preemption()
        try:
            while True:
                batch = [self._queue.get()]
                while True:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                writes = [w for w in batch if w is not None]
                if writes:
                    self._write_batch(writes)
                if len(writes) < len(batch):  # the stop marker: nothing is queued after it
                    return
        except BaseException as error:  # a bug here must not leave writers waiting forever
            with self._lock:
                self._accepting = False
                self._broken = error
                leftovers = []
                while True:
                    try:
                        leftovers.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
            failure = self.unavailable(f"sqlite writer stopped: {error!r}")
            _settle([(w, None, failure) for w in leftovers if w is not None])
            raise

    def _write_batch(self, batch: list[_Queued]) -> None:
        try:
            outcomes = self._commit_batch(batch)
        except BaseException as error:  # not ours to handle, but first answer this batch's writers
            _settle([(w, None, self.unavailable(f"sqlite writer stopped: {error!r}")) for w in batch])
            raise
        if type(outcomes) is tuple:  # all committed
            _settle_committed(*outcomes)
        else:
            _settle(outcomes)

    def _commit_batch(self, batch: list[_Queued]) -> list[Outcome] | tuple[list[_Queued], list[Any]]:
        """The batch in one transaction: (batch, results) when it committed. If `apply` fails, each
        write in a transaction of its own: one Outcome a write."""
        try:
            results = self._transaction([w[0] for w in batch])
        except _ApplyFailed as failed:
            if len(batch) == 1:
                return [(batch[0], None, failed.error)]
            outcomes: list[Outcome] = []
            for write in batch:
                alone = self._commit_batch([write])
                outcomes += [(write, alone[1][0], None)] if type(alone) is tuple else alone
            return outcomes
        except sqlite3.Error as error:
            failure = self.unavailable(f"{self.name}: transaction not committed: {error}")
            log.warning("%s (%d write(s) answered failed)", failure, len(batch))  # the store's error, not a client's
            return [(w, None, failure) for w in batch]
        return batch, results

    def _transaction(self, writes: list[W]) -> list[Any]:
        conn = self._conn
        assert conn is not None
        began = time.perf_counter()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                results = self.apply(conn, writes)
            except Exception as error:
                raise _ApplyFailed(error) from error
            self.commit(conn)
            if self.on_commit is not None:
                self.on_commit(time.perf_counter() - began)
        except BaseException:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            self.rolled_back()
            raise
        return results


def _no_wakeup_preemption() -> None:
    """Run the calling thread (the writer) as SCHED_BATCH where Linux offers it: its wake-ups (a
    commit's fsync returning, a write queued) then do not preempt the thread running, which is the
    event loop holding the GIL the writer needs before it can do anything. The writer runs when the
    loop releases the GIL and sleeps, or at the next tick, instead of being switched in only to wait
    for the GIL and switched out. Measured on one core (bench/RESULTS.md, fourth round): 10-12 % less
    CPU and a third off the median latency at half the maximum rate; at saturation 2-3 % more 1-event
    writes a second and 3.5-5 % fewer 10-event ones. Nowhere to do it (not Linux), or not allowed: the
    writer runs as any thread."""
    policy = getattr(os, "SCHED_BATCH", None)
    if policy is None:
        return
    try:
        os.sched_setscheduler(0, policy, os.sched_param(0))  # 0: this thread
    except OSError as error:
        log.debug("sqlite writer: SCHED_BATCH not set (%s)", error)


def _settle_committed(batch: list[_Queued], results: list[Any]) -> None:
    """A committed batch's futures: one wake-up for all when they share a loop (the usual case)."""
    loop = batch[0][2]
    for queued in batch:
        if queued[2] is not loop:
            return _settle([(w, result, None) for w, result in zip(batch, results)])
    try:
        loop.call_soon_threadsafe(_resolve_committed, batch, results)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass


def _resolve_committed(batch: list[_Queued], results: list[Any]) -> None:
    for (_, future, _), result in zip(batch, results):
        if isinstance(result, AfterCommit):
            result = _after_commit(result)
        if not future.done():  # done: cancelled by its caller; the write happened anyway
            future.set_result(result)


def _after_commit(result: AfterCommit) -> Any:
    """Committed: run its work before the caller hears of the write; the outcome whatever it did."""
    try:
        result.after_commit()
    except Exception:  # a bug after the commit must not leave this batch's callers waiting
        log.exception("after a commit (the write is stored): %s failed", type(result).__name__)
    return result.outcome()


def _settle(outcomes: Iterable[Outcome]) -> None:
    """Resolve futures on their own loops, with one wake-up per loop rather than per write."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, BaseException | None]]]
    by_loop = defaultdict(list)
    for (_, future, loop), result, error in outcomes:
        by_loop[loop].append((future, result, error))
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, settled)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass


def _resolve(settled: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, error in settled:
        if isinstance(result, AfterCommit):
            result = _after_commit(result)
        if future.done():  # cancelled by its caller; the write happened anyway
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)
