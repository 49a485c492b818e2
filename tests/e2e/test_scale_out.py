"""Several hub processes on one Redis: a write through A is read through B over HTTP and live from
B's feed (ReadEventData with follow); an idempotency key used on A is honoured on B; and while
Redis is down writes fail (503 / Completion error) and /ready says 503, then everything recovers."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from .support import make_events

pytestmark = pytest.mark.e2e


async def read_stream_items(conn, invocation_id: str, count: int, timeout: float = 10) -> list[dict]:
    items: list[dict] = []
    async with asyncio.timeout(timeout):
        while len(items) < count:
            record = await conn.recv(timeout)
            if record.get("invocationId") != invocation_id:
                continue
            assert record.get("type") == 2, record  # a Completion here would mean the stream ended
            items.append(record["item"])
    return items


async def test_write_on_a_read_on_b_over_http_and_live(hub_server, redis_server, raw_ws, unique) -> None:
    topic, stream_id = unique("scale"), "car-1"
    a = hub_server("--store", redis_server.url)
    b = hub_server("--store", redis_server.url)
    writer = await raw_ws.ready(a)
    reader = await raw_ws.ready(b)

    stored_first = make_events(4, "before")
    completion = await writer.invoke("SendEventData", topic, stream_id, stored_first, invocation_id="w0")
    assert completion.get("error") is None, completion

    # B follows the stream: the stored events first, then live ones written through A
    await reader.send({"type": 4, "invocationId": "follow", "target": "ReadEventData",
                       "arguments": [topic, stream_id, None, True]})
    assert await read_stream_items(reader, "follow", 4) == stored_first

    live = [make_events(3, f"live{i}") for i in range(5)]
    for i, batch in enumerate(live):
        completion = await writer.invoke("SendEventData", topic, stream_id, batch, invocation_id=f"w{i + 1}")
        assert completion.get("error") is None, completion
    expected_live = [e for batch in live for e in batch]
    assert await read_stream_items(reader, "follow", len(expected_live)) == expected_live

    stored = await asyncio.to_thread(b.get_events, topic, stream_id)
    assert stored == stored_first + expected_live
    with b.http() as client:
        info = client.get(f"/topics/{topic}/streams/{stream_id}").json()
        assert info["events"] == len(stored)
        assert {t["topic"] for t in client.get("/topics").json()} >= {topic}
    await reader.send({"type": 5, "invocationId": "follow"})  # CancelInvocation


def test_an_idempotency_key_holds_across_processes(hub_server, redis_server, unique) -> None:
    topic = unique("idem")
    a = hub_server("--store", redis_server.url)
    b = hub_server("--store", redis_server.url)
    path = f"/topics/{topic}/streams/s/events/data"
    events = make_events(2, "x")
    headers = {"X-Idempotency-Key": "retry-me"}
    with a.http() as client:
        first = client.post(path, json=events, headers={**a.auth_headers, **headers})
    with b.http() as client:
        retry = client.post(path, json=events, headers={**b.auth_headers, **headers})
    assert first.status_code == retry.status_code == 200
    assert retry.content == first.content and retry.headers.get("x-idempotency-replayed") == "true"
    assert [e["id"] for e in b.get_events(topic, "s")] == ["x-0", "x-1"]


async def test_redis_outage_fails_writes_and_ready_then_recovers(hub_server, own_redis, raw_ws, unique) -> None:
    topic, stream_id = unique("outage"), "s"
    server = hub_server("--store", own_redis.url)
    conn = await raw_ws.ready(server)
    path = f"/topics/{topic}/streams/{stream_id}/events/data"
    async with httpx.AsyncClient(base_url=server.url, headers=server.auth_headers, timeout=10) as client:
        assert (await client.post(path, json=make_events(1, "before"))).status_code == 200
        assert (await client.get("/ready")).status_code == 200

        own_redis.stop()
        response = await client.post(path, json=make_events(1, "during-http"))
        assert response.status_code == 503, response.text
        assert "unavailable" in response.json()["error"] and response.headers.get("retry-after")
        completion = await conn.invoke("SendEventData", topic, stream_id, make_events(1, "during-sr"), invocation_id="d")
        assert "unreachable" in (completion.get("error") or ""), completion
        ready = await client.get("/ready")
        assert ready.status_code == 503 and ready.json() == {"status": "unavailable"}
        assert (await client.get("/health")).status_code == 200  # liveness: do not restart the hub

        own_redis.start()
        deadline = asyncio.get_running_loop().time() + 15
        while (await client.get("/ready")).status_code != 200:
            assert asyncio.get_running_loop().time() < deadline, "/ready did not recover"
            await asyncio.sleep(0.1)
        assert (await client.post(path, json=make_events(1, "after-http"))).status_code == 200
        completion = await conn.invoke("SendEventData", topic, stream_id, make_events(1, "after-sr"), invocation_id="a")
        assert completion.get("error") is None, completion
    ids = [e["id"] for e in await asyncio.to_thread(server.get_events, topic, stream_id)]
    assert ids == ["before-0", "after-http-0", "after-sr-0"]  # nothing unacknowledged, nothing lost
