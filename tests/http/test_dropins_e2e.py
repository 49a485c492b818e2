"""The drop-in routes against the real hub process, with the requests Tinybird and Event Hubs senders
make: curl lines from Tinybird's Events API docs, and Event Hubs REST sends with a
SharedAccessSignature computed as Azure's SDK samples compute it (the key being a hub token)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import time
import urllib.parse
from pathlib import Path

import pytest
from e2e.support import curl, events_url, needs_curl

pytestmark = pytest.mark.e2e

def read_events(hub, topic: str, stream: str = "default") -> list[dict]:
    with hub.http() as client:
        response = client.get(events_url(topic, stream))
    return response.json() if response.status_code == 200 else []


# --- Tinybird ----------------------------------------------------------------------------------------


@needs_curl
def test_tinybird_single_row_like_the_docs(ingest_hub, unique, wait_for):
    topic = unique("events_test")
    row = '{"date": "2020-04-05 00:05:38", "city": "Chicago"}'
    status, headers, body = curl(
        "-H", f"Authorization: Bearer {ingest_hub.token}", "-d", row, f"{ingest_hub.url}/v0/events?name={topic}"
    )
    assert status == 202 and json.loads(body) == {"successful_rows": 1, "quarantined_rows": 0}
    assert headers["x-ratelimit-limit"]  # on with this hub: Tinybird senders pace themselves by these
    [event] = wait_for(lambda: read_events(ingest_hub, topic), timeout=5)
    assert event["id"] == topic and event["value"] == row and event["tags"] == {}
    assert abs(event["timestamp"] - time.time_ns()) < 60 * 10**9  # no timestamp field: arrival time


@needs_curl
def test_tinybird_ndjson_wait_true_tags_and_stream(ingest_hub, unique):
    topic = unique("flights")
    rows = (
        '{"timestamp":"2022-10-27T11:43:02.099Z","transaction_id":"8d1e1533","name":"Bobby Drake","age":42,"flight_class":"economy"}\n'
        '{"timestamp":"2022-10-27T11:43:03Z","transaction_id":"4e2b","name":"Kitty Pryde","age":23,"flight_class":"business"}\n'
        "[1, 2, 3]\n"
    )
    status, _, body = curl(
        "-X", "POST", "-H", f"Authorization: Bearer {ingest_hub.token}", "--data-binary", rows,
        f"{ingest_hub.url}/v0/events?name={topic}&wait=true&tags=flight_class,name&streamId=lhr",
    )
    assert status == 200 and json.loads(body) == {"successful_rows": 2, "quarantined_rows": 1}
    stored = read_events(ingest_hub, topic, "lhr")  # wait=true: committed before the reply
    assert [(e["id"], e["timestamp"], e["tags"]) for e in stored] == [
        (topic, 1666870982_099_000_000, {"flight_class": "economy", "name": "Bobby Drake"}),
        (topic, 1666870983_000_000_000, {"flight_class": "business", "name": "Kitty Pryde"}),
    ]
    assert json.loads(stored[0]["value"])["transaction_id"] == "8d1e1533"
    with ingest_hub.http() as client:
        [row] = client.get(f"/topics/{topic}/quarantine").json()
    assert (row["line"], row["streamId"], row["reason"]) == (3, "lhr", "line 3: expected a JSON object")


@needs_curl
def test_tinybird_gzip_data_binary_file(ingest_hub, unique, tmp_path: Path):
    topic = unique("gz")
    data = tmp_path / "data.ndjson.gz"
    data.write_bytes(gzip.compress(b"".join(b'{"id": "r%d", "n": %d}\n' % (i, i) for i in range(500))))
    status, _, body = curl(
        "-H", f"Authorization: Bearer {ingest_hub.token}", "-H", "Content-Encoding: gzip", "--data-binary", f"@{data}",
        f"{ingest_hub.url}/v0/events?name={topic}&wait=true",
    )
    assert status == 200 and json.loads(body) == {"successful_rows": 500, "quarantined_rows": 0}
    assert [e["id"] for e in read_events(ingest_hub, topic)][:3] == ["r0", "r1", "r2"]


@needs_curl
def test_tinybird_token_in_the_query_never_reaches_the_log(ingest_hub, unique):
    status, _, _ = curl("-d", '{"a": 1}', f"{ingest_hub.url}/v0/events?name={unique('q')}&token={ingest_hub.token}&wait=true")
    assert status == 200
    assert "/v0/events?name=" in ingest_hub.stderr_text()
    assert ingest_hub.token not in ingest_hub.stderr_text() + ingest_hub.stdout_text()


@needs_curl
@pytest.mark.parametrize(
    ("auth", "query", "status", "error"),
    [
        (["-H", "Authorization: Bearer wrong"], "name=x", 403, "Forbidden"),
        ([], "name=x", 403, "Forbidden"),
        (None, "wait=true", 400, "name: required"),
        (None, "name=x&wait=perhaps", 400, "wait: expected true or false, got 'perhaps'"),
    ],
)
def test_tinybird_refusals(ingest_hub, auth, query, status, error):
    auth = auth if auth is not None else ["-H", f"Authorization: Bearer {ingest_hub.token}"]
    got, _, body = curl(*auth, "-d", '{"a": 1}', f"{ingest_hub.url}/v0/events?{query}")
    assert got == status and json.loads(body)["error"].startswith(error)


# --- Event Hubs -----------------------------------------------------------------------------------------


def sas_token(resource_uri: str, key_name: str, key: str, ttl: int = 3600) -> str:
    """Azure's Python REST sample (get_auth_token), with a hub token as the key."""
    uri = urllib.parse.quote_plus(resource_uri)
    expiry = str(int(time.time() + ttl))
    signed = hmac.HMAC(key.encode("utf-8"), (uri + "\n" + expiry).encode("utf-8"), hashlib.sha256)
    signature = urllib.parse.quote(base64.b64encode(signed.digest()))
    return f"SharedAccessSignature sr={uri}&sig={signature}&se={expiry}&skn=RootManageSharedAccessKey"


