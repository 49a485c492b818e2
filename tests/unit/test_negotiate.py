"""Negotiate's exact bytes in-process (no server): the transports offered, in ASP.NET's order, with
their transfer formats, as --transport filters them; v0 and v1; useStatefulReconnect; the 503 at
--max-connections."""

from __future__ import annotations

import re

import httpx
import pytest
from starlette.applications import Starlette

from hub.signalr.options import SignalROptions
from hub.signalr.connections import ConnectionSlots
from hub.signalr.endpoint import HubEndpoint
from hub.signalr.hub import Hub
from hub.signalr.transports import TRANSPORTS
from hub.signalr.user import NamedUser

WS = b'{"transport":"WebSockets","transferFormats":["Text","Binary"]}'
SSE = b'{"transport":"ServerSentEvents","transferFormats":["Text"]}'
LP = b'{"transport":"LongPolling","transferFormats":["Text","Binary"]}'


async def negotiate(endpoint: HubEndpoint, query: str = "") -> httpx.Response:
    app = Starlette(routes=endpoint.routes)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://hub") as client:
        return await client.post("/hub/negotiate" + query)


def masked(body: bytes) -> bytes:
    return re.sub(rb'"(connectionId|connectionToken)":"[A-Za-z0-9_-]{22}"', rb'"\1":"ID"', body)


def endpoint(transports: tuple[str, ...], **options) -> HubEndpoint:
    return HubEndpoint("/hub", Hub(), SignalROptions(**options), lambda request: NamedUser("alice"), transports=transports)


@pytest.mark.parametrize(
    ("allowed", "offered"),
    [
        (("WebSockets", "ServerSentEvents", "LongPolling"), b",".join([WS, SSE, LP])),
        (("LongPolling", "ServerSentEvents", "WebSockets"), b",".join([WS, SSE, LP])),  # ASP.NET's order, not the flags'
        (("WebSockets",), WS),
        (("ServerSentEvents", "LongPolling"), b",".join([SSE, LP])),
        (("LongPolling",), LP),
    ],
)
async def test_negotiate_offers_the_allowed_transports_in_one_order(allowed, offered) -> None:
    reply = await negotiate(endpoint(allowed), "?negotiateVersion=1")
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
    assert masked(reply.content) == (
        b'{"negotiateVersion":1,"connectionId":"ID","connectionToken":"ID","availableTransports":[' + offered + b"]}"
    )


def test_every_transport_is_registered_once_by_name() -> None:
    assert [t.name for t in TRANSPORTS] == ["WebSockets", "ServerSentEvents", "LongPolling"]
    assert [[f.value for f in t.transfer_formats] for t in TRANSPORTS] == [["Text", "Binary"], ["Text"], ["Text", "Binary"]]


@pytest.mark.parametrize("query", ["", "?negotiateVersion=0", "?negotiateVersion=x", "?negotiateVersion=0&useStatefulReconnect=true"])
async def test_negotiate_v0_has_no_token(query) -> None:
    reply = await negotiate(endpoint(("WebSockets", "LongPolling"), stateful_reconnect=False), query)
    assert masked(reply.content) == b'{"negotiateVersion":0,"connectionId":"ID","availableTransports":[' + WS + b"," + LP + b"]}"


@pytest.mark.parametrize(
    ("allowed", "stateful", "query", "offered"),
    [
        (("WebSockets",), True, "?negotiateVersion=1&useStatefulReconnect=true", True),
        (("WebSockets",), True, "?negotiateVersion=7&useStatefulReconnect=TRUE", True),
        (("WebSockets",), True, "?negotiateVersion=1", False),  # not asked: a client that did not ask fails on it
        (("WebSockets",), False, "?negotiateVersion=1&useStatefulReconnect=true", False),
        (("LongPolling",), True, "?negotiateVersion=1&useStatefulReconnect=true", False),  # WebSockets only
    ],
)
async def test_use_stateful_reconnect_is_offered_only_when_asked_and_on_websockets(allowed, stateful, query, offered) -> None:
    reply = await negotiate(endpoint(allowed, stateful_reconnect=stateful), query)
    assert masked(reply.content).endswith(b'],"useStatefulReconnect":true}' if offered else b"]}")


async def test_negotiate_past_max_connections_is_503_with_retry_after() -> None:
    full = HubEndpoint("/hub", Hub(), SignalROptions(), lambda request: NamedUser("alice"), slots=ConnectionSlots(1))
    assert (await negotiate(full)).status_code == 200
    reply = await negotiate(full)
    assert (reply.status_code, reply.headers["retry-after"]) == (503, "5")
    assert reply.content == (
        b'{"error":"The server has reached its limit of 1 connections (--max-connections); retry later."}'
    )
