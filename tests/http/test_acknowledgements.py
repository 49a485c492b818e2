"""The 200/202 split with a store we control, in process (httpx over ASGI): 200 only after the write
is durable, 202 before; a write the store fails is a 503 when awaited and a logged error (never a
200) when answered 202."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from e2e.support import events_url
from starlette.applications import Starlette

from hub.auth.authenticator import AuthConfig, Authenticator
from hub.http_api import errors
from hub.http_api.guard import Guard
from hub.http_api.operations import build_routes
from hub.http_api.routes import HttpApi
from hub.streams.service import StreamService
from hub.streams.store import MemoryStore, StoreUnavailable

TOKEN = "acks-secret-token"
EVENTS = b'[{"id": "a", "timestamp": 1}, {"id": "b", "timestamp": 2}]'
NDJSON = b'{"id": "a", "timestamp": 1}\nnot json\n'


class GatedStore(MemoryStore):
    """Event and quarantine writes are applied at call time (ordered) but durable only when the test
    says so, and then either succeed or fail."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[asyncio.Future] = []

    def _gate(self) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: f.exception())  # a failure nobody awaits is not a warning
        self.pending.append(future)
        return future

    def append_events(self, topic, stream_id, events):
        return _after(self._gate(), super().append_events(topic, stream_id, events))

    def append_quarantine(self, topic, rows):
        return _after(self._gate(), super().append_quarantine(topic, rows))

    def settle(self, error: Exception | None = None) -> None:
        for future in self.pending:
            if not future.done():
                future.set_exception(error) if error else future.set_result(None)


async def _after(gate: asyncio.Future, written):
    await gate
    return await written


@pytest.fixture
async def api():
    store = GatedStore()
    http_api = HttpApi(StreamService(store), max_body_size=1_000_000)
    app = Starlette(routes=build_routes(http_api.operations, Guard(Authenticator(AuthConfig(tokens=(TOKEN,)))).wrap),
                    exception_handlers=errors.HANDLERS)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub", headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client, store


async def post(client, body=EVENTS, media="application/json", **params):
    return await client.post(events_url("t", "s"), content=body, params=params, headers={"content-type": media})


@pytest.mark.parametrize(("body", "media"), [(EVENTS, "application/json"), (NDJSON, "application/x-ndjson")])
async def test_200_only_once_the_store_has_committed(api, body, media):
    client, store = api
    reply = asyncio.ensure_future(post(client, body, media))
    await asyncio.sleep(0.05)
    assert not reply.done()  # applied in order, not yet durable: no answer yet
    store.settle()
    response = await asyncio.wait_for(reply, 5)
    assert response.status_code == 200
    assert response.json() == ({"successful_rows": 2, "quarantined_rows": 0} if media == "application/json"
                               else {"successful_rows": 1, "quarantined_rows": 1})


async def test_a_failed_commit_is_a_503_never_a_200(api):
    client, store = api
    reply = asyncio.ensure_future(post(client))
    await asyncio.sleep(0.05)
    store.settle(StoreUnavailable("disk on fire"))
    response = await asyncio.wait_for(reply, 5)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "disk on fire" in response.json()["error"]


async def test_wait_false_is_202_before_the_commit(api):
    client, store = api
    response = await asyncio.wait_for(post(client, wait="false"), 5)
    assert response.status_code == 202 and response.json() == {"successful_rows": 2, "quarantined_rows": 0}
    store.settle()


async def test_a_202_write_that_fails_is_logged(api, caplog):
    client, store = api
    caplog.set_level(logging.ERROR, logger="hub.http")
    response = await post(client, NDJSON, "application/x-ndjson", wait="false")
    assert response.status_code == 202
    store.settle(StoreUnavailable("disk on fire"))
    for _ in range(100):
        if caplog.records:
            break
        await asyncio.sleep(0.01)
    [record] = caplog.records
    text = record.getMessage()
    assert "NOT stored" in text and "t/s" in text and "disk on fire" in text
    assert TOKEN not in text


@pytest.mark.parametrize("wait", ["maybe", "2"])
async def test_a_bad_wait_is_a_400(api, wait):
    client, _ = api
    response = await post(client, wait=wait)
    assert response.status_code == 400 and response.json() == {"error": f"wait: expected true or false, got {wait!r}"}