@needs_curl
def test_event_hubs_send_event_like_the_rest_docs(ingest_hub, unique):
    hub = unique("your-event-hub")
    token = sas_token(f"https://your-namespace.servicebus.windows.net/{hub}", "RootManageSharedAccessKey", ingest_hub.token)
    body = '{ "DeviceId":"dev-01", "Temperature":"37.0" }'
    status, headers, reply = curl(
        "-X", "POST", f"{ingest_hub.url}/{hub}/messages?timeout=60&api-version=2014-01",
        "-H", f"Authorization: {token}",
        "-H", "Content-Type: application/atom+xml;type=entry;charset=utf-8",
        "-H", 'BrokerProperties: {"PartitionKey": "dev-01", "Label": "M1", "TimeToLive": 10}',
        "-H", "Priority: High", "-H", 'Customer: "12345,ABC"',
        "--data-binary", body,
    )
    assert (status, reply) == (201, "")
    [event] = read_events(ingest_hub, hub, "dev-01")
    assert event["id"] == "M1" and event["value"] == body
    assert event["tags"] == {"priority": "High", "customer": "12345,ABC"}


@needs_curl
def test_event_hubs_batch(ingest_hub, unique):
    hub = unique("batch-hub")
    token = sas_token(f"https://ns.servicebus.windows.net/{hub}", "send", ingest_hub.tokens[1])  # any hub token
    batch = [
        {"Body": "Message1", "UserProperties": {"Alert": "Strong Wind"}},
        {"Body": "Message2", "UserProperties": {"Alert": "Low Pressure"}},
        {"Body": "Message3", "BrokerProperties": {"PartitionKey": "p2"}},
    ]
    status, _, reply = curl(
        "-X", "POST", f"{ingest_hub.url}/{hub}/messages?timeout=60&api-version=2014-01",
        "-H", f"Authorization: {token}", "-H", "Content-Type: application/vnd.microsoft.servicebus.json",
        "--data-binary", json.dumps(batch),
    )
    assert (status, reply) == (201, "")
    assert [(e["value"], e["tags"]) for e in read_events(ingest_hub, hub)] == [
        ("Message1", {"Alert": "Strong Wind"}),
        ("Message2", {"Alert": "Low Pressure"}),
    ]
    assert [e["value"] for e in read_events(ingest_hub, hub, "p2")] == ["Message3"]


def test_event_hubs_auth(ingest_hub, unique):
    hub = unique("h")
    url = f"/{hub}/messages"
    with ingest_hub.http(headers={}) as client:
        def send(authorization: str | None) -> tuple[int, str]:
            headers = {"Authorization": authorization} if authorization else {}
            response = client.post(url, content=b"x", headers=headers)
            return response.status_code, response.text

        assert send(f"Bearer {ingest_hub.token}")[0] == 201
        assert send(sas_token(f"https://ns.servicebus.windows.net/{hub}", "k", ingest_hub.token))[0] == 201
        assert send(sas_token("ns.servicebus.windows.net", "k", ingest_hub.token))[0] == 201  # namespace-wide
        status, text = send(sas_token(f"https://ns.servicebus.windows.net/{hub}", "k", "not-a-hub-token"))
        assert status == 401 and "not signed with a token of this hub" in text
        status, text = send(sas_token(f"https://ns.servicebus.windows.net/{hub}", "k", ingest_hub.token, ttl=-10))
        assert status == 401 and "expired" in text
        status, text = send(sas_token("https://ns.servicebus.windows.net/another-hub", "k", ingest_hub.token))
        assert status == 401 and "was made for /another-hub" in text
        assert send(None)[0] == 401
    assert len(read_events(ingest_hub, hub)) == 3


def test_event_hubs_bad_input(ingest_hub, unique):
    hub = unique("h")
    with ingest_hub.http() as client:
        response = client.post(f"/{hub}/messages", content=b"\xff\xfe")
        assert response.status_code == 400 and "not valid UTF-8" in response.json()["error"]
        response = client.post(f"/{hub}/messages", content=b"x", headers={"BrokerProperties": "{oops"})
        assert response.status_code == 400 and response.json()["error"].startswith("BrokerProperties: not valid JSON")
        response = client.post(f"/{hub}/messages", content=b'[{"Body": "a"}, {}]',
                               headers={"Content-Type": "application/vnd.microsoft.servicebus.json"})
        assert response.status_code == 400 and response.json() == {"error": "[1].Body: required"}
        assert read_events(ingest_hub, hub) == []  # the batch was all or nothing
        assert client.post(f"/{hub}/messages", content=b"fine").status_code == 201


def test_messages_route_shadows_nothing(ingest_hub, unique):
    with ingest_hub.http() as client:
        assert client.get(f"/{unique('h')}/messages").status_code == 405  # POST only
        assert client.post("/hub/negotiate", params={"negotiateVersion": 1}).status_code == 200
        topic = unique("t")
        assert client.post(f"/topics/{topic}/streams", json={}).status_code == 200
        assert client.get(f"/topics/{topic}/streams").status_code == 200
        assert client.get("/health").json() == {"status": "ok"}
