"""Auth on every route (negotiate, WebSocket upgrade, HTTP API), the generated token, and tokens
never reaching the server's logs."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from .support import GRACEFUL_EXIT, SignalrcoreSession, make_events, negotiate

pytestmark = pytest.mark.e2e

BAD_AUTH = [
    pytest.param({}, {}, id="missing"),
    pytest.param({"Authorization": "Bearer wrong-token"}, {}, id="wrong-header"),
    pytest.param({}, {"access_token": "wrong-token"}, id="wrong-query"),
    pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, {}, id="not-bearer"),
]


def assert_401_json(response: httpx.Response) -> None:
    assert response.status_code == 401, (response.status_code, response.text)
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"], body


@pytest.mark.parametrize("headers, params", BAD_AUTH)
def test_negotiate_needs_the_token(shared_hub, headers, params):
    response = httpx.post(f"{shared_hub.hub_url}/negotiate", params={"negotiateVersion": 1, **params}, headers=headers)
    assert_401_json(response)


@pytest.mark.parametrize("how", ["header", "query"])
def test_negotiate_with_the_token(shared_hub, how):
    headers = shared_hub.auth_headers if how == "header" else {}
    params = {"negotiateVersion": 1} | ({"access_token": shared_hub.token} if how == "query" else {})
    response = httpx.post(f"{shared_hub.hub_url}/negotiate", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["negotiateVersion"] == 1
    assert body["connectionId"] and body["connectionToken"]
    websockets = [t for t in body["availableTransports"] if t["transport"] == "WebSockets"]
    assert websockets and "Text" in websockets[0]["transferFormats"], body


@pytest.mark.parametrize("headers, params", BAD_AUTH)
async def test_websocket_upgrade_needs_the_token(shared_hub, headers, params):
    # a connection id obtained with the right token does not make the upgrade any less guarded
    reply = await negotiate(shared_hub.hub_url, shared_hub.token)
    query = "&".join([f"id={reply['connectionToken']}", *(f"{k}={v}" for k, v in params.items())])
    with pytest.raises(InvalidStatus) as failure:
        async with asyncio.timeout(5):
            await connect(f"{shared_hub.ws_url}?{query}", additional_headers=headers, open_timeout=5)
    assert failure.value.response.status_code == 401


@pytest.mark.parametrize("headers, params", BAD_AUTH)
async def test_skip_negotiation_upgrade_needs_the_token(shared_hub, headers, params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    with pytest.raises(InvalidStatus) as failure:
        async with asyncio.timeout(5):
            await connect(f"{shared_hub.ws_url}?{query}", additional_headers=headers, open_timeout=5)
    assert failure.value.response.status_code == 401


@pytest.mark.parametrize("headers, params", BAD_AUTH)
def test_http_api_needs_the_token(shared_hub, unique, headers, params):
    topic, stream_id = unique("t"), unique("s")
    with httpx.Client(base_url=shared_hub.url, headers=headers, timeout=5) as client:
        assert_401_json(client.get("/topics", params=params))
        assert_401_json(client.get(f"/topics/{topic}/streams/{stream_id}/events/data", params=params))
        assert_401_json(
            client.post(f"/topics/{topic}/streams/{stream_id}/events/data", params=params, json=make_events(1))
        )
        assert_401_json(client.post(f"/topics/{topic}/streams", params=params, json={}))
    # the refused write stored nothing
    with shared_hub.http() as client:
        assert client.get(f"/topics/{topic}/streams/{stream_id}").status_code == 404


def test_http_api_accepts_the_token_in_the_query(shared_hub, unique):
    topic, stream_id = unique("t"), unique("s")
    events = make_events(1)
    with httpx.Client(base_url=shared_hub.url, timeout=5) as client:
        response = client.post(
            f"/topics/{topic}/streams/{stream_id}/events/data", params={"access_token": shared_hub.token}, json=events
        )
    assert response.status_code == 200, response.text
    assert shared_hub.get_events(topic, stream_id) == events


def test_health_needs_no_token(shared_hub):
    assert httpx.get(f"{shared_hub.url}/health").status_code == 200


def test_tokens_from_the_environment(hub_server, node, unique):
    server = hub_server(token=None, env={"HUB_TOKENS": "env-token-one,env-token-two"})
    for token in ("env-token-one", "env-token-two"):
        response = httpx.get(f"{server.url}/topics", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, (token, response.text)
    assert httpx.get(f"{server.url}/topics", headers={"Authorization": "Bearer env-token"}).status_code == 401


def test_allow_anonymous_needs_no_token_and_says_so(hub_server, unique):
    server = hub_server("--allow-anonymous", token=None)
    topic, stream_id = unique("t"), unique("s")
    events = make_events(1)
    response = httpx.post(f"{server.url}/topics/{topic}/streams/{stream_id}/events/data", json=events)
    assert response.status_code == 200, response.text
    assert httpx.get(f"{server.url}/topics/{topic}/streams/{stream_id}/events/data").json() == events
    output = (server.stdout_text() + server.stderr_text()).lower()
    assert "anonymous" in output, output


# --- tokens and logs --------------------------------------------------------------------------------


def test_tokens_never_reach_the_logs(hub_server, node, unique):
    secret = "leak-check-token-93ad0c51"
    wrong = "wrong-leak-token-6b1e77f2"
    server = hub_server("--log-level", "debug", token=secret)
    topic, stream_id = unique("t"), unique("s")

    # every way a token can arrive, right and wrong
    with httpx.Client(base_url=server.url, timeout=5) as client:
        assert client.get("/topics", params={"access_token": secret}).status_code == 200
        assert client.get("/topics", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
        assert client.get("/topics", params={"access_token": wrong}).status_code == 401
        assert client.get("/topics", headers={"Authorization": f"Bearer {wrong}"}).status_code == 401
        assert client.post("/hub/negotiate", params={"negotiateVersion": 1, "access_token": wrong}).status_code == 401
    for mode in ("query", "factory"):
        out = node(
            "send-events.mjs",
            {
                "url": server.hub_url,
                "token": secret,
                "tokenMode": mode,
                "topic": topic,
                "streamId": stream_id,
                "batches": [make_events(1, mode)],
            },
        )
        assert out["started"] and out["results"][0]["ok"], out
    out = node(
        "send-events.mjs",
        {"url": server.hub_url, "token": wrong, "tokenMode": "query", "topic": topic, "streamId": stream_id},
    )
    assert not out["started"]
    # signalrcore also copies `Authorization: Bearer …` into every invocation's headers
    session = SignalrcoreSession(server.hub_url, secret)
    try:
        session.start()
        completion = session.invoke("SendEventData", [topic, stream_id, make_events(1, "core")], invocation_id="core")
        assert not getattr(completion, "error", None), completion
    finally:
        session.stop(5)
    assert len(server.get_events(topic, stream_id)) == 3

    assert server.stop() in GRACEFUL_EXIT
    logs = server.stdout_text() + server.stderr_text()
    assert logs.strip(), "the hub logged nothing at all at debug level"
    assert secret not in logs
    assert wrong not in logs


def printed_token(stdout: str) -> str:
    match = re.search(r"Bearer ([^\s'\"]+)", stdout)
    assert match, f"no generated token on stdout:\n{stdout}"
    return match.group(1)


def test_generated_token_is_printed_once_kept_and_never_logged(hub_server, tmp_path):
    data_dir = tmp_path / "kept"
    first = hub_server(token=None, data_dir=data_dir)
    token = printed_token(first.stdout_text())
    assert len(token) >= 16
    printed = first.stdout_text().count(token)

    with httpx.Client(base_url=first.url, timeout=5) as client:
        assert client.get("/topics", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert client.get("/topics", params={"access_token": token}).status_code == 200
        assert client.get("/topics").status_code == 401
    assert first.stop() in GRACEFUL_EXIT
    # on stdout only in the start-up message: the requests above added no line with it
    assert first.stdout_text().count(token) == printed, first.stdout_text()
    assert token not in first.stderr_text()

    # later starts say where it is kept, never the token itself (under systemd or Docker stdout is the log)
    second = hub_server(token=None, data_dir=data_dir)
    assert token not in second.stdout_text() + second.stderr_text()
    assert "Bearer" not in second.stdout_text()
    assert str(data_dir / "token") in second.stdout_text(), second.stdout_text()
    assert httpx.get(f"{second.url}/topics", headers={"Authorization": f"Bearer {token}"}).status_code == 200
