"""What an HTTP operation needs of its caller's token (issue 14), declared once on its Operation
(`access`) and checked by the guard after who (401) and before the rate limit (429) and the body,
so a refused request spends no budget and leaves no idempotency record.

    read, write      the scope `<action>:<topic>` (or `admin:<topic>`) for the topic the request names
    admin            `admin:*`: for a route that names no topic and is not open
    listing          any valid token; the reply shows only the topics the token may read (never a 403)
    any-valid-token  any valid token: negotiate, the transports (each hub call is checked on its own),
                     /whoami
    none             open: no token (auth "none")
"""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request

from ..auth.principal import Principal
from ..auth.scopes import Action

Access = Literal["read", "write", "admin", "listing", "any-valid-token", "none"]

#: The 403 reply's description in the OpenAPI document.
REFUSED = "The token lacks the scope this operation needs (the error names it)"

_NEEDS = {
    "read": "Scope: read:<topic> (or admin) on the topic the request names; without it 403.",
    "write": "Scope: write:<topic> (or admin) on the topic the request names; without it 403.",
    "admin": "Scope: admin:* (it names no topic); without it 403.",
    "listing": "Any valid token; shows only what the token may read (read:<topic>): a topic it may not read lists as empty, never a 403.",
    "any-valid-token": "Any valid token, whatever its scopes.",
    "none": "Open: no token needed.",
}


def needs(access: Access) -> str:
    """What the OpenAPI description says the operation needs."""
    return _NEEDS[access]


def refuses(access: Access) -> bool:
    """Whether a valid token can still be refused (403) for want of a scope."""
    return access in ("read", "write", "admin")


def missing_scope(access: Access, topic: str | None, principal: Principal) -> str | None:
    """The scope `principal` lacks for this request, as the 403 names it (`write:cars`); None: go on."""
    if access in ("read", "write"):
        if topic is None:  # the request names no topic: the handler answers 400, nothing is read or written
            return None
        action = Action(access)
        return None if principal.may(action, topic) else f"{action}:{topic}"
    if access == "admin":
        return None if principal.admin else f"{Action.ADMIN}:*"
    return None


def refusal(scope: str) -> str:
    return f"this token lacks {scope}"


def may_read(request: Request, topic: str) -> bool:
    """For listings: whether the guard's principal may read `topic` (filtered out when not)."""
    principal: Principal = request.state.principal
    return principal.may(Action.READ, topic)
