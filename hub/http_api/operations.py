"""One HTTP operation described once: what the router serves, what the guard enforces, and what
the OpenAPI document says all come from the same Operation, so a route cannot exist undocumented
(tests/http/test_openapi.py compares the app's routes with the document).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .access import Access

Schema = dict[str, Any]
Handler = Callable[[Request], Awaitable[Response]]

#: How a caller proves who it is. none: open; bearer: the hub's token (401 without);
#: tinybird: the token as Tinybird senders pass it (403 without); eventhubs: a bearer token or an
#: Event Hubs SharedAccessSignature signed with one (401 without).
Auth = Literal["none", "bearer", "tinybird", "eventhubs"]


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    where: Literal["path", "query", "header"]
    schema: Schema
    description: str = ""
    required: bool = False


@dataclass(frozen=True, slots=True)
class Reply:
    description: str
    schema: Schema | None = None  # None: an empty body
    media: str = "application/json"
    headers: tuple[str, ...] = ()  # names from openapi.HEADERS


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    endpoint: Handler | None  # None: served by another layer (documented only)
    summary: str
    tag: str
    auth: Auth = "bearer"
    #: What the caller's token needs (access.py); a route that forgets to say needs admin:*.
    access: Access = "admin"
    #: The topic a request names: its scope is checked on it and it spends rate-limit budget on it;
    #: None for routes that name no topic.
    topic: Callable[[Request], str | None] | None = None
    params: tuple[Param, ...] = ()
    body: dict[str, Schema] | None = None  # media type -> schema
    body_required: bool = True
    replies: dict[int, Reply] = field(default_factory=dict)
    description: str = ""
    operation_id: str = ""

    def __post_init__(self) -> None:
        if (self.auth == "none") != (self.access == "none"):
            raise ValueError(f"{self.method} {self.path}: auth 'none' and access 'none' go together (an open route)")
        if self.access in ("read", "write") and self.topic is None:
            raise ValueError(f"{self.method} {self.path}: access {self.access!r} needs the topic the request names")

    @property
    def write(self) -> bool:
        """Writes data: what the idempotency layer (hub/http_api/idempotency.py) wraps."""
        return self.access == "write"


def path_topic(request: Request) -> str | None:
    return request.path_params.get("topic")


# --- what many operations share ---------------------------------------------------------------------

ERROR: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "description": "what was wrong, e.g. events[3].timestamp: expected an integer of nanoseconds"}},
}

#: Response headers by name, as OpenAPI header objects.
HEADERS: dict[str, Schema] = {
    "X-Next-Cursor": {
        "description": "present when more items may follow: pass it as `after` to read the next page",
        "schema": {"type": "string"},
    },
    "X-RateLimit-Limit": {"description": "requests a full budget holds (with --rate-limit)", "schema": {"type": "integer"}},
    "X-RateLimit-Remaining": {"description": "requests left in the budget (with --rate-limit)", "schema": {"type": "integer"}},
    "X-RateLimit-Reset": {"description": "seconds until the budget is full again (with --rate-limit)", "schema": {"type": "integer"}},
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer", "minimum": 1}},
    "WWW-Authenticate": {"description": "the scheme to authenticate with", "schema": {"type": "string"}},
}
RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")

_ERROR_TEXT = {
    400: "Bad input; the message names the field or the problem.",
    401: "No token, or not one of this hub's.",
    403: "No token, or not one of this hub's.",
    404: "No such stream.",
    413: "Body over --max-body-size, on the wire or once decompressed.",
    415: "Unsupported Content-Type or Content-Encoding.",
    429: "Over the rate limit (--rate-limit) of this token on this topic; Retry-After says when to retry.",
    503: "The store cannot take or serve data right now; safe to retry.",
}
_ERROR_HEADERS = {401: ("WWW-Authenticate",), 429: ("Retry-After", *RATE_LIMIT_HEADERS), 503: ("Retry-After",)}


def error_replies(*statuses: int) -> dict[int, Reply]:
    return {s: Reply(_ERROR_TEXT[s], ERROR, headers=_ERROR_HEADERS.get(s, ())) for s in statuses}


def build_routes(operations: list[Operation], wrap: Callable[[Operation], Handler]) -> list[Route]:
    """Starlette routes for the operations that have an endpoint, each wrapped (auth, rate limit)."""
    return [Route(op.path, wrap(op), methods=[op.method]) for op in operations if op.endpoint is not None]
