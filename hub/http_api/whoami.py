"""`GET /whoami`: who the token is and what it may do, for a client to show or disable what it
cannot use (the console does). Never echoes the token itself.

    {"user": "token:car-17", "scopes": ["write:cars", "read:cars"], "admin": false, "expiresAt": null}

`scopes` as granted (a plain token listed without scopes has `admin:*`); `admin` is `admin:*`;
`expiresAt` is a JWT's `exp` (Unix seconds), null for a plain token.

Open (no security requirement): it only describes the caller, and a missing, unknown or expired
token is described as nobody, `{"user": null, "scopes": [], "admin": false, "expiresAt": null}`. So
the route gives nothing to a token it would not give to no token; a client learns whether its token
works without a 401 it must tell apart from others.
"""

from __future__ import annotations

from typing import Callable

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from ..auth.principal import Principal
from . import codec
from .operations import Operation, Reply

NOBODY = {"user": None, "scopes": [], "admin": False, "expiresAt": None}

WHOAMI: dict = {
    "type": "object",
    "required": ["user", "scopes", "admin", "expiresAt"],
    "properties": {
        "user": {"type": ["string", "null"], "description": "token:<name>, token:<digest> or jwt:<sub>: what logs show; null: no valid token"},
        "scopes": {"type": "array", "items": {"type": "string"}, "description": "<action>:<topic pattern>, as granted"},
        "admin": {"type": "boolean", "description": "whether the token has admin:* (every topic, every route)"},
        "expiresAt": {"type": ["integer", "null"], "description": "a JWT's exp in Unix seconds; null: does not expire"},
    },
}


def whoami_json(principal: Principal | None) -> dict:
    if principal is None or principal.grant is None:
        return dict(NOBODY)
    grant = principal.grant
    expires = principal.expires_at
    return {
        "user": principal.name,
        "scopes": [str(scope) for scope in grant.scopes] if grant is not None else [],
        "admin": principal.admin,
        "expiresAt": None if expires is None else int(expires),
    }


def whoami_operation(authenticate: Callable[[HTTPConnection], Principal | None]) -> Operation:
    async def whoami(request: Request) -> Response:
        return codec.json_response(whoami_json(authenticate(request)))

    return Operation(
        "GET", "/whoami", whoami, "Who this token is and its scopes", "Service", auth="none", access="none",
        replies={200: Reply("The token's user, scopes and expiry (never the token); user null: no valid token", WHOAMI)},
    )
