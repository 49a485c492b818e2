"""The hub behind a real nginx at /signalr/, with the README's "Behind nginx" configuration as written
(tests/e2e/nginx.py reads it from the README): two hub processes on one Redis, started with
--root-path /signalr. Through nginx: the real `@microsoft/signalr` Node client on every transport and
protocol (negotiated connections stay on the process that negotiated them), WebSockets that skip
negotiation spread round robin over both processes with what each wrote readable through either, the
HTTP API with NDJSON and gzip, the OpenAPI document and the console page under the prefix, and the
client address from X-Forwarded-For believed only from an allowed peer. One nginx for the module,
and a second terminating TLS (the hub then takes https from X-Forwarded-Proto)."""

from __future__ import annotations

import asyncio
import gzip
import json
import ssl
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from .harness import NODE_DIR, HubServerFactory, make_tls_files, report_servers
from .nginx import PREFIX, NginxServer
from .support import events_url, make_events, ndjson

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def _behind_nginx(redis_server, tmp_path_factory):
    factory = HubServerFactory(tmp_path_factory.mktemp("nginx-hubs"))
    nginx = None
    try:
        hubs = [factory("--store", redis_server.url, "--root-path", PREFIX, "--poll-timeout", "2") for _ in range(2)]
        nginx = NginxServer(tmp_path_factory.mktemp("nginx"), [f"127.0.0.1:{hub.port}" for hub in hubs]).start()
        yield nginx, hubs
    finally:
        if nginx is not None:
            nginx.stop()
        factory.close()


@pytest.fixture(scope="module")
def tls_nginx(_behind_nginx, tmp_path_factory):
    """A second nginx, terminating TLS (the listen line the README's comment gives), same hubs."""
    tls = make_tls_files(tmp_path_factory.mktemp("nginx-tls"), "nginx-key-password-77a0")
    server = NginxServer(tmp_path_factory.mktemp("nginx-https"), [f"127.0.0.1:{hub.port}" for hub in _behind_nginx[1]], tls)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def nginx(_behind_nginx, request) -> NginxServer:
    report_servers(request, _behind_nginx[1])
    return _behind_nginx[0]


@pytest.fixture
def hubs(_behind_nginx) -> list:
    return _behind_nginx[1]


