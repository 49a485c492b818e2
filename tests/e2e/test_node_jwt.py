"""The real `@microsoft/signalr` client (Node) with `accessTokenFactory` returning HS256 JWTs minted
here with PyJWT, against a hub started with --jwt-secret (issue 14): a `write:cars` token writes to
cars and gets the unauthorized Completion for boats on the same, still open, connection; an expired
token cannot connect; a token that expires while connected gets the Close that lets
withAutomaticReconnect() come back, with the fresh token its factory returns."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from hub.signalr.dispatcher import unauthorized
from hub.signalr.user import EXPIRED

from .support import make_events

pytestmark = pytest.mark.e2e

SECRET = "jwt-test-secret-of-at-least-32-bytes-4b1d"
#: The Close a connection gets at its token's exp, as the client's trace shows it.
EXPIRY_CLOSE = '{"type":7,"error":"The access token expired; reconnect with a new one.","allowReconnect":true}'


def mint(scope: str, expires_in: float, sub: str = "car-17") -> str:
    return jwt.encode({"sub": sub, "scope": scope, "exp": int(time.time() + expires_in)}, SECRET, algorithm="HS256")


@pytest.fixture
def jwt_hub(hub_server):
    return hub_server("--jwt-secret", SECRET)  # the default --token stays: the admin reads back over HTTP


def received_frames(trace: list[dict]) -> str:
    return "\n".join(line["message"] for line in trace if "data received" in line["message"])


@pytest.mark.parametrize("protocol", ["json", "messagepack"])
def test_a_write_cars_jwt_writes_cars_and_is_refused_boats_and_the_connection_goes_on(jwt_hub, node, unique, protocol):
    stream_id = unique("s")
    first, second = make_events(2, "jwt")
    out = node("errors-then-ok.mjs", {
        "url": jwt_hub.hub_url, "token": mint("write:cars", 300), "topic": "cars", "streamId": stream_id, "protocol": protocol,
        "calls": [
            {"method": "SendEventData", "args": ["cars", stream_id, [first]]},
            {"method": "SendEventData", "args": ["boats", stream_id, [first]]},
        ],
        "goodEvent": second, "goodEventB": make_events(1, "jwt-b", start=2)[0],
    })
    assert out["calls"] == [{"ok": True, "result": None}, {"ok": False, "error": unauthorized("SendEventData")}]
    assert out["stateA"] == "Connected" and out["closedA"] is None
    assert out["afterA"] == {"ok": True, "result": None} and out["afterB"] == {"ok": True, "result": None}
    assert [e["id"] for e in jwt_hub.get_events("cars", stream_id)] == ["jwt-0", "jwt-1", "jwt-b-2"]
    with jwt_hub.http() as http:
        assert "boats" not in [t["topic"] for t in http.get("/topics").json()]


def test_an_expired_jwt_cannot_connect(jwt_hub, node, unique):
    expired = mint("write:cars", -1)
    out = node("send-events.mjs", {"url": jwt_hub.hub_url, "token": expired, "topic": "cars",
                                   "streamId": unique("s"), "batches": [make_events(1)]})
    assert out["started"] is False and "401" in out["startError"], out
    response = httpx.post(f"{jwt_hub.hub_url}/negotiate", params={"negotiateVersion": 1},
                          headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "transport, protocol",
    [("WebSockets", "json"), ("ServerSentEvents", "json"), ("LongPolling", "json"), ("WebSockets", "messagepack")],
)
def test_a_jwt_expiring_while_connected_is_closed_and_the_client_reconnects_with_a_fresh_one(
    jwt_hub, node, unique, transport, protocol
):
    stream_id = unique("s")
    # The fresh token also grants boats: a boats write that works after the reconnect shows the new
    # connection carries the new token (the old one was refused it).
    tokens = [mint("write:cars", 3), mint("write:cars write:boats", 300)]
    before, after = make_events(1, "before"), make_events(1, "after", start=1)
    out = node("token-refresh.mjs", {
        "url": jwt_hub.hub_url, "tokens": tokens, "transport": transport, "protocol": protocol, "trace": True,
        "before": [{"method": "SendEventData", "args": ["cars", stream_id, before]},
                   {"method": "SendEventData", "args": ["boats", stream_id, before]}],
        "after": [{"method": "SendEventData", "args": ["boats", stream_id, after]},
                  {"method": "SendEventData", "args": ["cars", stream_id, after]}],
    })
    assert out["started"], out
    assert out["before"] == [{"ok": True, "result": None}, {"ok": False, "error": unauthorized("SendEventData")}]
    assert out["reconnecting"] == f"Server returned an error on close: {EXPIRED}", out
    assert out["reconnected"] and out["closed"] is None and out["state"] == "Connected", out
    if protocol == "json":  # the frame as sent (MessagePack's is binary; the client's words above say the same)
        assert EXPIRY_CLOSE in received_frames(out["trace"])
    assert out["factory"][0] == 0 and out["factory"][-1] == 1, out["factory"]
    assert out["after"] == [{"ok": True, "result": None}] * 2
    assert [e["id"] for e in jwt_hub.get_events("boats", stream_id)] == ["after-1"]
    assert [e["id"] for e in jwt_hub.get_events("cars", stream_id)] == ["before-0", "after-1"]
