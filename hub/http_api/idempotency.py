"""`X-Idempotency-Key`: a retried write is a no-op that gets the first reply again.

Applied to every write operation (Operation.write) inside the guard, so the caller is known. Per
token and topic (scope = the token's non-secret name + the topic), for 24 hours:

- first request with a key: the store records a *pending* claim (lease 60 s), the write runs, and
  its reply (status + body; any status below 500) is recorded before it is sent;
- the same key and the same request again (method, path, query and body bytes): the recorded reply,
  with `X-Idempotency-Replayed: true`, and nothing is written;
- the same key with a different request: 409;
- the same key while the first request still runs: 409 with Retry-After;
- a write that failed with 5xx (e.g. 503, the store is down) releases its claim: retry it.

Records live in the store (StreamStore.claim/finish/release_idempotency), so they are shared by
every hub process on one Redis and survive a restart with sqlite. Each claim names its attempt, so
a late release drops only its own claim, never a retry's.

When the store cannot take the release or the finished record (it is down), the reply is still
the true one (503 if the write failed, the write's own reply if it was stored) and the record is
settled in the background once the store is back: a retry meanwhile gets 409 with Retry-After: 1
until then, for about as long as the store is unreachable. A write answered failed is never
applied later (redis: see the store's deadline), so a released claim lets the retry store it once.
A crash between a write's commit and its record's commit (or a store down for the whole lease)
leaves a pending claim: a retry within its lease gets 409, after it the write runs again (the only
window where a retry can store a batch twice).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import secrets
from typing import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from ..streams.store.base import StoreUnavailable, StreamStore
from ..streams.errors import ValidationError
from . import codec
from .errors import ApiError
from .operations import ERROR, Handler, Operation, Param, Reply

HEADER = "X-Idempotency-Key"
LEASE = 60.0  # seconds a claim waits for its request to finish
TTL = 24 * 3600.0  # seconds a finished record is kept
MAX_KEY = 255
# Records whose release or finish waits in the background for the store to be back, at most; past
# it a record is left to its lease (a retry gets 409 until the lease ends, then runs again).
MAX_SETTLING = 1000
SETTLE_RETRY = 1.0  # seconds between two tries at most (first after 0.1 s, doubling)

KEY_PARAM = Param(
    HEADER, "header", {"type": "string", "minLength": 1, "maxLength": MAX_KEY, "pattern": "^[\\x21-\\x7e]+$"},
    "makes a retry of this request a no-op for 24 h (per token and topic): the retry gets the first reply",
)
CONFLICT = Reply(f"{HEADER} already used for another request, or the first request with it is still running.", ERROR)


class IdempotentWrites:
    def __init__(self, store: StreamStore, *, max_body_size: int):
        self.store = store
        self.max_body_size = max_body_size
        self._settling: set[asyncio.Future[None]] = set()

    def apply(self, operations: list[Operation]) -> list[Operation]:
        """The operations, each write's endpoint wrapped and its description told of the header."""
        return [self._wrap(op) if op.write and op.endpoint is not None else op for op in operations]

    def _wrap(self, op: Operation) -> Operation:
        endpoint = op.endpoint
        assert endpoint is not None

        async def idempotent(request: Request) -> Response:
            key = request.headers.get(HEADER)
            if key is None:
                return await endpoint(request)
            return await self._once(op, endpoint, request, key)

        idempotent.__name__ = getattr(endpoint, "__name__", "idempotent")
        return dataclasses.replace(
            op,
            endpoint=idempotent,
            params=(*op.params, KEY_PARAM),
            replies={**op.replies, 409: CONFLICT},
        )

    async def _once(self, op: Operation, endpoint: Handler, request: Request, key: str) -> Response:
        if not 1 <= len(key) <= MAX_KEY or not all(0x21 <= ord(c) <= 0x7E for c in key):
            raise ApiError(400, f"{HEADER}: expected 1 to {MAX_KEY} visible ASCII characters")
        body = await codec.read_body(request, self.max_body_size)
        request._body = body  # the endpoint reads the same bytes again (Starlette's own cache)
        digest = hashlib.sha256()
        for part in (request.method, request.url.path, request.url.query):
            digest.update(part.encode() + b"\0")
        digest.update(body)
        fingerprint = digest.hexdigest()
        user = getattr(request.state, "user", None) or "anonymous"
        topic = op.topic(request) if op.topic is not None else None
        scope = f"{user}/{topic or ''}"

        attempt = secrets.token_hex(8)
        try:
            found = await self.store.claim_idempotency(scope, key, fingerprint, LEASE, attempt)
        except StoreUnavailable:
            # the claim may be stored though its reply was lost: drop it once the store is back
            self._later(lambda: self.store.release_idempotency(scope, key, fingerprint, attempt))
            raise
        if found is not None:
            if found.fingerprint != fingerprint:
                raise ApiError(409, f"{HEADER} {key!r} was already used for a different request")
            if found.status is None:
                raise ApiError(
                    409, f"the first request with {HEADER} {key!r} is still being processed; retry later",
                    {"Retry-After": "1"},
                )
            return Response(found.body, found.status, media_type="application/json",
                            headers={"X-Idempotency-Replayed": "true"})
        try:
            response = await endpoint(request)
        except (ApiError, ValidationError) as exc:
            status = exc.status if isinstance(exc, ApiError) else 400
            if status >= 500:
                await self._release(scope, key, fingerprint, attempt)
            else:  # the same bad request gets the same answer
                await self._finish(scope, key, fingerprint, status, codec.dumps({"error": str(exc)}))
            raise
        except BaseException:
            await self._release(scope, key, fingerprint, attempt)
            raise
        if response.status_code >= 500:
            await self._release(scope, key, fingerprint, attempt)
        else:
            await self._finish(scope, key, fingerprint, response.status_code, bytes(response.body))
        return response

    async def _release(self, scope: str, key: str, fingerprint: str, attempt: str) -> None:
        """The request failed: free the key for a retry, now or once the store is back."""
        def release() -> Awaitable[None]:
            return self.store.release_idempotency(scope, key, fingerprint, attempt)

        try:
            await release()
        except Exception:  # noqa: BLE001 - the request's own error is what the caller must see
            self._later(release)

    async def _finish(self, scope: str, key: str, fingerprint: str, status: int, body: bytes) -> None:
        """Record the reply, now or once the store is back. Never raises: the reply is true either way
        (a write that was stored must not be answered as failed because its record was not)."""
        def finish() -> Awaitable[None]:
            return self.store.finish_idempotency(scope, key, fingerprint, status, body, TTL)

        try:
            await finish()
        except Exception:  # noqa: BLE001
            self._later(finish)

    def _later(self, settle: Callable[[], Awaitable[None]]) -> None:
        if len(self._settling) >= MAX_SETTLING:
            return
        task = asyncio.ensure_future(_keep_trying(settle, LEASE))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)


async def _keep_trying(settle: Callable[[], Awaitable[None]], within: float) -> None:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + within
    delay = 0.1
    while loop.time() < give_up:
        await asyncio.sleep(delay)
        try:
            await settle()
            return
        except Exception:  # noqa: BLE001 - still down: try again
            delay = min(delay * 2, SETTLE_RETRY)
