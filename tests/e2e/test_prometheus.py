"""A real Prometheus scrapes the hub's GET /metrics every second (with a --metrics-token) while real
clients write: the `@microsoft/signalr` Node client on each transport, and HTTP. What Prometheus
stored, asked through its HTTP API, shows the connections rise and fall and every event sent counted."""

from __future__ import annotations

import pytest

from .harness import HeldConnection, PrometheusServer
from .support import events_url, make_events

pytestmark = pytest.mark.e2e

TRANSPORTS = ("WebSockets", "ServerSentEvents", "LongPolling")


@pytest.fixture
def prometheus_for(tmp_path):
    started: list[PrometheusServer] = []

    def start(target: str, bearer: str) -> PrometheusServer:
        server = PrometheusServer(tmp_path / f"prometheus{len(started)}", target, bearer)
        started.append(server)
        return server.start(timeout=30)

    try:
        yield start
    finally:
        for server in started:
            server.stop()


def test_prometheus_sees_connections_rise_and_fall_and_every_event_written(hub_server, prometheus_for, unique, wait_for):
    metrics_token = "metrics-" + unique("token")
    hub = hub_server("--metrics-token", metrics_token)
    prometheus = prometheus_for(f"{hub.host}:{hub.port}", metrics_token)
    wait_for(lambda: prometheus.value('up{job="hub"}') == 1.0, 30, message=f"not scraped:\n{prometheus.tail()}")

    topic, stream_id = unique("t"), unique("s")
    held = [
        HeldConnection({"url": hub.hub_url, "token": hub.token, "transport": transport, "topic": topic,
                        "streamId": stream_id, "batch": make_events(2 + k, f"{transport}-{k}")})
        for k, transport in enumerate(TRANSPORTS * 2)
    ]  # fmt: skip
    try:
        assert all(conn.hello["connected"] and conn.hello["sent"]["ok"] for conn in held), [c.hello for c in held]
        sent_signalr = sum(2 + k for k in range(len(held)))
        with hub.http() as http:
            reply = http.post(events_url(topic, stream_id), json=make_events(7, "http"))
            assert reply.status_code == 200, reply.text
        sent_http = 7
        # All six connections at once, each transport counted apart.
        wait_for(lambda: prometheus.value('sum(signalr_connections{hub="WriterHub"})') == len(held), 30)
        for transport in TRANSPORTS:
            assert prometheus.value(f'sum(signalr_connections{{transport="{transport}"}})') == 2
    finally:
        for conn in held:
            conn.stop()
    wait_for(lambda: prometheus.value('sum(signalr_connections{hub="WriterHub"})') == 0, 30)
    # ... and they were there: the stored series went up to six before it fell.
    assert prometheus.value('max_over_time(sum(signalr_connections{hub="WriterHub"})[5m:1s])') == len(held)
    assert prometheus.value('sum(signalr_connections_opened_total{hub="WriterHub"})') == len(held)
    wait_for(lambda: prometheus.value('sum(signalr_connections_closed_total{hub="WriterHub"})') == len(held), 30)

    wait_for(lambda: prometheus.value('hub_events_written_total{source="signalr"}') == sent_signalr, 30)
    wait_for(lambda: prometheus.value('hub_events_written_total{source="http"}') == sent_http, 30)
    assert prometheus.value("sum(hub_events_written_total)") == sent_signalr + sent_http
    assert prometheus.value('sum(signalr_invocations_total{method="SendEventData",outcome="ok"})') == len(held)
    route = "/topics/{topic}/streams/{streamId}/events/data"
    assert prometheus.value(f'http_requests_total{{route="{route}",method="POST",status="200"}}') == 1
    assert prometheus.value("hub_store_up") == 1
    assert prometheus.value('process_resident_memory_bytes{job="hub"}') > 0
