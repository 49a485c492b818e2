"""The Reader hub end to end with the real `@microsoft/signalr` client (tests/node/reader-steps.mjs):
subscriptions by exact id and by `*` receive, in order, what is written over HTTP, over the Writer hub
and through a drop-in route; unsubscribing stops delivery; ActiveStreamsChanged follows create,
update and close; bad arguments get a clear Completion error; and with two hub processes on one
Redis, a subscriber on B receives what is written on A.

"Stops receiving" is checked without sleeping: after the unsubscribe, the same connection keeps a
subscription to a `marker` stream, which is written last; delivery follows the store's write order
on each connection, so anything still delivered for the unsubscribed stream would come before it.
"""

from __future__ import annotations

import pytest
from e2e.support import make_events

pytestmark = pytest.mark.e2e


def events(received: list[dict], target: str = "EventDataReceived") -> list[dict]:
    return [r["args"][0] for r in received if r["target"] == target]


def ids(received: list[dict]) -> list[str]:
    return [e["id"] for e in events(received)]


def test_subscribers_receive_every_entry_points_writes_in_order_until_they_unsubscribe(hub_server, node, unique):
    hub = hub_server()  # the default store (sqlite): delivery after the commit
    topic = unique("reader")
    http = f"{hub.url}/topics/{topic}/streams"
    alert = [make_events(1, f"alert{i}")[0] | {"id": "alert"} for i in range(4)]
    info = make_events(2, "info")
    marker = make_events(2, "marker")
    params = {"timestamps": [10, 20, 30], "numericValues": {"speed": [1.5, None, 3.5], "rpm": [5, 6, 7]},
              "stringValues": {"gear": ["1", "2", "3"]}, "tagValues": {"lap": ["a", "b", "c"]}}
    spec = {
        "token": hub.token,
        "connections": [
            {"name": "exact", "url": f"{hub.url}/reader", "listen": True},
            {"name": "wild", "url": f"{hub.url}/reader", "listen": True, "protocol": "messagepack"},
            {"name": "params", "url": f"{hub.url}/reader", "listen": True, "transport": "ServerSentEvents"},
            {"name": "streams", "url": f"{hub.url}/reader", "listen": True, "transport": "LongPolling"},
            {"name": "writer", "url": hub.hub_url},
        ],
        "steps": [
            {"conn": "exact", "invoke": "SubscribeToEvent", "args": [topic, "s1", "alert"]},
            {"conn": "exact", "invoke": "SubscribeToEvent", "args": [topic, "marker", "*"]},
            {"conn": "wild", "invoke": "SubscribeToEvent", "args": ["*", "*", "*"]},
            {"conn": "params", "invoke": "SubscribeToParameter", "args": [topic, "s1", "speed"]},
            {"conn": "params", "invoke": "SubscribeToParameter", "args": [topic, "s1", "gear"]},
            {"conn": "params", "invoke": "SubscribeToParameter", "args": [topic, "*", "m"]},
            {"conn": "streams", "invoke": "SubscribeToActiveStreams", "args": [topic]},  # 6: [] (nothing yet)
            # writes through every entry point
            {"http": {"url": f"{http}/s1/events/data", "body": [alert[0], info[0]]}},
            {"conn": "writer", "invoke": "SendEventData", "args": [topic, "s1", [alert[1], info[1]]]},
            {"conn": "writer", "invoke": "SendEventData", "args": [topic, "s2", [alert[2]]]},
            {"http": {"url": f"{hub.url}/v0/events?name={topic}&streamId=s1&wait=true",
                      "text": '{"id": "alert", "timestamp": 1618133999000000000, "n": 1}\n'}},
            {"http": {"url": f"{http}/s1/parameters/data", "body": params}},
            {"waitFor": {"conn": "exact", "count": 3}},
            {"waitFor": {"conn": "wild", "count": 6, "target": "EventDataReceived"}},
            {"waitFor": {"conn": "params", "count": 1}},
            # 15: unsubscribe, write to what was unsubscribed, then to the marker stream
            {"conn": "exact", "invoke": "UnsubscribeFromEvent", "args": [topic, "s1", "alert"]},
            {"conn": "params", "invoke": "UnsubscribeFromStream", "args": [topic, "s1"]},
            {"conn": "writer", "invoke": "SendEventData", "args": [topic, "s1", [alert[3]]]},
            {"http": {"url": f"{http}/s1/parameters/data", "body": params}},
            {"conn": "writer", "invoke": "SendEventData", "args": [topic, "marker", marker]},
            {"http": {"url": f"{http}/marker/parameters/data", "body": {"timestamps": [1], "numericValues": {"m": [1]}}}},
            {"waitFor": {"conn": "exact", "count": 5}},
            {"waitFor": {"conn": "params", "count": 2}},
            {"waitFor": {"conn": "wild", "count": 9, "target": "EventDataReceived"}},
            # 24: active streams: update, create, close
            {"conn": "writer", "invoke": "UpdateStream", "args": [topic, "s2", {"name": "renamed"}]},
            {"conn": "writer", "invoke": "CreateStream", "args": [topic, {"name": "created", "location": "/x"}]},
            {"conn": "writer", "invoke": "CloseStream", "args": [topic, "s2"]},
            # s1, s2, marker created by their first write; s2 updated; one created; s2 closed
            {"waitFor": {"conn": "streams", "count": 6}},
        ],
    }
    result = node("reader-steps.mjs", spec, timeout=40)
    failed = [(i, s) for i, s in enumerate(result["steps"]) if not s["ok"]]
    assert not failed, failed
    assert result["steps"][6]["result"] == []
    received = result["received"]

    # exact ids: only "alert" of s1, in write order (HTTP, Writer hub, drop-in), then nothing of s1
    exact = events(received["exact"])
    assert [(e["streamId"], e["id"], e["timestamp"]) for e in exact[:3]] == [
        ("s1", "alert", alert[0]["timestamp"]), ("s1", "alert", alert[1]["timestamp"]), ("s1", "alert", 1618133999000000000)]
    assert exact[0] == {"topicName": topic, "streamId": "s1", "id": "alert", "timestamp": alert[0]["timestamp"],
                        "value": alert[0]["value"], "tags": alert[0]["tags"]}
    assert [(e["streamId"], e["id"]) for e in exact[3:]] == [("marker", "marker-0"), ("marker", "marker-1")]

    # `*` everywhere (MessagePack): every event of every stream, in order, once each
    assert [(e["streamId"], e["id"]) for e in events(received["wild"])] == [
        ("s1", "alert"), ("s1", "info-0"), ("s1", "alert"), ("s1", "info-1"), ("s2", "alert"), ("s1", "alert"),
        ("s1", "alert"), ("marker", "marker-0"), ("marker", "marker-1")]

    # parameters: only the subscribed ones, rows without any of them left out; nothing after the unsubscribe
    params_received = events(received["params"], "ParameterDataReceived")
    assert params_received[0] == {
        "topicId": topic, "topicName": topic, "streamId": "s1", "timestamps": [10, 20, 30],
        "numericValues": {"speed": [1.5, None, 3.5]}, "stringValues": {"gear": ["1", "2", "3"]},
        "binaryValues": {}, "tagValues": {"lap": ["a", "b", "c"]}}
    assert [p["streamId"] for p in params_received] == ["s1", "marker"]
    assert params_received[1]["numericValues"] == {"m": [1.0]}

    # active streams: AddUpdate on create (by a write, or CreateStream) and update, Remove on close
    changes = [(r["args"][0]["streamId"], r["args"][0]["name"], r["args"][0]["status"], r["args"][1])
               for r in received["streams"]]
    assert [c for c in changes if c[0] != "s2"][:2] == [("s1", None, "open", "AddUpdate"), ("marker", None, "open", "AddUpdate")]
    assert [c for c in changes if c[0] == "s2"] == [
        ("s2", None, "open", "AddUpdate"), ("s2", "renamed", "open", "AddUpdate"), ("s2", "renamed", "closed", "Remove")]
    created = [r["args"][0] for r in received["streams"] if r["args"][0]["name"] == "created"]
    assert len(created) == 1 and created[0]["location"] == "/x" and created[0]["topic"] == topic
    assert set(result["states"].values()) == {"Connected"}


