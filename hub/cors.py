"""Cross-origin use from browsers: which web apps (origins) may call the hub, and with what.

Two ASGI middlewares, outermost first (see `middleware`):
- Starlette's CORSMiddleware for every HTTP route (negotiate, SSE, long polling, the HTTP API):
  the listed origins only, echoed (never `*`, since the SignalR client sends credentials), the
  headers SignalR clients and the HTTP API send allowed in preflights, and the response headers a
  browser app must read exposed.
- `WebSocketOriginCheck`: browsers do not apply CORS to WebSockets, so an upgrade from a page of a
  foreign origin is refused here with 403. Requests without Origin (Node, Python, devices) and from
  the hub's own origin pass, and so do upgrades carrying `Authorization: Bearer …`: a browser page
  cannot set that header on a WebSocket, so such a request is not a page's (some device clients
  always send an Origin). The token itself is checked by the endpoint, as for any upgrade.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

log = logging.getLogger("hub.cors")

ALLOWED_METHODS = ["GET", "POST", "PUT", "DELETE"]
ALLOWED_HEADERS = [
    "Authorization",
    "X-Requested-With",
    "X-SignalR-User-Agent",
    "Content-Type",
    "Content-Encoding",
    "X-Idempotency-Key",
]
EXPOSED_HEADERS = [
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
    "X-Next-Cursor",
]


def middleware(origins: Collection[str]) -> list[Middleware]:
    """The CORS middlewares for `--cors-origin` values (none: no foreign origin is allowed)."""
    allowed = [o.rstrip("/") for o in origins]
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=allowed,
            allow_methods=ALLOWED_METHODS,
            allow_headers=ALLOWED_HEADERS,
            allow_credentials=True,
            expose_headers=EXPOSED_HEADERS,
        ),
        Middleware(WebSocketOriginCheck, allowed=allowed),
    ]


class WebSocketOriginCheck:
    def __init__(self, app: ASGIApp, allowed: Collection[str]):
        self.app = app
        self.any_origin = "*" in allowed
        self.allowed = {o.lower() for o in allowed}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if (
                origin is not None
                and not _bearer(headers.get("authorization"))
                and not self.allows(origin, scope["scheme"], headers.get("host", ""))
            ):
                await _refuse(WebSocket(scope, receive, send), origin)
                return
        await self.app(scope, receive, send)

    def allows(self, origin: str, scheme: str, host: str) -> bool:
        origin = origin.lower()
        own = f"{'https' if scheme == 'wss' else 'http'}://{host.lower()}"
        return self.any_origin or origin == own or origin in self.allowed


def _bearer(header: str | None) -> bool:
    """`Bearer <something>`: what the endpoint authenticates first (hub/auth/authenticator.py `request_token`)."""
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    return scheme.lower() == "bearer" and bool(value.strip())


async def _refuse(ws: WebSocket, origin: str) -> None:
    log.info("WebSocket upgrade from origin %s refused: not in --cors-origin", origin)
    text = f"Origin {origin} is not allowed to use this hub (the hub's --cors-origin list)."
    try:
        await ws.send_denial_response(PlainTextResponse(text, status_code=403))
    except RuntimeError:  # the server cannot send a denial response: closing before accept is a 403
        await ws.close(code=1008)
