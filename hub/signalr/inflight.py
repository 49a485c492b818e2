"""The work one connection runs beside its receive loop, and its bounds.

An invocation may leave work running once the receive loop has moved on: the dispatcher hands it
back as a `Job` (dispatcher.py) and the connection runs it here as a task; a Completion that waits
on a store's future comes back as a `PendingCompletion`, run as one done-callback on that future
(no task, no further callback: a callback is a Handle and a loop pass each). `InFlight` holds each until it
ends (`drain` waits for them when the server shuts down) and bounds them:
- deferred Completions (`JobKind.COMPLETION`): at most --max-invocations-per-connection pending
  (`full`); past it the connection reads nothing more from its client until one completes
  (`wait_for_room`, back-pressure through the transport, nothing dropped), and is `stalled`
  meanwhile, so that the client timeout does not run while the server is the one not reading. They
  run to their end when the connection ends (what they wrote stays written);
- stream invocations, both directions: `ConnectionStreams` (streaming.py) counts them against
  --max-streams-per-connection; they are cancelled when the connection ends (`cancel_streams`).
Made by a connection's first Job or stream: an idle connection holds none.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from .dispatcher import Job, JobKind, PendingCompletion
from .observer import HubObserver
from .streaming import ConnectionStreams


class InFlight:
    __slots__ = (
        "max_pending", "pending", "stalled", "streams", "observer", "_tasks", "_stream_tasks", "_settled", "_ended",
        "_queued",
    )  # fmt: skip

    def __init__(self, max_pending: int, max_streams: int, observer: HubObserver | None = None):
        self.max_pending = max_pending
        self.observer = observer  # told when the bound holds the client back
        self.pending = 0  # deferred Completions not queued yet
        self.stalled = False  # the connection stopped reading its client until one completes
        self.streams = ConnectionStreams(max_streams)
        self._tasks: set[asyncio.Future] = set()  # every Job running
        self._stream_tasks: set[asyncio.Future] = set()  # the stream Jobs, cancelled with the connection
        self._settled: asyncio.Event | None = None  # made when reading has to wait for a Completion
        self._ended = False  # the connection is gone: streams started now stop at once
        self._queued = self._completion_queued  # bound once: each PendingCompletion's `then`

    @property
    def full(self) -> bool:
        return self.pending >= self.max_pending

    def run(self, job: Job | PendingCompletion) -> asyncio.Future:
        """Start `job`, counted against its bound until it ends."""
        if type(job) is PendingCompletion:  # answered from its future's callback: no task to make
            future = job.future
            self.pending += 1
            self._tasks.add(future)
            job.then = self._queued
            future.add_done_callback(job.settle)
            return future
        task = asyncio.ensure_future(job.run)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if job.kind is JobKind.COMPLETION:
            self.pending += 1
            task.add_done_callback(self._completed)
        else:
            self._stream_tasks.add(task)
            task.add_done_callback(self._stream_tasks.discard)
            self.streams.opened(task, job.invocation_id)
            if self._ended:
                task.cancel()  # the connection ended while the invocation was being applied
        return task

    def _completion_queued(self, future: asyncio.Future) -> None:
        self._tasks.discard(future)
        self._completed(future)

    def _completed(self, _task: asyncio.Future) -> None:
        self.pending -= 1
        if self._settled is not None:
            self._settled.set()

    async def wait_for_room(self, connected: Callable[[], bool]) -> None:
        """Until fewer than `max_pending` Completions are pending, or `connected()` is False (then
        `wake` is called)."""
        if self.observer is not None:
            self.observer.refused("max_invocations")
        self.stalled = True
        try:
            while self.full and connected():
                if self._settled is None:
                    self._settled = asyncio.Event()
                self._settled.clear()
                await self._settled.wait()
        finally:
            self.stalled = False

    def wake(self) -> None:
        """The connection is ending: a `wait_for_room` returns."""
        if self._settled is not None:
            self._settled.set()

    def cancel_streams(self) -> None:
        """The connection is gone: its streams and uploads stop, and any started later."""
        self._ended = True
        for task in list(self._stream_tasks):
            task.cancel()

    async def drain(self, deadline: float) -> None:
        """Wait, until `deadline` (time.monotonic), for every Job running to end."""
        running = [task for task in self._tasks if not task.done()]
        if running:
            await asyncio.wait(running, timeout=max(0.0, deadline - time.monotonic()))