def test_active_streams_list_and_bad_arguments(hub_server, node, unique):
    """SubscribeToActiveStreams answers with the open streams; bad arguments fail that call only,
    with a message naming the argument, and the connection goes on."""
    hub = hub_server("--store", "memory")
    topic = unique("list")
    with hub.http() as client:
        for stream in ("open-1", "open-2", "closed-1"):
            assert client.post(f"/topics/{topic}/streams/{stream}/events/data", json=make_events(1)).status_code == 200
        assert client.post(f"/topics/{topic}/streams/closed-1/close").status_code == 200
    spec = {
        "token": hub.token,
        "connections": [{"name": "r", "url": f"{hub.url}/reader", "listen": True}],
        "steps": [
            {"conn": "r", "invoke": "SubscribeToActiveStreams", "args": [topic]},
            {"conn": "r", "invoke": "SubscribeToActiveStreams", "args": ["*"]},
            {"conn": "r", "invoke": "SubscribeToEvent", "args": [42, "s", "*"]},
            {"conn": "r", "invoke": "SubscribeToEvent", "args": [topic, "a/b", "*"]},
            {"conn": "r", "invoke": "SubscribeToParameter", "args": [topic, "s", ""]},
            {"conn": "r", "invoke": "SubscribeToEvent", "args": [topic, "s"]},
            {"conn": "r", "invoke": "NoSuchMethod", "args": []},
            {"conn": "r", "invoke": "SubscribeToEvent", "args": [topic, "open-1", "*"]},
            {"http": {"url": f"{hub.url}/topics/{topic}/streams/open-1/events/data", "body": make_events(1, "after")}},
            {"waitFor": {"conn": "r", "count": 1, "target": "EventDataReceived"}},
        ],
    }
    result = node("reader-steps.mjs", spec)
    steps = result["steps"]
    assert steps[0]["ok"] and sorted(s["streamId"] for s in steps[0]["result"]) == ["open-1", "open-2"]
    assert all(s["status"] == "open" and s["topic"] == topic for s in steps[0]["result"])
    assert {"open-1", "open-2"} <= {s["streamId"] for s in steps[1]["result"] if s["topic"] == topic}
    errors = [s.get("error", "") for s in steps[2:7]]
    assert "topic: expected a non-empty string" in errors[0]
    assert "streamId: must not contain '/'" in errors[1]
    assert "parameterId: expected a non-empty string ('*' for every one)" in errors[2]
    assert "Invocation provides 2 argument(s) but target expects 3" in errors[3] or "due to an error" in errors[3]
    assert "Method does not exist" in errors[4]
    assert steps[7]["ok"] and steps[9]["ok"]
    assert ids(result["received"]["r"]) == ["after-0"]


