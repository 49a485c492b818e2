"""The real `@microsoft/signalr` client under Node against the real hub process.

Each test runs a driver from tests/node (plain `HubConnectionBuilder().withUrl(url,
{accessTokenFactory})`, default transport negotiation) and checks what the hub stored over HTTP.
"""

from __future__ import annotations

import pytest

from .support import batches_of, make_events

pytestmark = pytest.mark.e2e


def send_spec(server, **spec):
    return {"url": server.hub_url, "token": server.token, **spec}


def test_send_event_data_then_read_back_over_http(shared_hub, node, unique):
    topic, stream_id = unique("cars"), unique("s")
    events = make_events(3, "alert")

    out = node("send-events.mjs", send_spec(shared_hub, topic=topic, streamId=stream_id, batches=[events]))

    assert out["started"], out
    assert out["results"] == [{"ok": True, "result": None}]
    assert out["state"] == "Connected"
    assert shared_hub.get_events(topic, stream_id) == events


def test_default_negotiation_picks_websockets(shared_hub, node, unique):
    out = node(
        "send-events.mjs",
        send_spec(shared_hub, topic=unique("t"), streamId=unique("s"), batches=[make_events(1)], trace=True),
    )
    assert out["started"], out
    messages = [line["message"] for line in out["trace"]]
    assert any("Selecting transport 'WebSockets'" in m for m in messages), messages
    # The handshake answer is `{}` on its own.
    assert any("data received" in m and "Content: '{}\x1e'" in m for m in messages), messages


def test_pipelined_invocations_are_stored_in_order(shared_hub, node, unique):
    topic, stream_id = unique("t"), unique("s")
    events = make_events(60, "p")

    out = node(
        "send-events.mjs",
        send_spec(shared_hub, topic=topic, streamId=stream_id, batches=batches_of(events, 3), pipeline=True),
    )

    assert out["started"], out
    assert out["results"] == [{"ok": True, "result": None}] * 20
    assert shared_hub.get_events(topic, stream_id) == events


def test_fire_and_forget_sends_are_applied_in_order(shared_hub, node, unique):
    """send() gets no Completion; a final invoke() on the same connection completes only after
    the earlier sends were applied, since one connection's invocations run in order."""
    topic, stream_id = unique("t"), unique("s")
    events = make_events(10, "ff")

    out = node(
        "send-events.mjs",
        send_spec(shared_hub, topic=topic, streamId=stream_id, batches=batches_of(events[:8], 2), fireAndForget=True),
    )
    assert out["results"] == [{"ok": True, "result": None}] * 4
    out = node("send-events.mjs", send_spec(shared_hub, topic=topic, streamId=stream_id, batches=[events[8:]]))
    assert out["results"] == [{"ok": True, "result": None}]

    assert shared_hub.get_events(topic, stream_id) == events


def test_create_stream_returns_a_stream_id_that_events_can_use(shared_hub, node, unique):
    topic = unique("t")
    properties = {"name": "Lap 1", "location": "/car/lap1", "metadata": {"driver": "ada"}}
    events = make_events(2, "c")

    out = node(
        "send-events.mjs", send_spec(shared_hub, topic=topic, createStream={"properties": properties}, batches=[events])
    )

    assert out["created"]["ok"], out
    stream_id = out["created"]["result"]["streamId"]
    assert isinstance(stream_id, str) and stream_id
    assert out["results"] == [{"ok": True, "result": None}]
    assert shared_hub.get_events(topic, stream_id) == events
    with shared_hub.http() as client:
        summary = client.get(f"/topics/{topic}/streams/{stream_id}")
    assert summary.status_code == 200, summary.text
    body = summary.json()
    assert body["streamId"] == stream_id
    assert body["name"] == "Lap 1"
    assert body["location"] == "/car/lap1"
    assert body["metadata"] == {"driver": "ada"}
    assert body["status"] == "open"
    assert body["events"] == 2


