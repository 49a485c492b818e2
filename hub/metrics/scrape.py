"""`GET /metrics`: the registry in Prometheus' text format, and the families read when scraped.

No token unless --metrics-token is set; then `Authorization: Bearer <that token>` (or
`?access_token=`), or any admin token of the hub (`admin:*`; another valid token gets 403). Served
beside the guarded HTTP operations (the guard knows only the hub's tokens) and documented with them.
"""

from __future__ import annotations

import hmac
from typing import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..auth.authenticator import request_token
from ..auth.principal import Principal
from ..http_api import access, codec
from ..http_api.operations import Operation, Reply, error_replies

PATH = "/metrics"


class MetricsEndpoint:
    """`before_scrape` runs first (it reads what must be awaited, e.g. whether the store is up)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        before_scrape: Callable[[], Awaitable[None]],
        token: str | None = None,
        authenticate: Callable[[HTTPConnection], Principal | None] | None = None,
    ):
        self.registry = registry
        self.before_scrape = before_scrape
        self.token = token
        self.authenticate = authenticate

    def refusal(self, request: Request) -> Response | None:
        """None when the request may scrape; else its 401 (who) or 403 (a valid token, not admin)."""
        if self.token is None:
            return None
        given = request_token(request)
        if given is not None and hmac.compare_digest(given.encode(), self.token.encode()):
            return None
        principal = self.authenticate(request) if self.authenticate is not None else None
        if principal is None:
            return codec.json_response(
                {"error": "Unauthorized: /metrics needs the --metrics-token or an admin token (Authorization: Bearer <token>)."},
                {"WWW-Authenticate": "Bearer"}, status=401,
            )
        if not principal.admin:
            return codec.json_response({"error": access.refusal("admin:*")}, status=403)
        return None

    async def metrics(self, request: Request) -> Response:
        refused = self.refusal(request)
        if refused is not None:
            return refused
        await self.before_scrape()
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    @property
    def routes(self) -> list[BaseRoute]:
        return [Route(PATH, self.metrics, methods=["GET"])]

    @property
    def operation(self) -> Operation:
        """Documented only: served by `routes`, not through the guard."""
        return Operation(
            "GET", PATH, None, "Prometheus metrics (text format)", "Service",
            auth="none" if self.token is None else "bearer",
            access="none" if self.token is None else "admin",
            replies={200: Reply("Metrics in Prometheus' text exposition format", {"type": "string"},
                                media=CONTENT_TYPE_LATEST),
                     **(error_replies(401) if self.token is not None else {})},
            description="Off with --no-metrics. With --metrics-token, that token or an admin token (admin:*) is needed.",
            operation_id="metrics",
        )
