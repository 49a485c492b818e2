"""Who a connection belongs to, as the SignalR layer sees it: a name (logs, and whose transport
requests may use a negotiated connection) and when its credential expires. What the user may do is
the hub's business (ASP.NET's Context.User, given to hub methods as `CallContext.principal`).

A connection is closed when its user's credential expires, with a Close that lets the client come
back with a fresh one (ASP.NET's CloseOnAuthenticationExpiration): connections.Expiry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from starlette.requests import HTTPConnection

EXPIRED = "The access token expired; reconnect with a new one."


class User(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def expires_at(self) -> float | None:
        """Unix time at which the credential stops being valid; None: it does not expire."""


#: Who a request is: a User, or None when it must be refused with 401.
Authenticator = Callable[[HTTPConnection], "User | None"]


@dataclass(frozen=True, slots=True)
class NamedUser:
    """A user that is only a name (an embedding app's own authenticator may return these)."""

    name: str
    expires_at: float | None = None