def test_two_create_streams_give_different_ids(shared_hub, node, unique):
    topic = unique("t")
    ids = {
        node("send-events.mjs", send_spec(shared_hub, topic=topic, createStream={}))["created"]["result"]["streamId"]
        for _ in range(2)
    }
    assert len(ids) == 2


def test_method_names_match_case_insensitively(shared_hub, node, unique):
    topic, stream_id = unique("t"), unique("s")
    events = make_events(1, "ci")
    out = node(
        "errors-then-ok.mjs",
        send_spec(
            shared_hub,
            topic=topic,
            streamId=stream_id,
            calls=[{"method": "sendeventdata", "args": [topic, stream_id, events]}],
            goodEvent=make_events(1, "a")[0],
        ),
    )
    assert out["calls"] == [{"ok": True, "result": None}]
    assert [e["id"] for e in shared_hub.get_events(topic, stream_id)][0] == "ci-0"


def test_bad_calls_get_aspnet_error_texts_and_both_connections_keep_working(shared_hub, node, unique):
    topic, stream_id = unique("t"), unique("s")
    good = make_events(1, "good")
    out = node(
        "errors-then-ok.mjs",
        send_spec(
            shared_hub,
            topic=topic,
            streamId=stream_id,
            calls=[
                {"method": "NoSuchMethod", "args": [1]},
                {"method": "SendEventData", "args": [topic]},
                {"method": "SendEventData", "args": [topic, stream_id, good, "extra"]},
                # events[1] has a fractional timestamp: the whole batch is rejected, events[0] too.
                {
                    "method": "SendEventData",
                    "args": [topic, stream_id, [good[0], {"id": "x", "timestamp": 1.5, "value": "v"}]],
                },
                {"method": "SendEventData", "args": [topic, stream_id, [{"timestamp": 1, "value": "no id"}]]},
            ],
            goodEvent=make_events(1, "afterA")[0],
            goodEventB=make_events(1, "afterB")[0],
        ),
    )

    unknown, too_few, too_many, bad_timestamp, missing_id = out["calls"]
    assert unknown == {
        "ok": False,
        "error": "Failed to invoke 'NoSuchMethod' due to an error on the server. HubException: Method does not exist.",
    }
    assert too_few == {
        "ok": False,
        "error": "Failed to invoke 'SendEventData' due to an error on the server. "
        "InvalidDataException: Invocation provides 1 argument(s) but target expects 3.",
    }
    assert too_many == {
        "ok": False,
        "error": "Failed to invoke 'SendEventData' due to an error on the server. "
        "InvalidDataException: Invocation provides 4 argument(s) but target expects 3.",
    }
    prefix = "An unexpected error occurred invoking 'SendEventData' on the server. HubException: "
    assert not bad_timestamp["ok"]
    assert bad_timestamp["error"].startswith(prefix + "events[1].timestamp"), bad_timestamp
    assert not missing_id["ok"]
    assert missing_id["error"].startswith(prefix + "events[0].id"), missing_id

    # Neither connection was closed, both still invoke, and nothing of the rejected batches was stored.
    assert out["stateA"] == "Connected"
    assert out["closedA"] is None
    assert out["afterA"] == {"ok": True, "result": None}
    assert out["afterB"] == {"ok": True, "result": None}
    assert [e["id"] for e in shared_hub.get_events(topic, stream_id)] == ["afterA-0", "afterB-0"]


def test_http_writes_and_hub_writes_share_one_stream(shared_hub, node, unique):
    topic, stream_id = unique("t"), unique("s")
    events = make_events(6, "mix")
    node("send-events.mjs", send_spec(shared_hub, topic=topic, streamId=stream_id, batches=[events[:2]]))
    with shared_hub.http() as client:
        response = client.post(f"/topics/{topic}/streams/{stream_id}/events/data", json=events[2:4])
    assert response.status_code == 200, response.text
    node("send-events.mjs", send_spec(shared_hub, topic=topic, streamId=stream_id, batches=[events[4:]]))

    assert shared_hub.get_events(topic, stream_id) == events


