"""Streams in both directions through a real HubConnection and HubDispatcher, with exact JSON
records and ASP.NET's error texts (no server process: a fake transport records the frames)."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

import pytest

from hub.signalr.call import CallContext, HubError
from hub.signalr.hub import Hub, hub_method
from hub.signalr.streaming import UPLOAD_QUEUE_SIZE

from signalr_fakes import completions, connect, frame, items_of


class StreamingHub(Hub):
    def __init__(self) -> None:
        self.received: list[Any] = []
        self.cleaned_up = asyncio.Event()
        self.gate = asyncio.Event()

    @hub_method("Upload", streams=1)
    async def upload(self, call: CallContext, prefix: str, items: AsyncIterator[Any]) -> list[str]:
        out = []
        async for item in items:
            self.received.append(item)
            out.append(f"{prefix}{item}")
        return out

    @hub_method("UploadFirstOnly", streams=1)
    async def upload_first_only(self, call: CallContext, items: AsyncIterator[Any]) -> Any:
        async for item in items:
            return item
        return None

    @hub_method("Stalled", streams=1)
    async def stalled(self, call: CallContext, items: AsyncIterator[Any]) -> str:
        await self.gate.wait()  # never reads its stream until the gate opens
        return "done"

    @hub_method("Two", streams=2)
    async def two(self, call: CallContext, a: AsyncIterator[Any], b: AsyncIterator[Any]) -> list[list[Any]]:
        return [[x async for x in a], [y async for y in b]]

    @hub_method("Counter")
    async def counter(self, call: CallContext, n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    @hub_method("Forever")
    async def forever(self, call: CallContext) -> AsyncIterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
                await asyncio.sleep(0.001)
        finally:
            self.cleaned_up.set()

    @hub_method("FailAfterOne")
    async def fail_after_one(self, call: CallContext) -> AsyncIterator[int]:
        yield 1
        raise HubError("the sensor went away")

    @hub_method("Crash")
    async def crash(self, call: CallContext) -> AsyncIterator[int]:
        yield 1
        raise RuntimeError("secret internals")

    @hub_method("Plain")
    async def plain(self, call: CallContext, x: Any) -> Any:
        return x


@pytest.fixture
async def setup():
    hub = StreamingHub()
    conn, transport = await connect(hub)
    yield hub, conn, transport
    conn.gone()


# --- client to server ----------------------------------------------------------------------------


async def test_upload_items_then_completion_completes_the_invocation(setup) -> None:
    hub, conn, transport = setup
    await conn.receive(frame({"type": 1, "invocationId": "1", "target": "Upload", "arguments": ["x"], "streamIds": ["s"]}))
    await conn.receive(frame({"type": 2, "invocationId": "s", "item": 1}, {"type": 2, "invocationId": "s", "item": 2}))
    await conn.receive(frame({"type": 3, "invocationId": "s"}))
    records = await transport.wait_for(lambda r: completions(r, "1"))
    assert completions(records, "1") == [{"type": 3, "invocationId": "1", "result": ["x1", "x2"]}]
    assert "s" not in conn.streams.uploads


async def test_other_invocations_run_while_an_upload_is_open(setup) -> None:
    hub, conn, transport = setup
    await conn.receive(frame({"type": 1, "invocationId": "1", "target": "Upload", "arguments": ["x"], "streamIds": ["s"]}))
    await conn.receive(frame({"type": 1, "invocationId": "2", "target": "Plain", "arguments": [5]}))
    records = await transport.wait_for(lambda r: completions(r, "2"))
    assert completions(records, "2") == [{"type": 3, "invocationId": "2", "result": 5}]
    assert not completions(records, "1")
    await conn.receive(frame({"type": 3, "invocationId": "s"}))
    records = await transport.wait_for(lambda r: completions(r, "1"))
    assert completions(records, "1")[0]["result"] == []


async def test_client_error_on_its_stream_fails_the_invocation_with_its_text(setup) -> None:
    hub, conn, transport = setup
    await conn.receive(frame({"type": 1, "invocationId": "1", "target": "Upload", "arguments": ["x"], "streamIds": ["s"]}))
    await conn.receive(frame({"type": 2, "invocationId": "s", "item": 1}, {"type": 3, "invocationId": "s", "error": "cable cut"}))
    records = await transport.wait_for(lambda r: completions(r, "1"))
    assert completions(records, "1") == [{
        "type": 3,
        "invocationId": "1",
        "error": "An unexpected error occurred invoking 'Upload' on the server. "
        "HubException: The client ended stream 's' with an error: cable cut",
    }]
    assert hub.received == [1]


@pytest.mark.parametrize(
    "target, stream_ids, text",
    [
        ("Upload", [], "HubException: Client sent 0 stream(s), Hub method expects 1."),
        ("Upload", ["a", "b"], "HubException: Client sent 2 stream(s), Hub method expects 1."),
        ("Plain", ["a"], "HubException: Client sent 1 stream(s), Hub method expects 0."),
    ],
)
async def test_stream_count_mismatch_uses_the_aspnet_text(setup, target, stream_ids, text) -> None:
    hub, conn, transport = setup
    args = ["x"] if target in ("Upload", "Plain") else []
    await conn.receive(frame({"type": 1, "invocationId": "1", "target": target, "arguments": args, "streamIds": stream_ids}))
    records = await transport.wait_for(lambda r: completions(r, "1"))
    assert completions(records, "1")[0]["error"] == f"An unexpected error occurred invoking '{target}' on the server. {text}"
    assert conn.streams.uploads == {}


async def test_stream_id_already_in_use_is_refused(setup) -> None:
    hub, conn, transport = setup
    await conn.receive(frame({"type": 1, "invocationId": "1", "target": "Upload", "arguments": ["x"], "streamIds": ["s"]}))
    await conn.receive(frame({"type": 1, "invocationId": "2", "target": "Upload", "arguments": ["y"], "streamIds": ["s"]}))
    await conn.receive(frame({"type": 1, "invocationId": "3", "target": "Two", "arguments": [], "streamIds": ["t", "t"]}))
    records = await transport.wait_for(lambda r: completions(r, "2") and completions(r, "3"))
    assert completions(records, "2")[0]["error"].endswith("HubException: Stream ID 's' is already in use.")
    assert completions(records, "3")[0]["error"].endswith("HubException: Stream ID 't' is already in use.")


async def test_two_streams_in_one_invocation(setup) -> None:
    hub, conn, transport = setup
    await conn.receive(frame({"type": 1, "invocationId": "1", "target": "Two", "arguments": [], "streamIds": ["a", "b"]}))
    await conn.receive(frame(
        {"type": 2, "invocationId": "b", "item": "b1"},
        {"type": 2, "invocationId": "a", "item": "a1"},
        {"type": 3, "invocationId": "a"},
        {"type": 3, "invocationId": "b"},
    ))
    records = await transport.wait_for(lambda r: completions(r, "1"))
    assert completions(records, "1")[0]["result"] == [["a1"], ["b1"]]


async def test_items_for_unknown_streams_and_after_the_method_returned_are_ignored(setup) -> None:
    hub, conn, transport = setup
    await conn.receive(frame({"type": 2, "invocationId": "nope", "item": 1}, {"type": 3, "invocationId": "nope"}))
    await conn.receive(frame({"type": 1, "invocationId": "1", "target": "UploadFirstOnly", "arguments": [], "streamIds": ["s"]}))
    await conn.receive(frame({"type": 2, "invocationId": "s", "item": "first"}))
    records = await transport.wait_for(lambda r: completions(r, "1"))
    assert completions(records, "1")[0]["result"] == "first"
    # More than the upload buffer holds: must not block the connection now the method is done.
    many = [{"type": 2, "invocationId": "s", "item": i} for i in range(UPLOAD_QUEUE_SIZE + 10)]
    await asyncio.wait_for(conn.receive(frame(*many, {"type": 3, "invocationId": "s"})), 2)
    await conn.receive(frame({"type": 1, "invocationId": "2", "target": "Plain", "arguments": [1]}))
    await transport.wait_for(lambda r: completions(r, "2"))


async def test_a_full_upload_holds_up_the_connection_until_the_method_reads(setup) -> None:
    hub, conn, transport = setup
    await conn.receive(frame({"type": 1, "invocationId": "1", "target": "Stalled", "arguments": [], "streamIds": ["s"]}))
    many = [{"type": 2, "invocationId": "s", "item": i} for i in range(UPLOAD_QUEUE_SIZE + 1)]
    blocked = asyncio.ensure_future(conn.receive(frame(*many)))
    await asyncio.sleep(0.05)
    assert not blocked.done()  # back-pressure: the receive loop waits for the hub method
    hub.gate.set()  # the method returns without reading: its stream is closed, the wait released
    await asyncio.wait_for(blocked, 2)
    records = await transport.wait_for(lambda r: completions(r, "1"))
    assert completions(records, "1")[0]["result"] == "done"


async def test_fire_and_forget_upload_is_never_answered(setup) -> None:
    hub, conn, transport = setup
    await conn.receive(frame({"type": 1, "target": "Upload", "arguments": ["x"], "streamIds": ["s"]}))
    await conn.receive(frame({"type": 2, "invocationId": "s", "item": 7}, {"type": 3, "invocationId": "s"}))
    await conn.receive(frame({"type": 1, "invocationId": "9", "target": "Plain", "arguments": [0]}))
    records = await transport.wait_for(lambda r: completions(r, "9"))
    await asyncio.sleep(0.02)
    assert [r for r in transport.records() if r.get("type") == 3] == completions(records, "9")
    assert hub.received == [7]


# --- server to client ----------------------------------------------------------------------------


async def test_stream_items_then_completion_without_result(setup) -> None:
    hub, conn, transport = setup
    await conn.receive(frame({"type": 4, "invocationId": "1", "target": "Counter", "arguments": [3]}))
    records = await transport.wait_for(lambda r: completions(r, "1"))
    assert records == [
        {"type": 2, "invocationId": "1", "item": 0},
        {"type": 2, "invocationId": "1", "item": 1},
        {"type": 2, "invocationId": "1", "item": 2},
        {"type": 3, "invocationId": "1"},
    ]


async def test_cancel_invocation_stops_the_generator_and_ends_with_a_plain_completion(setup) -> None:
    hub, conn, transport = setup
    await conn.receive(frame({"type": 4, "invocationId": "1", "target": "Forever", "arguments": []}))
    await transport.wait_for(lambda r: len(items_of(r, "1")) >= 3)
    await conn.receive(frame({"type": 5, "invocationId": "1"}))
    await asyncio.wait_for(hub.cleaned_up.wait(), 2)
    records = await transport.wait_for(lambda r: completions(r, "1"))
    assert completions(records, "1") == [{"type": 3, "invocationId": "1"}]
    count = len(items_of(records, "1"))
    await asyncio.sleep(0.02)
    assert len(items_of(transport.records(), "1")) == count  # nothing after the Completion
    assert "1" not in conn.streams.running


async def test_the_connection_ending_stops_its_streams(setup) -> None:
    hub, conn, transport = setup
    await conn.receive(frame({"type": 4, "invocationId": "1", "target": "Forever", "arguments": []}))
    await transport.wait_for(lambda r: len(items_of(r, "1")) >= 1)
    conn.gone()
    await asyncio.wait_for(hub.cleaned_up.wait(), 2)


async def test_a_generator_error_ends_the_stream_with_the_aspnet_text(setup) -> None:
    hub, conn, transport = setup
    await conn.receive(frame({"type": 4, "invocationId": "1", "target": "FailAfterOne", "arguments": []}))
    await conn.receive(frame({"type": 4, "invocationId": "2", "target": "Crash", "arguments": []}))
    records = await transport.wait_for(lambda r: completions(r, "1") and completions(r, "2"))
    assert items_of(records, "1") == [1]
    assert completions(records, "1")[0]["error"] == (
        "An error occurred on the server while streaming results. HubException: the sensor went away"
    )
    # An unexpected exception's text stays on the server.
    assert completions(records, "2")[0]["error"] == "An error occurred on the server while streaming results."


async def test_invocation_kind_must_match_the_method(setup) -> None:
    hub, conn, transport = setup
    await conn.receive(frame({"type": 1, "invocationId": "1", "target": "Counter", "arguments": [1]}))
    await conn.receive(frame({"type": 4, "invocationId": "2", "target": "Plain", "arguments": [1]}))
    await conn.receive(frame({"type": 4, "invocationId": "3", "target": "counter", "arguments": []}))
    records = await transport.wait_for(lambda r: all(completions(r, i) for i in "123"))
    assert completions(records, "1")[0]["error"] == (
        "The client attempted to invoke the streaming 'Counter' method with a non-streaming invocation."
    )
    assert completions(records, "2")[0]["error"] == (
        "The client attempted to invoke the non-streaming 'Plain' method with a streaming invocation."
    )
    assert completions(records, "3")[0]["error"] == (
        "Failed to invoke 'counter' due to an error on the server. InvalidDataException: "
        "Invocation provides 0 argument(s) but target expects 1."
    )


async def test_stream_invocation_id_in_use(setup) -> None:
    hub, conn, transport = setup
    await conn.receive(frame({"type": 4, "invocationId": "1", "target": "Forever", "arguments": []}))
    await transport.wait_for(lambda r: items_of(r, "1"))
    await conn.receive(frame({"type": 4, "invocationId": "1", "target": "Counter", "arguments": [1]}))
    records = await transport.wait_for(lambda r: completions(r, "1"))
    assert completions(records, "1")[0] == {"type": 3, "invocationId": "1", "error": "Invocation ID '1' is already in use."}
    await conn.receive(frame({"type": 5, "invocationId": "1"}))
    await asyncio.wait_for(hub.cleaned_up.wait(), 2)

