"""Acknowledged means stored: the hub is killed with SIGKILL while clients write over SignalR and
HTTP, restarted on the same data (sqlite file / Redis with appendfsync always), and every batch it
acknowledged is there exactly once; no batch is there in part or twice. Plus idempotent HTTP
retries across a restart."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from .support import RS, RawConnection, make_events

pytestmark = pytest.mark.e2e

BATCH = 5
ACKS_BEFORE_KILL = 60  # per client kind; the kill comes while more are in flight


class Acked:
    def __init__(self) -> None:
        self.batches: set[str] = set()
        self.signalr = 0
        self.http = 0
        self.enough = asyncio.Event()

    def add(self, batch: str, kind: str) -> None:
        self.batches.add(batch)
        setattr(self, kind, getattr(self, kind) + 1)
        if self.signalr >= ACKS_BEFORE_KILL and self.http >= ACKS_BEFORE_KILL:
            self.enough.set()


def batch_events(name: str) -> list[dict]:
    return make_events(BATCH, prefix=name)


async def signalr_writer(server, topic: str, stream_id: str, acked: Acked, inflight: int = 20) -> None:
    """Pipelines SendEventData; a Completion without error acknowledges its batch."""
    conn = await RawConnection.open(server.ws_url, server.token, hub_url=server.hub_url)
    assert await conn.handshake() == {}
    sent: dict[str, str] = {}
    counter = 0

    async def send_one() -> None:
        nonlocal counter
        counter += 1
        name = f"sr{counter}"
        sent[str(counter)] = name
        frame = {"type": 1, "invocationId": str(counter), "target": "SendEventData",
                 "arguments": [topic, stream_id, batch_events(name)]}
        await conn.ws.send(json.dumps(frame) + RS)

    try:
        for _ in range(inflight):
            await send_one()
        while True:
            record = await conn.recv(timeout=10)
            if record.get("type") == 3:
                name = sent.pop(record["invocationId"])
                if record.get("error") is None:
                    acked.add(name, "signalr")
                await send_one()
    except (ConnectionClosed, OSError, asyncio.TimeoutError):
        return  # the hub died: what was acknowledged is in `acked`


async def http_writer(server, topic: str, stream_id: str, acked: Acked, parallel: int = 4) -> None:
    """POSTs batches; a 200 acknowledges its batch."""
    async with httpx.AsyncClient(base_url=server.url, headers=server.auth_headers, timeout=10) as client:

        async def one_lane(lane: int) -> None:
            n = 0
            while True:
                n += 1
                name = f"http{lane}-{n}"
                try:
                    response = await client.post(f"/topics/{topic}/streams/{stream_id}/events/data", json=batch_events(name))
                except httpx.TransportError:
                    return
                if response.status_code == 200:
                    acked.add(name, "http")

        await asyncio.gather(*(one_lane(lane) for lane in range(parallel)))


def stored_ids(server, topic: str, stream_id: str) -> list[str]:
    ids: list[str] = []
    after = None
    with server.http() as client:
        while True:
            params = {"limit": 100000, **({"after": after} if after else {})}
            response = client.get(f"/topics/{topic}/streams/{stream_id}/events/data", params=params)
            assert response.status_code == 200, response.text
            ids += [e["id"] for e in response.json()]
            after = response.headers.get("x-next-cursor")
            if not after:
                return ids


@pytest.fixture(params=["sqlite", "redis"])
def store_args(request: pytest.FixtureRequest) -> list[str]:
    if request.param == "sqlite":
        return ["--store", "sqlite"]
    redis_server = request.getfixturevalue("redis_server")
    return ["--store", redis_server.url]


async def test_acknowledged_writes_survive_sigkill_exactly_once(hub_server, store_args, unique) -> None:
    topic, stream_id = unique("crash"), "s"
    server = hub_server(*store_args)
    acked = Acked()
    writers = [
        asyncio.ensure_future(signalr_writer(server, topic, stream_id, acked)),
        asyncio.ensure_future(http_writer(server, topic, stream_id, acked)),
    ]
    try:
        await asyncio.wait_for(acked.enough.wait(), 60)
    finally:
        server.kill()  # SIGKILL with writes in flight
        await asyncio.wait_for(asyncio.gather(*writers), 30)
    assert acked.signalr >= ACKS_BEFORE_KILL and acked.http >= ACKS_BEFORE_KILL

    restarted = hub_server(*store_args, data_dir=server.data_dir)
    ids = await asyncio.to_thread(stored_ids, restarted, topic, stream_id)
    counts = Counter(ids)
    assert [i for i, n in counts.items() if n > 1] == []  # nothing stored twice
    by_batch = Counter(i.rsplit("-", 1)[0] for i in ids)
    assert {b: n for b, n in by_batch.items() if n != BATCH} == {}  # all or nothing per batch
    missing = acked.batches - set(by_batch)
    assert missing == set(), f"{len(missing)} acknowledged batches lost, e.g. {sorted(missing)[:5]}"
    info = restarted.http().get(f"/topics/{topic}/streams/{stream_id}").json()
    assert info["events"] == len(ids)


def test_idempotent_retry_across_a_restart(hub_server, unique) -> None:
    topic = unique("idem")
    server = hub_server("--store", "sqlite")
    path = f"/topics/{topic}/streams/s/events/data"
    events = make_events(3, "once")
    with server.http() as client:
        first = client.post(path, json=events, headers={**server.auth_headers, "X-Idempotency-Key": "k-1"})
        assert first.status_code == 200, first.text
        again = client.post(path, json=events, headers={**server.auth_headers, "X-Idempotency-Key": "k-1"})
        assert (again.status_code, again.content) == (200, first.content)
        assert again.headers.get("x-idempotency-replayed") == "true"
        other = client.post(path, json=make_events(1, "other"), headers={**server.auth_headers, "X-Idempotency-Key": "k-1"})
        assert other.status_code == 409 and "different request" in other.json()["error"]
        bad = client.post(path, json=events, headers={**server.auth_headers, "X-Idempotency-Key": "bad key"})
        assert bad.status_code == 400 and "X-Idempotency-Key" in bad.json()["error"]
        refused = client.post(path, json=[{"id": "x"}], headers={**server.auth_headers, "X-Idempotency-Key": "k-2"})
        assert refused.status_code == 400
        refused_again = client.post(path, json=[{"id": "x"}], headers={**server.auth_headers, "X-Idempotency-Key": "k-2"})
        assert (refused_again.status_code, refused_again.content) == (400, refused.content)
    server.kill()

    restarted = hub_server("--store", "sqlite", data_dir=server.data_dir)
    with restarted.http() as client:
        retry = client.post(path, json=events, headers={**restarted.auth_headers, "X-Idempotency-Key": "k-1"})
        assert (retry.status_code, retry.content) == (200, first.content)
        other_topic = client.post(f"/topics/{topic}-2/streams/s/events/data", json=events,
                                  headers={**restarted.auth_headers, "X-Idempotency-Key": "k-1"})
        assert other_topic.status_code == 200 and "x-idempotency-replayed" not in other_topic.headers  # per topic
    assert [e["id"] for e in restarted.get_events(topic, "s")] == [e["id"] for e in events]  # stored once
