"""`GET /whoami`: who the token is and what it may do, for a client to show or disable what it
cannot use (the console does). Any valid token; never echoes the token itself.

    {"user": "token:car-17", "scopes": ["write:cars", "read:cars"], "admin": false, "expiresAt": null}

`scopes` as granted (a plain token listed without scopes has `admin:*`); `admin` is `admin:*`;
`expiresAt` is a JWT's `exp` (Unix seconds), null for a plain token.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..auth.principal import Principal
from . import codec
from .operations import Operation, Reply, error_replies

WHOAMI: dict = {
    "type": "object",
    "required": ["user", "scopes", "admin", "expiresAt"],
    "properties": {
        "user": {"type": "string", "description": "token:<name>, token:<digest> or jwt:<sub>: what logs show"},
        "scopes": {"type": "array", "items": {"type": "string"}, "description": "<action>:<topic pattern>, as granted"},
        "admin": {"type": "boolean", "description": "whether the token has admin:* (every topic, every route)"},
        "expiresAt": {"type": ["integer", "null"], "description": "a JWT's exp in Unix seconds; null: does not expire"},
    },
}


def whoami_json(principal: Principal) -> dict:
    grant = principal.grant
    expires = principal.expires_at
    return {
        "user": principal.name,
        "scopes": [str(scope) for scope in grant.scopes] if grant is not None else [],
        "admin": principal.admin,
        "expiresAt": None if expires is None else int(expires),
    }


async def whoami(request: Request) -> Response:
    return codec.json_response(whoami_json(request.state.principal))


def whoami_operation() -> Operation:
    return Operation(
        "GET", "/whoami", whoami, "Who this token is and its scopes", "Service", access="any-valid-token",
        replies={200: Reply("The token's user, scopes and expiry (never the token)", WHOAMI), **error_replies(401)},
    )
