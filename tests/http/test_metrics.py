"""GET /metrics against a real hub process: Prometheus' text format (read back with prometheus_client's
own parser), bounded labels (route templates, `route="unmatched"`, `method="unknown"`), the
--metrics-token, --no-metrics, and one registry per app (two apps in one process count apart)."""

from __future__ import annotations

import socket
import tempfile

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from e2e.support import RawConnection, events_url, make_events
from hub.app import build_app
from hub.config import Settings

pytestmark = pytest.mark.e2e


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """(sample name, its labels) -> value, for every sample of a scrape."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(scraped: dict, name: str, **labels: str) -> float:
    return scraped[name, frozenset(labels.items())]


def scrape(server, **kwargs) -> dict:
    with server.http(**kwargs) as http:
        reply = http.get("/metrics")
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain; version=")  # the text exposition format
    return samples(reply.text)


async def test_labels_stay_bounded_whatever_the_clients_send(hub_server, unique):
    server = hub_server()
    topic, stream_id = unique("t"), unique("s")
    conn = await RawConnection.open(server.ws_url, server.token, hub_url=server.hub_url)
    await conn.handshake()
    assert "error" not in await conn.invoke("SendEventData", topic, stream_id, make_events(3), invocation_id="1")
    assert "error" not in await conn.invoke("sendeventdata", topic, stream_id, make_events(2), invocation_id="2")
    for k, target in enumerate([unique("NoSuchMethod"), unique("Other")]):  # names the hub does not have
        assert "error" in await conn.invoke(target, invocation_id=f"x{k}")
    assert "error" in await conn.invoke("SendEventData", topic, stream_id, [{"id": "bad"}], invocation_id="3")
    with server.http() as http:
        assert http.post(events_url(topic, stream_id), json=make_events(4)).status_code == 200
        assert http.get(f"/{unique('no-such')}/{unique('path')}").status_code == 404
        assert http.get(events_url(topic, unique("other-stream"))).status_code == 404

    scraped = scrape(server)
    hub = "WriterHub"
    assert value(scraped, "signalr_connections", hub=hub, transport="WebSockets", protocol="json") == 1
    assert value(scraped, "signalr_connections_opened_total", hub=hub, transport="WebSockets") == 1
    assert value(scraped, "signalr_invocations_total", hub=hub, method="SendEventData", outcome="ok") == 2
    assert value(scraped, "signalr_invocations_total", hub=hub, method="SendEventData", outcome="error") == 1
    assert value(scraped, "signalr_invocations_total", hub=hub, method="unknown", outcome="error") == 2
    assert value(scraped, "signalr_invocation_duration_seconds_count", hub=hub, method="SendEventData") == 3
    assert value(scraped, "hub_events_written_total", source="signalr") == 5
    assert value(scraped, "hub_events_written_total", source="http") == 4
    data = "/topics/{topic}/streams/{streamId}/events/data"
    assert value(scraped, "http_requests_total", route=data, method="POST", status="200") == 1
    assert value(scraped, "http_requests_total", route=data, method="GET", status="404") == 1
    assert value(scraped, "http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert value(scraped, "hub_store_up") == 1
    assert value(scraped, "process_open_fds") > 0
    # Nothing a client chose became a label value: no topic, stream, raw path or method name it made up.
    chosen = (topic, stream_id, "NoSuchMethod", "Other", "sendeventdata", "no-such")
    assert not [key for key in scraped for _, label in key[1] if any(c in label for c in chosen)]

    await conn.close()
    closed = scrape(server)
    assert value(closed, "signalr_connections", hub=hub, transport="WebSockets", protocol="json") == 0
    assert value(closed, "signalr_connections_closed_total", hub=hub, reason="normal") == 1


def test_metrics_token_and_no_metrics(hub_server, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("device-token name=car-17 write:cars read:*\n")
    guarded = hub_server("--metrics-token", "scrape-me", "--token-file", str(tokens))
    with guarded.http(headers={}) as http:
        refused = http.get("/metrics")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert http.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        document = http.get("/openapi.json").json()
    assert document["paths"]["/metrics"]["get"]["security"]  # documented as needing a token
    assert scrape(guarded, headers={"Authorization": "Bearer scrape-me"})
    assert scrape(guarded)  # an admin token of the hub is accepted too
    with guarded.http(headers={"Authorization": "Bearer device-token"}) as http:  # valid, but not admin:*
        refused = http.get("/metrics")
        assert refused.status_code == 403 and refused.json() == {"error": "this token lacks admin:*"}

    off = hub_server("--no-metrics")
    with off.http() as http:
        assert http.get("/metrics").status_code == 404
        assert "/metrics" not in http.get("/openapi.json").json()["paths"]


async def test_two_apps_in_one_process_count_apart() -> None:
    apps = [build_app(Settings(store="memory", data_dir=tempfile.mkdtemp()), ["t"]) for _ in range(2)]
    first, second = (httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://hub") for app in apps)
    async with first, second:
        written = await first.post(events_url("t", "s"), json=make_events(3), headers={"Authorization": "Bearer t"})
        assert written.status_code == 200
        assert value(samples((await first.get("/metrics")).text), "hub_events_written_total", source="http") == 3
        assert value(samples((await second.get("/metrics")).text), "hub_events_written_total", source="http") == 0


def test_bounds_count_what_they_refuse(hub_server, unique):
    server = hub_server("--max-connections", "1", "--rate-limit", "1", "--header-timeout", "1")
    topic = unique("t")
    with server.http() as http:
        assert http.post("/hub/negotiate?negotiateVersion=1").status_code == 200  # takes the one slot
        assert http.post("/hub/negotiate?negotiateVersion=1").status_code == 503
        replies = [http.post(events_url(topic, "s"), json=make_events(1)).status_code for _ in range(3)]
        assert 429 in replies, replies  # a budget of one request a second
    with socket.create_connection((server.host, server.port)) as silent:  # sends no request head
        silent.settimeout(10)
        assert silent.recv(1) == b""  # closed by --header-timeout
    with socket.create_connection((server.host, server.port)) as big:
        big.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
        big.settimeout(10)
        assert big.recv(12).startswith(b"HTTP/1.1 431")

    counted = scrape(server)  # each was counted before the connection was answered or closed
    assert value(counted, "hub_refused_total", reason="header_timeout") == 1
    assert value(counted, "hub_refused_total", reason="max_connections") == 1
    assert value(counted, "hub_refused_total", reason="head_too_large") == 1
    assert value(counted, "hub_rate_limited_total", source="http") == replies.count(429)
    assert value(counted, "hub_rate_limited_total", source="signalr") == 0
