"""Reading over HTTP from the real hub process (the session's shared hub), as curl or a script would:
pages and their cursor, the time window, topics and stream summaries, and the read routes' 404 and
405. The refusals of writes are in test_ingest_e2e.py."""

from __future__ import annotations

import pytest
from e2e.support import BASE_TS, SECOND, events_url, make_events

pytestmark = pytest.mark.e2e


def test_paging_with_limit_and_cursor_returns_every_event_once_in_order(shared_hub, unique):
    topic, stream_id = unique("t"), unique("s")
    events = make_events(25, "page")
    with shared_hub.http() as client:
        assert client.post(events_url(topic, stream_id), json=events).status_code == 200
        seen, params, pages = [], {"limit": 10}, 0
        while True:
            response = client.get(events_url(topic, stream_id), params=params)
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
        assert client.post(events_url(topic, stream_id), json=shuffled).status_code == 200
        response = client.get(
            events_url(topic, stream_id), params={"from": BASE_TS + SECOND, "to": BASE_TS + 4 * SECOND}
        )
    assert response.status_code == 200, response.text
    assert response.json() == [events[3], events[1], events[2]]


def test_an_unknown_stream_is_a_json_404_and_a_wrong_method_a_405(shared_hub, unique):
    topic = unique("t")
    with shared_hub.http() as client:
        unknown = client.get(events_url(topic, "no-such-stream"))
        assert unknown.status_code == 404 and unknown.json()["error"], unknown.text
        wrong_method = client.delete(events_url(topic, "no-such-stream"))
        assert wrong_method.status_code == 405, wrong_method.text


def test_topics_and_stream_summaries(shared_hub, unique):
    topic = unique("cars")
    with shared_hub.http() as client:
        created = client.post(f"/topics/{topic}/streams", json={"name": "Lap 1", "location": "/car/lap1"})
        assert created.status_code == 200, created.text
        stream_id = created.json()["streamId"]
        assert client.post(events_url(topic, stream_id), json=make_events(2)).status_code == 200
        assert client.post(events_url(topic, "implicit"), json=make_events(1)).status_code == 200
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


def test_definitions_read_back_as_replaced(shared_hub, unique):
    topic, stream_id = unique("t"), unique("s")
    path = f"/topics/{topic}/streams/{stream_id}"
    params = [{"id": "Speed", "name": "Speed", "unit": "km/h", "minimumValue": 0, "maximumValue": 400}]
    events = [{"id": "Alert", "name": "Alert", "level": "Critical"}]
    with shared_hub.http() as client:
        assert client.get(f"{path}/parameters").status_code == 404  # no such stream yet
        assert client.put(f"{path}/parameters", json=params).status_code == 200
        assert client.get(f"{path}/events").json() == []  # never set
        assert client.put(f"{path}/events", json=events).status_code == 200
        got_params = client.get(f"{path}/parameters").json()
        got_events = client.get(f"{path}/events").json()
    assert [(d["id"], d["unit"], d["maximumValue"]) for d in got_params] == [("Speed", "km/h", 400)]
    assert [(d["id"], d["level"]) for d in got_events] == [("Alert", "Critical")]