def client_through(nginx: NginxServer, token: str) -> httpx.Client:
    """httpx on the hub behind nginx (base URL with the prefix: paths are given without it)."""
    return httpx.Client(base_url=nginx.url, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def websocket_accepts(hub) -> int:
    """uvicorn's access lines of WebSockets accepted by this process (the path carries the prefix)."""
    return hub.stderr_text().count(f'"WebSocket {PREFIX}/hub" [accepted]')


@pytest.mark.parametrize(
    ("transport", "protocol"),
    [("WebSockets", "json"), ("WebSockets", "messagepack"), ("ServerSentEvents", "json"),
     ("LongPolling", "json"), ("LongPolling", "messagepack")],
)  # fmt: skip
def test_node_client_through_nginx(nginx, hubs, node, unique, transport, protocol):
    """Negotiated: negotiate, then every request of the connection (?id=…), must reach one process;
    the README's sticky pool sends them there, though the two processes alternate for everything else."""
    topic, stream_id = unique("nginx"), unique("s")
    events = make_events(4, f"{transport}-{protocol}")
    out = node(
        "send-events.mjs",
        {"url": f"{nginx.url}/hub", "token": hubs[0].token, "transport": transport, "protocol": protocol,
         "topic": topic, "streamId": stream_id, "batches": [events[:2], events[2:]], "trace": True},
    )  # fmt: skip
    assert out["started"], out
    assert out["results"] == [{"ok": True, "result": None}] * 2, out["results"]
    messages = [line["message"] for line in out["trace"]]
    assert any(f"Selecting transport '{transport}'" in m for m in messages), messages
    with client_through(nginx, hubs[0].token) as client:
        assert client.get(events_url(topic, stream_id)).json() == events


def test_a_negotiated_connection_lives_in_the_process_that_negotiated_it(nginx, hubs):
    """Why the README's sticky pool: the other process does not know the connection."""
    with client_through(nginx, hubs[0].token) as client:
        negotiated = client.post("/hub/negotiate", params={"negotiateVersion": 1}).json()
    handshake = json.dumps({"protocol": "json", "version": 1}) + "\x1e"
    statuses = []
    for hub in hubs:
        with hub.http() as client:
            statuses.append(client.post("/hub", params={"id": negotiated["connectionToken"]}, content=handshake).status_code)
    assert sorted(statuses) == [200, 404], statuses


def test_websockets_skipping_negotiation_spread_over_both_processes(nginx, hubs, node, unique):
    topic = unique("spread")
    before = [websocket_accepts(hub) for hub in hubs]
    writes = {unique("s"): make_events(2, f"client{i}") for i in range(4)}

    async def run_all() -> list[dict]:
        return await asyncio.gather(*(
            node.run_async("send-events.mjs", {
                "url": f"{nginx.url}/hub", "token": hubs[0].token, "transport": "WebSockets", "skipNegotiation": True,
                "topic": topic, "streamId": stream_id, "batches": [events]})
            for stream_id, events in writes.items()
        ))  # fmt: skip

    for out in asyncio.run(run_all()):
        assert out["started"] and out["results"] == [{"ok": True, "result": None}], out
    accepted = [websocket_accepts(hub) - seen for hub, seen in zip(hubs, before)]
    assert accepted == [2, 2], accepted  # round robin, one nginx worker: two each
    for stream_id, events in writes.items():  # each process reads what every client wrote
        assert [hub.get_events(topic, stream_id) for hub in hubs] == [events, events]


def test_http_api_through_nginx_ndjson_gzip_and_the_body_bound(nginx, hubs, unique):
    topic, stream_id = unique("nginx-http"), unique("s")
    events = make_events(5, "ndjson")
    body = gzip.compress(ndjson(events[:4]) + b"not json\n" + ndjson(events[4:]))
    with client_through(nginx, hubs[0].token) as client:
        sent = client.post(
            events_url(topic, stream_id), content=body,
            headers={"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"},
        )  # fmt: skip
        assert sent.status_code == 200 and sent.json() == {"successful_rows": 5, "quarantined_rows": 1}, sent.text
        assert client.get(events_url(topic, stream_id)).json() == events
        quarantine = client.get(f"/topics/{topic}/quarantine")
        assert quarantine.status_code == 200 and "not json" in quarantine.text
        # a body above nginx's 16 KiB memory buffer goes through its temp file
        large = make_events(3000, "large")
        assert client.post(events_url(topic, stream_id), json=large).status_code == 200
        assert client.get(events_url(topic, stream_id), params={"limit": 10_000}).json() == events + large
        # client_max_body_size = --max-body-size: one byte more is refused before it reaches a hub
        too_large = client.post(events_url(topic, stream_id), content=b" " * (10_485_760 + 1),
                                headers={"Content-Type": "application/json"})  # fmt: skip
        assert too_large.status_code == 413


def test_openapi_and_console_under_the_prefix(nginx, hubs, node, unique, shared_hub):
    with httpx.Client(base_url=nginx.url, timeout=10) as client:  # no token for these
        document = client.get("/openapi.json").json()
        assert document["servers"] == [{"url": PREFIX}]
        assert "/topics/{topic}/streams/{streamId}/events/data" in document["paths"]  # relative to the server URL
        assert "href='openapi.json'" in client.get("/docs").text
        page = client.get("/")
        assert page.status_code == 200 and 'src="console/console.js"' in page.text
        for asset in ("console/console.js", "console/signalr.js", "console/console.css"):
            assert client.get(f"/{asset}").status_code == 200, asset
    # a hub without --root-path names no prefix
    with shared_hub.http() as client:
        assert client.get("/openapi.json").json()["servers"] == [{"url": "/"}]

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/test, which installs Debian's chromium")
    if not (NODE_DIR / "node_modules" / "playwright-core").is_dir():
        pytest.fail("tests/node/node_modules is incomplete: run scripts/test (it runs npm ci)")
    topic, stream = unique("console"), "car-1"
    with client_through(nginx, hubs[0].token) as client:
        assert client.post(events_url(topic, stream), json=make_events(1)).status_code == 200
    result = node("console-run.mjs", {
        "pageUrl": f"{nginx.url}/", "token": hubs[0].token, "topic": topic, "stream": stream,
        "httpUrl": f"{nginx.url}{events_url(topic, stream)}", "withinMs": 10_000,
    }, timeout=60)  # fmt: skip
    assert result["tail"] == [{"id": "from-http", "value": "sent with curl"}, {"id": "from-form", "value": "typed in the page"}]
    assert not result["pageErrors"], result["pageErrors"]
    assert all("401" in text for text in result["consoleErrors"]), result["consoleErrors"]
    # the page's WebSockets carried the token and connection ids in their URLs; nginx's log keeps no query
    log = nginx.access_log.read_text()
    assert '"GET /reader" 101' in log and hubs[0].token not in log and "id=" not in log  # $uri: after the rewrite


def test_the_client_address_comes_from_x_forwarded_for_only_from_an_allowed_peer(nginx, hubs, hub_server):
    forwarded = {"X-Forwarded-For": "203.0.113.7"}
    # through nginx (127.0.0.1, allowed by default): nginx appends its peer, the hub believes the chain
    with httpx.Client(base_url=nginx.url, timeout=10) as client:
        for _ in hubs:  # round robin: once to each process
            assert client.get("/health", headers=forwarded).status_code == 200
    lines = [line for hub in hubs for line in hub.stderr_text().splitlines() if f"GET {PREFIX}/health" in line]
    assert sum("203.0.113.7:" in line for line in lines) == 2, lines

    # a hub that allows only another peer: the header is ignored, the log shows the real peer
    direct = hub_server("--forwarded-allow-ips", "192.0.2.1")
    with direct.http() as client:
        assert client.get("/health", headers=forwarded).status_code == 200
    lines = [line for line in direct.stderr_text().splitlines() if "GET /health" in line]
    assert lines and all("127.0.0.1:" in line and "203.0.113.7" not in line for line in lines), lines


async def test_behind_nginx_terminating_tls_the_hub_sees_https(tls_nginx, hubs, node, unique):
    topic, stream_id = unique("nginx-tls"), unique("s")
    events = make_events(2, "wss")
    out = await node.run_async(
        "send-events.mjs",
        {"url": f"{tls_nginx.url}/hub", "token": hubs[0].token, "transport": "WebSockets", "topic": topic,
         "streamId": stream_id, "batches": [events]},
        env={"NODE_EXTRA_CA_CERTS": str(tls_nginx.tls["ca"])},
    )  # fmt: skip
    assert out["started"] and out["results"] == [{"ok": True, "result": None}], out
    assert hubs[1].get_events(topic, stream_id) == events
    # X-Forwarded-Proto https: the hub knows its page's origin is https://…, so a browser's upgrade
    # (token in the query, Origin set) from that page is its own; the same origin over http is not
    context = ssl.create_default_context(cafile=str(tls_nginx.tls["ca"]))
    url = f"wss://127.0.0.1:{tls_nginx.port}{PREFIX}/hub?access_token={hubs[0].token}"
    async with connect(url, ssl=context, origin=tls_nginx.origin, open_timeout=5) as ws:
        await ws.send(json.dumps({"protocol": "json", "version": 1}) + "\x1e")
        assert await asyncio.wait_for(ws.recv(), 5) == "{}\x1e"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, ssl=context, origin=tls_nginx.origin.replace("https:", "http:"), open_timeout=5):
            pass
    assert refused.value.response.status_code == 403
