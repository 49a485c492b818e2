"""X-Idempotency-Key when the store cannot take the record's release or finish (it went down right
after the write): the reply stays true, the record is settled once the store is back, and a retry
is neither refused with 409 for long nor run twice. In process, over a MemoryStore that can be
made to refuse the record calls."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.http_api.errors import HANDLERS, error_response
from hub.http_api.idempotency import IdempotentWrites
from hub.http_api.operations import Operation, path_topic
from hub.streams.store import MemoryStore, StoreUnavailable
from hub.streams.store.resolved import Resolved


class RecordsDown(MemoryStore):
    """A MemoryStore whose idempotency release and finish fail while `down`."""

    down = False

    def release_idempotency(self, *args: Any, **kwargs: Any) -> Awaitable[None]:
        if self.down:
            return Resolved.failed(StoreUnavailable("redis is unreachable (test)"))
        return super().release_idempotency(*args, **kwargs)

    def finish_idempotency(self, *args: Any, **kwargs: Any) -> Awaitable[None]:
        if self.down:
            return Resolved.failed(StoreUnavailable("redis is unreachable (test)"))
        return super().finish_idempotency(*args, **kwargs)


def _app(store: RecordsDown, write) -> Starlette:  # type: ignore[no-untyped-def]
    op = Operation("POST", "/t/{topic}", write, "a write", "test", topic=path_topic, access="write")
    [wrapped] = IdempotentWrites(store, max_body_size=1000).apply([op])
    assert wrapped.endpoint is not None

    async def unavailable(request: Request, exc: Exception) -> Response:
        return error_response(503, str(exc))

    return Starlette(routes=[Route(op.path, wrapped.endpoint, methods=["POST"])],
                     exception_handlers={**HANDLERS, StoreUnavailable: unavailable})


async def _post_until(client: httpx.AsyncClient, status: int, within: float) -> tuple[httpx.Response, int]:
    """POST the same keyed request until it is answered `status`; the reply and the 409s seen."""
    conflicts = 0
    loop = asyncio.get_running_loop()
    give_up = loop.time() + within
    while True:
        response = await client.post("/t/topic", content=b"batch", headers={"X-Idempotency-Key": "k"})
        if response.status_code == status:
            return response, conflicts
        assert response.status_code == 409 and response.headers["retry-after"] == "1", response.text
        conflicts += 1
        assert loop.time() < give_up, f"still 409 after {within} s"
        await asyncio.sleep(0.05)


async def test_a_failed_write_whose_release_was_lost_can_be_retried_soon() -> None:
    store = RecordsDown()
    runs = 0

    async def write(request: Request) -> Response:
        nonlocal runs
        runs += 1
        if runs == 1:
            store.down = True  # the write failed and the store went away with it
            raise StoreUnavailable("redis is unreachable (test)")
        return JSONResponse({"stored": runs})

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app(store, write)), base_url="http://hub") as client:
        first = await client.post("/t/topic", content=b"batch", headers={"X-Idempotency-Key": "k"})
        assert first.status_code == 503
        store.down = False  # back: the claim left pending is released in the background
        retry, _ = await _post_until(client, 200, within=3.0)
        assert retry.json() == {"stored": 2} and runs == 2


async def test_a_stored_write_whose_record_was_lost_is_answered_true_and_never_run_again() -> None:
    store = RecordsDown()
    runs = 0

    async def write(request: Request) -> Response:
        nonlocal runs
        runs += 1
        store.down = True  # stored, then the store went away before the record was finished
        return JSONResponse({"stored": runs})

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app(store, write)), base_url="http://hub") as client:
        first = await client.post("/t/topic", content=b"batch", headers={"X-Idempotency-Key": "k"})
        assert first.status_code == 200 and first.json() == {"stored": 1}  # not a 503: it was stored
        store.down = False  # back: the reply is recorded in the background
        retry, _ = await _post_until(client, 200, within=3.0)
        assert retry.headers.get("x-idempotency-replayed") == "true" and retry.json() == {"stored": 1}
        assert runs == 1

