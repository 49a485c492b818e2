"""HTTP ingestion against the real hub process (sqlite store, 1 MiB body limit): NDJSON with bad lines
and the quarantine, gzip, limits, precise 4xx, and wait=true vs wait=false. Each bad request is
followed on the same keep-alive connection by a good one: only that request was affected."""

from __future__ import annotations

import gzip
import json
import socket
import time

import httpx
import pytest
from e2e.support import events_url, make_events, ndjson

pytestmark = pytest.mark.e2e

RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


def assert_no_stream(client: httpx.Client, topic: str, stream: str) -> None:
    """A refused write made nothing, not even the stream."""
    assert client.get(f"/topics/{topic}/streams/{stream}").status_code == 404


def assert_serves(client: httpx.Client, topic: str, stream: str) -> None:
    """The same connection still works after a refused request."""
    good = make_events(1, "after")
    response = client.post(events_url(topic, stream), json=good)
    assert response.status_code == 200, response.text
    assert client.get(events_url(topic, stream)).json()[-1] == good[0]


# --- NDJSON and the quarantine --------------------------------------------------------------------------


def test_ndjson_with_bad_lines_stores_the_good_and_quarantines_the_bad(ingest_hub, unique):
    topic, stream = unique("t"), unique("s")
    good = make_events(4)
    body = (
        ndjson(good[:2])
        + b"{not json\n"  # line 3
        + b"\n"  # line 4: blank, skipped
        + ndjson([{"id": "no-timestamp"}])  # line 5
        + ndjson(good[2:3])  # line 6
        + b'{"id": "caf\xe9", "timestamp": 1}\n'  # line 7: bad UTF-8
        + ndjson([{"id": "x", "timestamp": "soon"}])  # line 8
        + ndjson(good[3:])  # line 9, no newline after it
    ).rstrip(b"\n")
    with ingest_hub.http() as client:
        response = client.post(events_url(topic, stream), content=body, headers={"Content-Type": "application/x-ndjson"})
        assert response.status_code == 200, response.text
        assert response.json() == {"successful_rows": 4, "quarantined_rows": 4}
        assert all(h in response.headers for h in RATE_HEADERS)
        assert client.get(events_url(topic, stream)).json() == good

        rows = client.get(f"/topics/{topic}/quarantine").json()
        assert [(r["line"], r["streamId"]) for r in rows] == [(3, stream), (5, stream), (7, stream), (8, stream)]
        assert rows[0]["raw"] == "{not json" and rows[0]["reason"].startswith("line 3: not valid JSON: ")
        assert rows[1]["reason"] == "line 5.timestamp: expected an integer of nanoseconds"
        assert rows[2]["reason"] == "line 7: not valid UTF-8: invalid continuation byte at byte 11"
        assert rows[3]["reason"] == "line 8.timestamp: expected an integer of nanoseconds"
        assert rows[3]["raw"] == '{"id": "x", "timestamp": "soon"}'


@pytest.mark.parametrize("media", ["application/ndjson", "application/jsonl", "application/x-ndjson; charset=utf-8"])
def test_ndjson_media_type_aliases(ingest_hub, unique, media):
    with ingest_hub.http() as client:
        response = client.post(events_url(unique("t"), "s"), content=ndjson(make_events(2)), headers={"Content-Type": media})
    assert response.status_code == 200 and response.json() == {"successful_rows": 2, "quarantined_rows": 0}


def test_the_quarantine_pages_like_the_data_reads(ingest_hub, unique):
    topic = unique("t")
    with ingest_hub.http() as client:
        body = b"".join(f"bad line {i}\n".encode() for i in range(5))
        response = client.post(events_url(topic, "s"), content=body, headers={"Content-Type": "application/x-ndjson"})
        assert response.json() == {"successful_rows": 0, "quarantined_rows": 5}
        assert client.get(f"/topics/{topic}/streams").json() == []  # only bad lines: no stream made
        def quarantined_lines(**params: str) -> list[int]:
            """Every page of the quarantine, 2 rows at a time, following X-Next-Cursor."""
            lines, after = [], None
            while True:
                page = client.get(f"/topics/{topic}/quarantine", params={"limit": 2, **params, **({"after": after} if after else {})})
                assert page.status_code == 200
                lines += [r["line"] for r in page.json()]
                after = page.headers.get("X-Next-Cursor")
                if after is None:
                    return lines

        assert quarantined_lines() == [1, 2, 3, 4, 5]
        assert client.get(f"/topics/{topic}/quarantine", params={"after": "nope"}).status_code == 400

        # order=desc: the newest first, and the cursor goes on to older rows
        assert quarantined_lines(order="desc") == [5, 4, 3, 2, 1]
        refused = client.get(f"/topics/{topic}/quarantine", params={"order": "newest"})
        assert refused.status_code == 400 and refused.json() == {"error": "order: expected 'asc' or 'desc', got 'newest'"}


