"""`GET /ready`: readiness for load balancers and orchestrators (no token).

200 `{"status": "ready"}` when the store can take writes, 503 `{"status": "unavailable"}` while it
cannot (e.g. Redis is unreachable): take this process out of rotation, do not restart it (`/health`
is the liveness check and stays 200).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..streams.store.base import StreamStore
from . import codec
from .operations import Operation, Reply

_STATUS = {"type": "object", "required": ["status"], "properties": {"status": {"enum": ["ready", "unavailable"]}}}


def ready_operation(store: StreamStore) -> Operation:
    async def ready(request: Request) -> Response:
        if await store.ready():
            return codec.json_response({"status": "ready"})
        return codec.json_response({"status": "unavailable"}, {"Retry-After": "1"}, status=503)

    return Operation(
        "GET", "/ready", ready, "Readiness: whether the store can take writes", "Service", auth="none", access="none",
        replies={200: Reply("Ready", _STATUS), 503: Reply("The store is unreachable", _STATUS, headers=("Retry-After",))},
        description="A load balancer's probe needs no token: this says only whether the store is reachable.",
    )
