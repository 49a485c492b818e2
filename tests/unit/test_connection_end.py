"""The one way a connection ends (`HubConnection.end`), in-process: the reason each cause gives, the
exact goodbye frames, and what may still happen once a connection is ending."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hub.signalr.call import CallContext
from hub.signalr.close_reason import CloseReason
from hub.signalr.connection import HubConnection
from hub.signalr.dispatcher import HubDispatcher
from hub.signalr.hub import Hub, hub_method
from hub.signalr.keepalive import KeepAlive
from hub.signalr.messages import Close
from hub.signalr.options import SignalROptions
from hub.signalr.session import State

from signalr_fakes import RS, FakeTransport, connect, frame, hold_writes


class EchoHub(Hub):
    def __init__(self) -> None:
        self.gone: list[str] = []

    @hub_method("Echo")
    async def echo(self, call: CallContext, value: Any) -> Any:
        return value

    def on_disconnected(self, call: CallContext) -> None:
        self.gone.append(call.connection_id)


def echo(iid: str, value: Any) -> dict:
    return {"type": 1, "invocationId": iid, "target": "Echo", "arguments": [value]}


def test_close_reasons_are_the_metrics_labels() -> None:
    assert [reason.value for reason in CloseReason] == [
        "normal", "error", "timeout", "fell_behind", "shutdown", "token_expired", "token_revoked",
    ]  # fmt: skip


async def test_the_clients_close_ends_normally_after_what_was_queued() -> None:
    hub = EchoHub()
    conn, transport = await connect(hub)
    await conn.receive(frame(echo("1", "a"), {"type": 7}, echo("2", "never")), via=transport)
    assert transport.records() == [{"type": 3, "invocationId": "1", "result": "a"}]  # no Close of ours
    assert conn.state is State.CLOSED and conn.session.close_reason is CloseReason.NORMAL
    assert transport.closed and conn.closed.is_set() and hub.gone == ["c1"]


async def test_a_bad_record_ends_with_an_error_close() -> None:
    conn, transport = await connect(EchoHub())
    await conn.receive("garbage" + RS, via=transport)
    assert transport.frames == ['{"type":7,"error":"Connection closed with an error. Error reading JSON."}' + RS]
    assert conn.session.close_reason is CloseReason.ERROR and transport.closed


async def test_shutdown_tells_the_client_it_may_reconnect() -> None:
    conn, transport = await connect(EchoHub())
    await conn.close(allow_reconnect=True)
    assert transport.frames == ['{"type":7,"allowReconnect":true}' + RS]
    assert conn.session.close_reason is CloseReason.SHUTDOWN


async def test_timeouts_end_with_their_texts() -> None:
    options = SignalROptions(handshake_timeout=1, client_timeout=2)
    keepalive = KeepAlive(options)
    silent = HubConnection("h", FakeTransport(), HubDispatcher(EchoHub()), options)
    keepalive.check(silent, silent.created + 1)
    await silent.goodbye_written()
    assert silent.transport.frames == ['{"error":"Handshake was canceled."}' + RS]  # type: ignore[attr-defined]
    assert silent.session.close_reason is CloseReason.TIMEOUT
    conn, transport = await connect(EchoHub(), options=options)
    await conn.receive(frame({"type": 6}), via=transport)
    assert conn.last_received is not None
    keepalive.check(conn, conn.last_received + 2)
    await conn.goodbye_written()
    assert transport.records()[-1] == {
        "type": 7, "error": "Connection closed with an error. The client timed out: nothing received for 2 s.",
    }  # fmt: skip
    assert conn.session.close_reason is CloseReason.TIMEOUT


async def test_once_ending_nothing_more_is_read_or_queued_and_a_second_end_keeps_the_first_reason() -> None:
    hub = EchoHub()
    conn, transport = await connect(hub)
    release = hold_writes(transport)
    ending = conn.end(CloseReason.TIMEOUT, Close(error="bye"))
    assert conn.state is State.CLOSING
    await conn.receive(frame(echo("1", "late")), via=transport)  # dropped
    assert not conn.post(Close())
    assert conn.end(CloseReason.ERROR, Close(error="again")) is ending
    release.set()
    await ending
    assert transport.records() == [{"type": 7, "error": "bye"}]
    assert conn.session.close_reason is CloseReason.TIMEOUT and conn.state is State.CLOSED


async def test_a_transport_gone_stops_the_work_at_once_and_writes_nothing() -> None:
    hub = EchoHub()
    conn, transport = await connect(hub)
    conn.gone()
    assert conn.closed.is_set() and hub.gone == ["c1"] and conn.state is State.CLOSED
    assert conn.session.close_reason is CloseReason.NORMAL and transport.frames == []
    conn.gone()  # idempotent
    assert hub.gone == ["c1"]


async def test_a_failed_write_closes_the_session_and_the_endpoints_gone_ends_the_connection() -> None:
    hub = EchoHub()
    conn, transport = await connect(hub)
    transport.closed = True  # the peer is gone: the next write raises ConnectionError
    await conn.receive(frame(echo("1", "a")), via=transport)
    await asyncio.sleep(0.01)
    assert conn.state is State.CLOSED and conn.session.close_reason is CloseReason.ERROR
    assert not conn.closed.is_set()  # the hub is told when the endpoint sees the transport end
    conn.gone()
    assert conn.closed.is_set() and hub.gone == ["c1"]


async def test_a_hub_closing_a_client_drops_what_waits_and_says_why() -> None:
    hub = EchoHub()
    conn, transport = await connect(hub)
    assert hub.clients.close("c1", "go away", CloseReason.ERROR)
    assert not hub.gone  # not inside the call that ended it
    await conn.goodbye_written()
    assert hub.gone == ["c1"] and json.loads(transport.frames[-1].rstrip(RS)) == {"type": 7, "error": "go away"}
    assert conn.session.close_reason is CloseReason.ERROR and transport.closed
