"""A HubConnection driven in-process: a fake transport that records frames, and a client side that
speaks JSON records to it. For tests of the SignalR layer (dispatch, streams, stateful reconnect)
that need exact frames and no server process."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hub.signalr.connection import HubConnection
from hub.signalr.dispatcher import HubDispatcher
from hub.signalr.hub import Hub
from hub.signalr.options import SignalROptions
from hub.signalr.protocols.base import TransferFormat
from hub.signalr.transports.base import Transport
from hub.signalr.user import User

RS = "\x1e"


class FakeTransport(Transport):
    name = "fake"
    transfer_formats = frozenset({TransferFormat.TEXT, TransferFormat.BINARY})

    def __init__(self) -> None:
        self.frames: list[str | bytes] = []
        self.closed = False
        self._changed = asyncio.Event()
        self._parsed: list[dict] = []
        self._parsed_frames = 0

    async def send(self, data: str | bytes) -> None:
        if self.closed:
            raise ConnectionError("closed")
        self.frames.append(data)
        self._changed.set()

    async def close(self) -> None:
        self.closed = True
        self._changed.set()

    def records(self) -> list[dict]:
        """Every JSON record sent so far (handshake reply included), pings excluded."""
        if self._parsed_frames > len(self.frames):  # frames were cleared
            self._parsed, self._parsed_frames = [], 0
        for frame in self.frames[self._parsed_frames :]:
            assert isinstance(frame, str), frame
            for text in frame.split(RS)[:-1]:
                record = json.loads(text)
                if record.get("type") != 6:
                    self._parsed.append(record)
        self._parsed_frames = len(self.frames)
        return list(self._parsed)

    async def wait_for(self, predicate, timeout: float = 2.0) -> list[dict]:
        """Wait until predicate(records) is true; return the records."""
        async with asyncio.timeout(timeout):
            while True:
                records = self.records()
                if predicate(records):
                    return records
                self._changed.clear()
                await self._changed.wait()


def hold_writes(transport: Transport) -> asyncio.Event:
    """Make the transport's writes wait until the returned event is set: a client that does not read."""
    release = asyncio.Event()
    write = transport.send

    async def held(data: str | bytes) -> None:
        await release.wait()
        await write(data)

    transport.send = held  # type: ignore[method-assign]
    return release


def frame(*messages: dict) -> str:
    return "".join(json.dumps(m) + RS for m in messages)


async def connect(
    hub: Hub,
    *,
    version: int = 1,
    stateful: bool = False,
    options: SignalROptions | None = None,
    user: User | None = None,
    connection_id: str = "c1",
    dispatcher: HubDispatcher | None = None,
) -> tuple[HubConnection, FakeTransport]:
    """A HubConnection past its JSON handshake. `user`: who it is (CallContext.principal); several
    connections to one hub share its `dispatcher`."""
    transport = FakeTransport()
    dispatcher = dispatcher or HubDispatcher(hub)
    conn = HubConnection(connection_id, transport, dispatcher, options or SignalROptions(), user=user)
    conn.allow_stateful = stateful
    await conn.receive(json.dumps({"protocol": "json", "version": version}) + RS, via=transport)
    assert transport.records()[0] == {}, transport.frames
    transport.frames.clear()
    transport.records()
    return conn, transport


def invoke(iid: str, target: str, *args: Any) -> dict:
    return {"type": 1, "invocationId": iid, "target": target, "arguments": list(args)}


async def call(conn: HubConnection, transport: FakeTransport, iid: str, target: str, *args: Any) -> dict:
    """Invoke `target` and return its Completion."""
    await conn.receive(frame(invoke(iid, target, *args)), via=transport)
    return completions(await transport.wait_for(lambda r: completions(r, iid)), iid)[0]


def received(transport: FakeTransport, target: str) -> list:
    """The arguments of every server-to-client call of `target` so far."""
    return [r["arguments"] for r in transport.records() if r.get("target") == target]


def completions(records: list[dict], invocation_id: str) -> list[dict]:
    return [r for r in records if r.get("type") == 3 and r.get("invocationId") == invocation_id]


def items_of(records: list[dict], invocation_id: str) -> list[Any]:
    return [r["item"] for r in records if r.get("type") == 2 and r.get("invocationId") == invocation_id]
