"""Redis paused (SIGSTOP) under load, then resumed: a write the hub answered as failed is never
stored, every acknowledged write is stored exactly once, and a client retrying with its
X-Idempotency-Key ends up with its batch stored exactly once, without a long run of 409s.

Clients write at once, each to its own stream, one write in flight each: HTTP with a key (several
of them, so that some are caught between their key's claim and its record; each retries a batch
until it is acknowledged), HTTP without a key, and SignalR (SendEventData over a raw JSON
WebSocket). The hub runs with `--store-timeout 1`; Redis is stopped for 3 s (again, up to 3 times,
until every kind of client felt a pause).
"""

from __future__ import annotations

import asyncio
import os
import signal

import httpx
import pytest

from .support import events_url, make_events

pytestmark = pytest.mark.e2e

PAUSE = 3.0
PAUSES = 3  # pauses at most, until every kind of client felt one
STORE_TIMEOUT = "1"
PACE = 0.02  # seconds between two writes of one client: load, not a flood
KEYED_CLIENTS = 4
MAX_409_RUN = 5.0  # seconds a keyed retry may be refused with 409 in a row (before: the 60 s lease)
# Keyed batches are larger and sent back to back: most of a keyed client's time is then spent after
# its key's claim and before its record, where a pause leaves a claim pending (the 409 case).
KEYED_BATCH = 200


class Tally:
    def __init__(self) -> None:
        self.acked: list[list[dict]] = []
        self.failed: list[list[dict]] = []
        self.acked_after_resume = 0

    def ack(self, batch: list[dict], resumed: asyncio.Event) -> None:
        self.acked.append(batch)
        if resumed.is_set():
            self.acked_after_resume += 1


async def test_writes_answered_failed_while_redis_pauses_are_never_stored(hub_server, own_redis, raw_ws, unique) -> None:
    topic = unique("pause")
    server = hub_server("--store", own_redis.url, "--store-timeout", STORE_TIMEOUT)
    conn = await raw_ws.ready(server)
    loop = asyncio.get_running_loop()
    stop, resumed = asyncio.Event(), asyncio.Event()
    keyed = [Tally() for _ in range(KEYED_CLIENTS)]
    plain, signalr = Tally(), Tally()
    keyed_retries = 0
    longest_409_run = 0.0

    async def keyed_client(client: httpx.AsyncClient, n: int) -> None:
        nonlocal keyed_retries, longest_409_run
        i = 0
        while not stop.is_set():
            batch = make_events(KEYED_BATCH, f"k{n}-{i}")
            first_409: float | None = None
            while True:  # until acknowledged (the whole test is bounded below)
                try:
                    response = await client.post(events_url(topic, f"keyed{n}"), json=batch, headers={"X-Idempotency-Key": f"key-{n}-{i}"})
                    status = response.status_code
                except httpx.TransportError:
                    status = None
                if status == 200:
                    break
                assert status in (None, 409, 503), (status, response.text)
                keyed_retries += 1
                if status == 409:
                    first_409 = loop.time() if first_409 is None else first_409
                    longest_409_run = max(longest_409_run, loop.time() - first_409)
                    assert longest_409_run < MAX_409_RUN, f"409 for {longest_409_run:.1f} s in a row"
                else:
                    first_409 = None
                await asyncio.sleep(PACE)
            keyed[n].ack(batch, resumed)
            i += 1

    async def plain_client(client: httpx.AsyncClient) -> None:
        i = 0
        while not stop.is_set():
            batch = make_events(2, f"p{i}")
            response = await client.post(events_url(topic, "plain"), json=batch)
            assert response.status_code in (200, 503), response.text
            if response.status_code == 200:
                plain.ack(batch, resumed)
            else:
                plain.failed.append(batch)
            i += 1
            await asyncio.sleep(PACE)

    async def signalr_client() -> None:
        i = 0
        while not stop.is_set():
            batch = make_events(2, f"w{i}")
            completion = await conn.invoke("SendEventData", topic, "signalr", batch, invocation_id=f"w{i}", timeout=10)
            if completion.get("error") is None:
                signalr.ack(batch, resumed)
            else:
                signalr.failed.append(batch)
            i += 1
            await asyncio.sleep(PACE)

    async def pause_redis() -> None:
        assert own_redis.proc is not None
        clients = [*keyed, plain, signalr]
        while min(len(c.acked) for c in clients) < 3:  # load is flowing
            await asyncio.sleep(0.05)
        # Paused again (PAUSES at most) while some kind of client has not felt it: a pause that lands
        # while Redis runs a call of several keyed writes lets them all through (one call is atomic).
        for _ in range(PAUSES):
            os.kill(own_redis.proc.pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(PAUSE)
            finally:
                os.kill(own_redis.proc.pid, signal.SIGCONT)
            resumed.set()
            before = [c.acked_after_resume for c in clients]
            while min(c.acked_after_resume - b for c, b in zip(clients, before)) < 5:
                await asyncio.sleep(0.05)
            if plain.failed and signalr.failed and keyed_retries > 0:
                break
        stop.set()

    async with httpx.AsyncClient(base_url=server.url, headers=server.auth_headers, timeout=10) as client:
        async with asyncio.timeout(60):
            await asyncio.gather(*(keyed_client(client, n) for n in range(KEYED_CLIENTS)),
                                 plain_client(client), signalr_client(), pause_redis())

    def stored(stream_id: str) -> list[str]:
        return [e["id"] for e in server.get_events(topic, stream_id, limit=100_000)]

    def ids(batches: list[list[dict]]) -> list[str]:
        return [e["id"] for batch in batches for e in batch]

    # the pause was felt: writes failed, and the keyed client had to retry
    assert plain.failed and signalr.failed and keyed_retries > 0
    # every acknowledged write stored once, in order; no failed write stored, not even later
    assert await asyncio.to_thread(stored, "plain") == ids(plain.acked)
    assert await asyncio.to_thread(stored, "signalr") == ids(signalr.acked)
    # the keyed client's every batch, retried until acknowledged, stored exactly once
    for n in range(KEYED_CLIENTS):
        assert await asyncio.to_thread(stored, f"keyed{n}") == ids(keyed[n].acked)