def test_a_json_array_stays_all_or_nothing(ingest_hub, unique):
    """One bad event refuses the whole batch, naming its index and field; the good ones alone are stored."""
    topic, stream = unique("t"), unique("s")
    good = make_events(5)
    batch = [*good[:3], {**good[3], "timestamp": "yesterday"}, good[4]]
    with ingest_hub.http() as client:
        response = client.post(events_url(topic, stream), json=batch)
        assert response.status_code == 400
        assert response.json() == {"error": "events[3].timestamp: expected an integer of nanoseconds"}
        assert client.get(events_url(topic, stream)).status_code == 404  # nothing stored, not even the stream
        assert_no_stream(client, topic, stream)
        assert client.get(f"/topics/{topic}/quarantine").json() == []
        assert client.post(events_url(topic, stream), json=good).status_code == 200
        assert client.get(events_url(topic, stream)).json() == good  # and the connection still serves


# --- gzip ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("media", ["application/json", "application/x-ndjson"])
def test_gzip_bodies(ingest_hub, unique, media):
    topic, stream = unique("t"), unique("s")
    batch = make_events(1000)
    plain = json.dumps(batch).encode() if media == "application/json" else ndjson(batch)
    with ingest_hub.http() as client:
        response = client.post(
            events_url(topic, stream), content=gzip.compress(plain), headers={"Content-Type": media, "Content-Encoding": "gzip"}
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"successful_rows": 1000, "quarantined_rows": 0}
        assert client.get(events_url(topic, stream)).json() == batch


def test_gzip_parameter_data(ingest_hub, unique):
    topic, stream = unique("t"), unique("s")
    data = {"timestamps": [1, 2, 3], "numericValues": {"speed": [1.0, 2.5, None]}}
    with ingest_hub.http() as client:
        response = client.post(
            f"/topics/{topic}/streams/{stream}/parameters/data",
            content=gzip.compress(json.dumps(data).encode()),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        assert response.status_code == 200 and response.json() == {"successful_rows": 3, "quarantined_rows": 0}
        stored = client.get(f"/topics/{topic}/streams/{stream}/parameters/data").json()
        assert stored["timestamps"] == [1, 2, 3] and stored["numericValues"] == {"speed": [1.0, 2.5, None]}


def test_a_gzip_bomb_is_a_413_at_the_limit(ingest_hub, unique):
    topic, stream = unique("t"), unique("s")
    spaces = gzip.compress(b" " * 10_000_000)
    bomb = gzip.compress(b"[") + spaces * 10 + gzip.compress(b"]")  # 100 MB inflated, ~100 kB sent
    with ingest_hub.http() as client:
        started = time.monotonic()
        response = client.post(
            events_url(topic, stream), content=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
        )
        assert response.status_code == 413
        assert response.json() == {"error": "Request body is over the limit of 1048576 bytes once decompressed."}
        assert time.monotonic() - started < 5
    with ingest_hub.http() as client:
        assert_serves(client, topic, stream)


# --- limits and malformed bodies --------------------------------------------------------------------------


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(ingest_hub, unique):
    """Raw socket: the headers only, then the answer; the 10 MB body is never sent."""
    topic = unique("t")
    request = (
        f"POST {events_url(topic, 's')} HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {ingest_hub.token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"
    ).encode()
    with socket.create_connection((ingest_hub.host, ingest_hub.port), timeout=5) as sock:
        sock.sendall(request)
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), reply
    assert b"connection: close" in head.lower()
    assert json.loads(body) == {"error": "Request body is 10000000 bytes; the limit is 1048576 bytes."}
    with ingest_hub.http() as client:
        assert_no_stream(client, topic, "s")


def test_a_chunked_body_over_the_limit_is_a_413(ingest_hub, unique):
    def chunks():
        for _ in range(40):
            yield b" " * 65536

    topic = unique("t")
    with ingest_hub.http() as client:
        response = client.post(events_url(topic, "s"), content=chunks(), headers={"Content-Type": "application/json"})
        assert response.status_code == 413
        assert response.json() == {"error": "Request body is over the limit of 1048576 bytes."}
        assert_no_stream(client, topic, "s")


