"""A hub method's Deferred store future (sqlite, redis settle later), in-process: its Completion is
sent from the future's done-callback (dispatcher.PendingCompletion) exactly as a Task awaiting it
would send it: in the order the futures settle, with the result or ASP.NET's error text, none when
the future is cancelled or the invocation is fire-and-forget; the invocation is counted and timed
once, and --max-invocations-per-connection is freed whatever the outcome."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from hub.metrics.signalr import SignalRMetrics
from hub.signalr.call import CallContext, HubError
from hub.signalr.dispatcher import HubDispatcher
from hub.signalr.hub import Deferred, Hub, hub_method

from signalr_fakes import completions, connect, frame, invoke


class StoreHub(Hub):
    """Each call's result is a future the test settles, as a store's commit would."""

    def __init__(self) -> None:
        self.pending: dict[Any, asyncio.Future] = {}

    @hub_method("Write")
    async def write(self, call: CallContext, key: Any) -> Deferred:
        self.pending[key] = future = asyncio.get_running_loop().create_future()
        return Deferred(future)

    @hub_method("WriteVoid")
    async def write_void(self, call: CallContext, key: Any) -> Deferred:
        self.pending[key] = future = asyncio.get_running_loop().create_future()
        return Deferred(future, void=True)


async def started(hub: StoreHub, conn, transport, *messages: dict) -> None:
    await conn.receive(frame(*messages), via=transport)
    async with asyncio.timeout(2):
        while len(hub.pending) < len(messages):
            await asyncio.sleep(0.01)


def observed(hub: StoreHub) -> tuple[HubDispatcher, SignalRMetrics]:
    dispatcher = HubDispatcher(hub)
    dispatcher.observer = metrics = SignalRMetrics("StoreHub", (m.name for m in dispatcher.methods.values()))
    return dispatcher, metrics


async def test_completions_follow_the_order_the_futures_settle_in_with_their_results() -> None:
    hub = StoreHub()
    dispatcher, metrics = observed(hub)
    conn, transport = await connect(hub, dispatcher=dispatcher)
    await started(hub, conn, transport, invoke("a", "Write", "a"), invoke("b", "WriteVoid", "b"), invoke("c", "Write", "c"))
    assert conn.inflight.pending == 3
    hub.pending["c"].set_result({"n": 3})
    hub.pending["a"].set_result(1)
    hub.pending["b"].set_result(2)  # void: the Completion carries null
    records = await transport.wait_for(lambda r: len([x for x in r if x.get("type") == 3]) == 3)
    assert [(r["invocationId"], r["result"]) for r in records if r.get("type") == 3] == [("c", {"n": 3}), ("a", 1), ("b", None)]
    assert conn.inflight.pending == 0
    assert (metrics.methods["Write"].ok, metrics.methods["WriteVoid"].ok) == (2, 1)
    assert sum(metrics.methods["Write"].durations.counts) == 2
    conn.gone()


async def test_a_failed_future_answers_with_the_error_text_of_a_failed_method() -> None:
    hub = StoreHub()
    dispatcher, metrics = observed(hub)
    conn, transport = await connect(hub, dispatcher=dispatcher)
    await started(hub, conn, transport, invoke("user", "Write", 1), invoke("bug", "Write", 2))
    hub.pending[1].set_exception(HubError("stream is closed"))
    hub.pending[2].set_exception(RuntimeError("internal detail"))
    records = await transport.wait_for(lambda r: completions(r, "user") and completions(r, "bug"))
    assert completions(records, "user")[0]["error"] == (
        "An unexpected error occurred invoking 'Write' on the server. HubException: stream is closed"
    )
    assert completions(records, "bug")[0]["error"] == "An unexpected error occurred invoking 'Write' on the server."
    assert "result" not in completions(records, "bug")[0]
    assert conn.inflight.pending == 0
    assert (metrics.methods["Write"].ok, metrics.methods["Write"].error) == (0, 2)
    conn.gone()


async def test_a_cancelled_future_and_a_fire_and_forget_call_send_nothing_and_free_the_bound() -> None:
    hub = StoreHub()
    dispatcher, metrics = observed(hub)
    conn, transport = await connect(hub, dispatcher=dispatcher)
    no_reply = {"type": 1, "target": "Write", "arguments": ["quiet"]}
    await started(hub, conn, transport, invoke("x", "Write", "x"), no_reply)
    hub.pending["x"].cancel()
    hub.pending["quiet"].set_result(5)
    await conn.receive(frame(invoke("next", "Write", "next")), via=transport)
    hub.pending["next"].set_result(7)
    records = await transport.wait_for(lambda r: completions(r, "next"))
    assert [r["invocationId"] for r in records if r.get("type") == 3] == ["next"]
    assert conn.inflight.pending == 0
    assert metrics.methods["Write"].ok == 2  # the cancelled one is not answered, so not counted
    conn.gone()


async def test_a_future_settling_after_the_connection_ended_frees_the_bound_and_sends_nothing() -> None:
    hub = StoreHub()
    conn, transport = await connect(hub)
    await started(hub, conn, transport, invoke("late", "Write", "late"))
    conn.gone()
    hub.pending["late"].set_result(1)
    await asyncio.wait_for(conn.inflight.drain(time.monotonic() + 2), 3)
    assert conn.inflight.pending == 0
    assert not completions(transport.records(), "late")
