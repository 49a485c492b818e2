"""The HTTP Writer/read API of the real hub process, as curl or a script would use it."""

from __future__ import annotations

import pytest

from .support import BASE_TS, make_events

pytestmark = pytest.mark.e2e

SECOND = 1_000_000_000


def events_path(topic: str, stream_id: str) -> str:
    return f"/topics/{topic}/streams/{stream_id}/events/data"


def test_paging_with_limit_and_cursor_returns_every_event_once_in_order(shared_hub, unique):
    topic, stream_id = unique("t"), unique("s")
    events = make_events(25, "page")
    with shared_hub.http() as client:
        assert client.post(events_path(topic, stream_id), json=events).status_code == 200
        seen, params, pages = [], {"limit": 10}, 0
        while True:
            response = client.get(events_path(topic, stream_id), params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            pages += 1
            assert len(page) <= 10
            seen += page
            cursor = response.headers.get("X-Next-Cursor")
            if not cursor:
                break
            params = {"limit": 10, "after": cursor}
            assert pages < 10, "the cursor never ran out"
    assert seen == events
    assert pages == 3


def test_from_is_inclusive_and_to_exclusive_on_the_event_timestamp(shared_hub, unique):
    topic, stream_id = unique("t"), unique("s")
    events = make_events(5, "range")
    # arrival order differs from timestamp order: the filter is on the timestamp, the order is arrival
    shuffled = [events[3], events[0], events[4], events[1], events[2]]
    with shared_hub.http() as client:
        assert client.post(events_path(topic, stream_id), json=shuffled).status_code == 200
        response = client.get(
            events_path(topic, stream_id), params={"from": BASE_TS + SECOND, "to": BASE_TS + 4 * SECOND}
        )
    assert response.status_code == 200, response.text
    assert response.json() == [events[3], events[1], events[2]]


def test_invalid_batch_is_rejected_whole_with_index_and_field(shared_hub, unique):
    topic, stream_id = unique("t"), unique("s")
    good = make_events(3, "v")
    bad = [*good[:2], {"id": "x", "timestamp": "yesterday", "value": "v"}]
    with shared_hub.http() as client:
        response = client.post(events_path(topic, stream_id), json=bad)
        assert response.status_code == 400, response.text
        assert "events[2].timestamp" in response.json()["error"]
        assert client.post(events_path(topic, stream_id), json=good).status_code == 200
        assert client.get(events_path(topic, stream_id)).json() == good


def test_errors_are_json_with_the_fitting_status(hub_server, unique):
    server = hub_server("--max-body-size", "2048")
    topic, stream_id = unique("t"), unique("s")
    with server.http() as client:
        unknown = client.get(events_path(topic, "no-such-stream"))
        assert unknown.status_code == 404 and unknown.json()["error"], unknown.text

        not_json = client.post(
            events_path(topic, stream_id), content=b"[]", headers={**server.auth_headers, "Content-Type": "text/plain"}
        )
        assert not_json.status_code == 415 and not_json.json()["error"], not_json.text

        broken = client.post(
            events_path(topic, stream_id),
            content=b"[{",
            headers={**server.auth_headers, "Content-Type": "application/json"},
        )
        assert broken.status_code == 400 and broken.json()["error"], broken.text

        too_big = client.post(events_path(topic, stream_id), json=[{"id": "big", "timestamp": 1, "value": "x" * 4096}])
        assert too_big.status_code == 413 and too_big.json()["error"], too_big.text

        wrong_method = client.delete(events_path(topic, stream_id))
        assert wrong_method.status_code == 405, wrong_method.text

        # none of the refused writes created the stream
        assert client.get(f"/topics/{topic}/streams/{stream_id}").status_code == 404


def test_topics_and_stream_summaries(shared_hub, unique):
    topic = unique("cars")
    with shared_hub.http() as client:
        created = client.post(f"/topics/{topic}/streams", json={"name": "Lap 1", "location": "/car/lap1"})
        assert created.status_code == 200, created.text
        stream_id = created.json()["streamId"]
        assert client.post(events_path(topic, stream_id), json=make_events(2)).status_code == 200
        assert client.post(events_path(topic, "implicit"), json=make_events(1)).status_code == 200
        assert client.post(f"/topics/{topic}/streams/{stream_id}/close").status_code == 200

        topics = client.get("/topics").json()
        assert {"topic": topic, "streams": 2} in topics, topics
        listed = client.get(f"/topics/{topic}/streams").json()
        assert sorted(s["streamId"] for s in listed) == sorted([stream_id, "implicit"])
        summary = client.get(f"/topics/{topic}/streams/{stream_id}").json()
    assert summary["name"] == "Lap 1" and summary["location"] == "/car/lap1"
    assert summary["status"] == "closed"
    assert summary["events"] == 2
    assert summary["firstTimestamp"] == BASE_TS and summary["lastTimestamp"] == BASE_TS + SECOND