def test_a_write_on_one_hub_process_reaches_a_subscriber_on_another(hub_server, node, redis_server, unique):
    """Two hub processes on one Redis: subscriber on B, writer on A (delivery comes from B's Redis feed)."""
    a = hub_server("--store", redis_server.url)
    b = hub_server("--store", redis_server.url)
    topic = unique("scale")
    batch = make_events(5, "far")
    spec = {
        "token": a.token,
        "connections": [
            {"name": "b-reader", "url": f"{b.url}/reader", "listen": True},
            {"name": "a-writer", "url": a.hub_url},
        ],
        "steps": [
            {"conn": "b-reader", "invoke": "SubscribeToEvent", "args": [topic, "*", "*"]},
            {"conn": "b-reader", "invoke": "SubscribeToActiveStreams", "args": [topic]},
            {"conn": "a-writer", "invoke": "SendEventData", "args": [topic, "s", batch[:2]]},
            {"http": {"url": f"{a.url}/topics/{topic}/streams/s/events/data", "body": batch[2:]}},
            {"conn": "a-writer", "invoke": "CloseStream", "args": [topic, "s"]},
            {"waitFor": {"conn": "b-reader", "count": 5, "target": "EventDataReceived"}},
            {"waitFor": {"conn": "b-reader", "count": 2, "target": "ActiveStreamsChanged"}},
        ],
    }
    result = node("reader-steps.mjs", spec)
    assert all(s["ok"] for s in result["steps"]), result["steps"]
    received = result["received"]["b-reader"]
    assert events(received) == [{"topicName": topic, "streamId": "s", **e} for e in batch]
    assert [(r["args"][0]["status"], r["args"][1]) for r in received if r["target"] == "ActiveStreamsChanged"] == [
        ("open", "AddUpdate"), ("closed", "Remove")]
