"""One call of a hub method, as the hub sees it: who is calling, and the error whose text the caller
sees. A leaf: the dispatcher, the stream readers and every hub import it, it imports nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class CallContext:
    """Who is calling: the connection and what authentication said of it."""

    connection_id: str
    user: str | None = None  # the user's name, as logs and rate limits key it
    #: Who the authenticator said the caller is (its User object; ASP.NET's Context.User): what the
    #: hub asks what the caller may do, at each call.
    principal: Any = None
    items: dict[str, Any] = field(default_factory=dict)


class HubError(Exception):
    """An error whose message the caller should see (ASP.NET's HubException)."""


class Unauthorized(Exception):
    """The caller may not make this call: its Completion says ASP.NET's
    `Failed to invoke '<method>' because user is unauthorized`, and the connection stays open."""
