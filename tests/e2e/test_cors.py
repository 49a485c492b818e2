"""CORS as a browser sees it, request by request (the real browser is in tests/browser): preflights,
the origin echoed with credentials, exposed headers, and WebSocket upgrades checked by Origin."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from .harness import module_hub, report_servers

pytestmark = pytest.mark.e2e

APP = "http://app.example:3000"
EVIL = "http://evil.example"


@pytest.fixture(scope="module")
def _cors_hub(tmp_path_factory):
    with module_hub(tmp_path_factory, "cors-hub", "--cors-origin", APP, "--cors-origin", "https://other.example") as hub:
        yield hub


@pytest.fixture
def hub(_cors_hub, request):
    report_servers(request, [_cors_hub])
    return _cors_hub


def preflight(server, path: str, origin: str, method: str, headers: str) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=5) as client:
        return client.options(
            path,
            headers={"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers},
        )


@pytest.mark.parametrize(
    ("path", "method", "headers"),
    [
        ("/hub/negotiate?negotiateVersion=1", "POST", "authorization,x-requested-with,x-signalr-user-agent"),
        ("/hub?id=x", "POST", "authorization,content-type,x-requested-with,x-signalr-user-agent"),
        ("/hub?id=x", "DELETE", "authorization,x-requested-with,x-signalr-user-agent"),
        ("/topics/t/streams/s/events/data", "POST", "authorization,content-type,content-encoding,x-idempotency-key"),
        ("/topics/t/streams/s", "PUT", "authorization,content-type"),
    ],
)
def test_preflight_allows_what_clients_send(hub, path, method, headers):
    response = preflight(hub, path, APP, method, headers)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == APP
    assert response.headers["access-control-allow-credentials"] == "true"
    allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
    assert set(headers.split(",")) <= allowed
    assert method in response.headers["access-control-allow-methods"]


def test_preflight_from_an_origin_not_listed_is_refused(hub):
    response = preflight(hub, "/hub/negotiate", EVIL, "POST", "authorization")
    assert (response.status_code, response.text) == (400, "Disallowed CORS origin")
    assert "access-control-allow-origin" not in response.headers


def test_responses_echo_the_origin_and_expose_what_apps_read(hub):
    with hub.http(headers={**hub.auth_headers, "Origin": APP}) as client:
        negotiate = client.post("/hub/negotiate", params={"negotiateVersion": 1})
        events = client.get("/topics/t/streams/s/events/data")
    for response in (negotiate, events):
        assert response.headers["access-control-allow-origin"] == APP  # never "*": credentials are allowed
        assert response.headers["access-control-allow-credentials"] == "true"
        exposed = {h.strip() for h in response.headers["access-control-expose-headers"].split(",")}
        assert {"X-Next-Cursor", "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= exposed
        assert "Origin" in response.headers["vary"]
    with hub.http(headers={**hub.auth_headers, "Origin": EVIL}) as client:
        response = client.post("/hub/negotiate", params={"negotiateVersion": 1})
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [(None, True), (APP, True), ("https://other.example", True), ("own", True), (EVIL, False), ("null", False)],
)
async def test_websocket_upgrade_is_checked_by_origin(hub, origin, allowed):
    """As a browser page opens it: the token in the query (a page cannot set headers on a WebSocket)."""
    if origin == "own":
        origin = hub.url
    url = f"{hub.ws_url}?access_token={hub.token}"

    async def open_socket():
        async with connect(url, origin=origin, open_timeout=5):
            pass

    if allowed:
        await open_socket()
    else:
        with pytest.raises(InvalidStatus) as refused:
            await open_socket()
        assert refused.value.response.status_code == 403
        assert b"is not allowed to use this hub" in refused.value.response.body


async def test_without_cors_origins_a_foreign_page_cannot_open_a_websocket(shared_hub):
    url = f"{shared_hub.ws_url}?access_token={shared_hub.token}"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, origin=APP, open_timeout=5):
            pass
    assert refused.value.response.status_code == 403
    async with connect(url, origin=shared_hub.url, open_timeout=5):
        pass


@pytest.mark.parametrize("origin", [EVIL, "null", APP])
async def test_an_upgrade_with_a_bearer_header_is_not_a_page_and_any_origin_is_accepted(shared_hub, origin):
    """Devices that always send an Origin, authenticated by the Authorization header that no browser
    page can set on a WebSocket: accepted, and the connection works."""
    async with connect(shared_hub.ws_url, additional_headers=shared_hub.auth_headers, origin=origin, open_timeout=5) as ws:
        await ws.send('{"protocol":"json","version":1}\x1e')
        assert await asyncio.wait_for(ws.recv(), 5) == "{}\x1e"


@pytest.mark.parametrize("header", ["Bearer wrong-token", "Basic dXNlcjpwYXNz", "Bearer "])
async def test_a_foreign_origin_with_a_header_that_is_not_a_valid_bearer_token_is_still_refused(shared_hub, header):
    """Only a valid bearer header lifts the Origin check; anything else is refused (401 for a wrong
    token, 403 when the header is not a bearer token and the query token is a page's)."""
    url = f"{shared_hub.ws_url}?access_token={shared_hub.token}"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, additional_headers={"Authorization": header}, origin=EVIL, open_timeout=5):
            pass
    assert refused.value.response.status_code in (401, 403)
    if header.startswith("Bearer wrong"):
        assert refused.value.response.status_code == 401