@pytest.mark.parametrize("mode", ["query", "header"])
def test_token_in_query_or_header_also_works(shared_hub, node, unique, mode):
    topic, stream_id = unique("t"), unique("s")
    events = make_events(1, mode)
    out = node(
        "send-events.mjs", send_spec(shared_hub, tokenMode=mode, topic=topic, streamId=stream_id, batches=[events])
    )
    assert out["started"], out
    assert shared_hub.get_events(topic, stream_id) == events


def test_messagepack_protocol_over_websockets(shared_hub, node, unique):
    """@microsoft/signalr-protocol-msgpack writes integers above 2^53 as float64: the hub must
    take a whole-valued float64 nanosecond timestamp as that integer."""
    topic, stream_id = unique("t"), unique("s")
    events = make_events(3, "mp")
    out = node(
        "send-events.mjs",
        send_spec(
            shared_hub, protocol="messagepack", topic=topic, streamId=stream_id, batches=[events[:1], events[1:]]
        ),
    )
    assert out["started"], out
    assert out["results"] == [{"ok": True, "result": None}] * 2
    assert shared_hub.get_events(topic, stream_id) == events



def test_messagepack_integer_timestamps_are_read_in_one_decode(shared_hub, node, unique):
    """Timestamps under 2^53 go out of @microsoft/signalr-protocol-msgpack as integers, nanosecond
    ones as float64: the one-call typed path (protocols/msgpack_binding.py) reads the first with its
    type and the second with its alternative, switching between them on one connection; both kinds
    are stored exactly as sent."""
    topic, stream_id = unique("t"), unique("s")
    small = make_events(3, "int", base=1_700_000_000_000_000)  # microseconds: a JavaScript integer
    large = make_events(2, "float", start=3)  # nanoseconds: float64 on the wire
    out = node(
        "send-events.mjs",
        send_spec(shared_hub, protocol="messagepack", topic=topic, streamId=stream_id, batches=[small[:1], large, small[1:]]),
    )
    assert out["started"], out
    assert out["results"] == [{"ok": True, "result": None}] * 3
    assert shared_hub.get_events(topic, stream_id) == [small[0], *large, *small[1:]]


def test_skip_negotiation_websockets(shared_hub, node, unique):
    topic, stream_id = unique("t"), unique("s")
    events = make_events(2, "skip")
    out = node(
        "send-events.mjs",
        send_spec(
            shared_hub, skipNegotiation=True, transport="WebSockets", topic=topic, streamId=stream_id, batches=[events]
        ),
    )
    assert out["started"], out
    assert out["results"] == [{"ok": True, "result": None}]
    assert shared_hub.get_events(topic, stream_id) == events


@pytest.mark.parametrize("token", [None, "wrong-token"], ids=["missing", "wrong"])
def test_start_fails_with_401_without_the_right_token(shared_hub, node, unique, token):
    out = node("send-events.mjs", {"url": shared_hub.hub_url, "token": token, "topic": "t", "streamId": "s"})
    assert not out["started"]
    assert "401" in out["startError"], out["startError"]


def test_several_configured_tokens_are_each_accepted(hub_server, node, unique):
    server = hub_server(tokens=["first-token-aaa", "second-token-bbb"])
    topic, stream_id = unique("t"), unique("s")
    for i, token in enumerate(server.tokens):
        out = node(
            "send-events.mjs",
            {
                "url": server.hub_url,
                "token": token,
                "topic": topic,
                "streamId": stream_id,
                "batches": [make_events(1, f"k{i}")],
            },
        )
        assert out["started"], out
    assert [e["id"] for e in server.get_events(topic, stream_id)] == ["k0-0", "k1-0"]
