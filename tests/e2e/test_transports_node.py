"""The real `@microsoft/signalr` client under Node forced to each transport (and Python's signalrcore
over long polling and SSE): events in, read back over HTTP; fallback when WebSockets are off; and
connections whose client vanishes (killed, no DELETE) reclaimed by the hub."""

from __future__ import annotations

import logging
import threading

import pytest
from signalrcore.hub_connection_builder import HubConnectionBuilder
from signalrcore.types import HttpTransportType

from .harness import HeldConnection, module_hub, report_servers
from .support import make_events

pytestmark = pytest.mark.e2e

TRANSPORTS = ["WebSockets", "ServerSentEvents", "LongPolling"]


@pytest.fixture(scope="module")
def _node_transports_hub(tmp_path_factory):
    with module_hub(tmp_path_factory, "node-transports-hub", "--poll-timeout", "2", "--log-level", "debug") as hub:
        yield hub


@pytest.fixture
def hub(_node_transports_hub, request):
    report_servers(request, [_node_transports_hub])
    return _node_transports_hub


@pytest.mark.parametrize(
    ("transport", "protocol"),
    [(t, "json") for t in TRANSPORTS] + [("WebSockets", "messagepack"), ("LongPolling", "messagepack")],
)
def test_node_client_forced_to_each_transport(hub, node, unique, transport, protocol):
    topic, stream_id = unique("t"), unique("s")
    events = make_events(4, f"{transport}-{protocol}")
    out = node(
        "send-events.mjs",
        {
            "url": hub.hub_url, "token": hub.token, "transport": transport, "protocol": protocol,
            "topic": topic, "streamId": stream_id, "batches": [events[:2], events[2:]], "trace": True,
        },
    )
    assert out["started"], out
    assert out["results"] == [{"ok": True, "result": None}] * 2
    messages = [line["message"] for line in out["trace"]]
    assert any(f"Selecting transport '{transport}'" in m for m in messages), messages
    assert hub.get_events(topic, stream_id) == events


def test_messagepack_cannot_run_over_sse(hub, node):
    out = node(
        "send-events.mjs",
        {"url": hub.hub_url, "token": hub.token, "transport": "ServerSentEvents", "protocol": "messagepack"},
    )
    assert not out["started"]
    assert "'ServerSentEvents' does not support Binary" in out["startError"]


@pytest.mark.parametrize("transport", ["ServerSentEvents", "LongPolling"])
def test_node_client_without_token_gets_401(hub, node, transport):
    out = node("send-events.mjs", {"url": hub.hub_url, "transport": transport})
    assert not out["started"]
    assert "401" in out["startError"], out["startError"]


def test_clients_fall_back_when_websockets_are_off(hub_server, node, unique):
    server = hub_server("--transports", "ServerSentEvents,LongPolling")
    for protocol, expected in (("json", "ServerSentEvents"), ("messagepack", "LongPolling")):
        topic, stream_id = unique("t"), unique("s")
        events = make_events(1, protocol)
        out = node(
            "send-events.mjs",
            {"url": server.hub_url, "token": server.token, "protocol": protocol, "topic": topic,
             "streamId": stream_id, "batches": [events], "trace": True},
        )
        assert out["started"], out
        messages = [line["message"] for line in out["trace"]]
        assert any(f"Selecting transport '{expected}'" in m for m in messages), messages
        assert server.get_events(topic, stream_id) == events


# --- clients that vanish ---------------------------------------------------------------------------


def test_vanished_clients_are_reclaimed_and_stopped_ones_leave_cleanly(hub, unique, wait_for):
    topic, stream_id = unique("t"), unique("s")
    held = {
        (transport, ending): HeldConnection(
            {"url": hub.hub_url, "token": hub.token, "transport": transport, "topic": topic,
             "streamId": stream_id, "batch": make_events(1, f"{transport}-{ending}")}
        )
        for transport in ("ServerSentEvents", "LongPolling")
        for ending in ("killed", "stopped")
    }
    try:
        for key, conn in held.items():
            assert conn.hello["connected"] and conn.hello["sent"]["ok"], (key, conn.hello)
        for (transport, ending), conn in held.items():
            if ending == "killed":
                conn.kill()
            else:
                assert conn.stop() == {"stopped": True, "closeError": None}
    finally:
        for conn in held.values():
            if conn.proc.poll() is None:
                conn.kill()

    def closed(transport: str, ending: str) -> str | None:
        connection_id = held[(transport, ending)].hello["connectionId"]
        prefix = f"connection {connection_id} ({transport}) closed: "
        for line in hub.stderr_text().splitlines():
            if prefix in line:
                return line.split(prefix, 1)[1]
        return None

    # Killed: the SSE request drops at once; long polling waits for the disconnect timeout (3 s).
    assert wait_for(lambda: closed("ServerSentEvents", "killed"), 5) == "client gone"
    assert wait_for(lambda: closed("LongPolling", "killed"), 8) == "no transport request for 3 s"
    # Stopped: EventSource closed (SSE has no DELETE), DELETE for long polling.
    assert wait_for(lambda: closed("ServerSentEvents", "stopped"), 5) in ("client gone", "closed by the server")
    assert closed("LongPolling", "stopped") in ("DELETE", "closed by the server")
    assert len(hub.get_events(topic, stream_id)) == 4


# --- signalrcore -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("transport", "token_in"),
    [
        (HttpTransportType.long_polling, "query"),  # its polls send no headers: the token must be in the URL
        (HttpTransportType.server_sent_events, "query"),
        (HttpTransportType.server_sent_events, "factory"),
    ],
)
def test_signalrcore_over_http_transports(hub, unique, transport, token_in):
    topic, stream_id = unique("t"), unique("s")
    events = make_events(3, f"core-{transport.value}")
    options: dict = {"transport": transport}
    url = hub.hub_url
    if token_in == "query":
        url += f"?access_token={hub.token}"
    else:
        options["access_token_factory"] = lambda: hub.token
    connection = HubConnectionBuilder().with_url(url, options=options).configure_logging(logging.WARNING).build()
    opened, closed, done = threading.Event(), threading.Event(), threading.Event()
    results: list = []
    connection.on_open(opened.set)
    connection.on_close(closed.set)
    connection.start()
    try:
        assert opened.wait(10), "signalrcore did not connect"
        connection.invoke("SendEventData", [topic, stream_id, events], lambda m: (results.append(m), done.set()), invocation_id="c1")
        assert done.wait(10), "no Completion"
        assert results[0].error is None
    finally:
        connection.stop()
    assert closed.wait(10)
    assert hub.get_events(topic, stream_id) == events
