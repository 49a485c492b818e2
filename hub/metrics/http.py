"""`http_requests_total{route,method,status}` and `http_request_duration_seconds{route,method}`: an
ASGI middleware around the app.

`route` is the template of the route that answered (`/topics/{topic}/streams/{stream}/events/data`),
never the raw path; a request no route matched is `route="unmatched"`, a method outside HTTP's usual
ones `method="unknown"`. Requests held open on purpose (long polls and Server-Sent Events, the SignalR
transports' GETs) are counted but not timed. WebSockets are counted as SignalR connections instead.
"""

from __future__ import annotations

import time
from typing import Collection

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .durations import BUCKETS

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpRequestMetrics:
    def __init__(self, registry: CollectorRegistry, untimed: Collection[tuple[str, str]] = ()):
        """`untimed`: (method, route) pairs counted but not timed."""
        self.requests = Counter("http_requests", "HTTP requests answered.", ["route", "method", "status"], registry=registry)
        self.durations = Histogram("http_request_duration_seconds", "HTTP request durations, to the response's end "
                                   "(long polls and Server-Sent Events excluded).", ["route", "method"],
                                   registry=registry, buckets=BUCKETS)
        self.untimed = frozenset(untimed)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """`app` with every HTTP request counted (for Starlette's `Middleware(...)`)."""

        async def counted(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                return await app(scope, receive, send)
            started = time.perf_counter()
            status = 500  # what the server answers when the app raises before it responded

            async def send_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_status)
            finally:
                self.observe(scope, status, time.perf_counter() - started)

        return counted

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in METHODS else "unknown"
        route = route_template(scope)
        self.requests.labels(route, method, str(status)).inc()
        if (method, route) not in self.untimed:
            self.durations.labels(route, method).observe(seconds)


def route_template(scope: Scope) -> str:
    """The path template of the route that answered the request in `scope`, or UNMATCHED."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path is None:
        return UNMATCHED
    return f"{path}/{{path}}" if isinstance(route, Mount) else path
