"""One call of a hub method, as the hub sees it: who is calling, and the error whose text the caller
sees. A leaf: the dispatcher, the stream readers and every hub import it, it imports nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class CallContext:
    """Who is calling: the connection and what authentication said of it."""

    connection_id: str
    user: str | None = None
    items: dict[str, Any] = field(default_factory=dict)


class HubError(Exception):
    """An error whose message the caller should see (ASP.NET's HubException)."""