@pytest.mark.parametrize(
    ("headers", "body", "status", "error"),
    [
        ({"Content-Type": "text/plain"}, b"[]", 415,
         "Content-Type must be application/json or application/x-ndjson, got 'text/plain'."),
        ({}, b"[]", 415, "Content-Type must be application/json, got none."),
        ({"Content-Type": "application/json", "Content-Encoding": "br"}, b"[]", 415,
         "Content-Encoding 'br' is not supported; send gzip or no Content-Encoding."),
        ({"Content-Type": "application/json", "Content-Encoding": "gzip"}, b"[]", 400, None),
        ({"Content-Type": "application/json"}, b'[{"id": "a", "timestamp": 1},', 400,
         "Request body is not valid JSON: unexpected end of data: line 1 column 30 (char 29)"),
        ({"Content-Type": "application/json"}, b'[{"id": "\xff"}]', 400,
         "Request body is not valid UTF-8: invalid start byte at byte 9"),
        ({"Content-Type": "application/json"}, b"", 400, "Request body is empty; expected JSON."),
        ({"Content-Type": "application/x-ndjson"}, b"\n \n", 400, "Request body is empty; expected NDJSON, one event a line."),
        ({"Content-Type": "application/json"}, b'{"id": "a"}', 400, "events: expected an array of events"),
    ],
    ids=["text-plain", "no-type", "brotli", "not-gzip", "bad-json", "bad-utf8", "empty", "empty-ndjson", "not-array"],
)
def test_malformed_requests_get_precise_errors(ingest_hub, unique, headers, body, status, error):
    topic, stream = unique("t"), unique("s")
    with ingest_hub.http() as client:
        response = client.post(events_url(topic, stream), content=body, headers=headers)
        assert response.status_code == status, response.text
        if error is None:
            assert response.json()["error"].startswith("Request body is not valid gzip: ")
        else:
            assert response.json() == {"error": error}
        assert all(h in response.headers for h in RATE_HEADERS)  # errors carry the budget too
        assert_no_stream(client, topic, stream)
        assert_serves(client, topic, stream)


# --- acknowledgement --------------------------------------------------------------------------------------


def test_wait_true_is_readable_at_once_and_wait_false_is_202_then_stored(ingest_hub, unique, wait_for):
    topic, stream = unique("t"), unique("s")
    sync, later, nd = make_events(3, "sync"), make_events(3, "async"), make_events(2, "nd")
    with ingest_hub.http() as client:
        response = client.post(events_url(topic, stream), json=sync)
        assert response.status_code == 200 and response.json() == {"successful_rows": 3, "quarantined_rows": 0}
        assert len(client.get(events_url(topic, stream)).json()) == 3  # committed before the reply

        response = client.post(events_url(topic, stream), params={"wait": "false"}, json=later)
        assert response.status_code == 202 and response.json() == {"successful_rows": 3, "quarantined_rows": 0}
        response = client.post(
            events_url(topic, stream), params={"wait": "false"}, content=ndjson(nd) + b"oops\n",
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert response.status_code == 202 and response.json() == {"successful_rows": 2, "quarantined_rows": 1}

        def all_stored() -> list | None:
            got = client.get(events_url(topic, stream)).json()
            return got if len(got) == 8 else None

        stored = wait_for(all_stored, timeout=5, message="the 202 writes to be stored")
        assert stored == sync + later + nd
        assert [r["line"] for r in client.get(f"/topics/{topic}/quarantine").json()] == [3]


def test_gzip_with_an_idempotency_key_is_stored_once(ingest_hub, unique):
    """The idempotency layer reads the body before the route does: both see it decompressed once."""
    topic, stream = unique("t"), unique("s")
    body = gzip.compress(ndjson(make_events(3)))
    headers = {"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip", "X-Idempotency-Key": unique("k")}
    with ingest_hub.http() as client:
        first = client.post(events_url(topic, stream), content=body, headers=headers)
        again = client.post(events_url(topic, stream), content=body, headers=headers)
        assert first.status_code == again.status_code == 200, (first.text, again.text)
        assert first.json() == again.json() == {"successful_rows": 3, "quarantined_rows": 0}
        assert again.headers.get("X-Idempotency-Replayed") == "true"
        assert len(client.get(events_url(topic, stream)).json()) == 3
