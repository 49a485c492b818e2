"""The hubs' check (Writer and Reader alike): may this caller use this topic, asked of its Principal
at each call and each delivery, never remembered from connect, so a reload applies at once.

A caller that is not a Principal (None: an endpoint without authentication) may nothing: fail closed.
"""

from __future__ import annotations

from typing import Any

from ..signalr.call import CallContext, Unauthorized
from .principal import Principal
from .scopes import Action

#: A Reader subscription's topic meaning "every topic" (hub/reader/subscriptions.py WILDCARD).
ANY_TOPIC = "*"


def may(principal: Any, action: Action, topic: str) -> bool:
    """Whether `principal` may `action` on `topic` now (an admin:* grant answers without the topic)."""
    return isinstance(principal, Principal) and principal.may(action, topic)


def authorize(call: CallContext, action: Action, topic: Any, *, wildcard: bool = False) -> None:
    """Raise Unauthorized (ASP.NET's Completion text) unless the caller may `action` on `topic`.

    A topic that is not a string goes on to the method's own validation, whose error says what is
    wrong with it. `wildcard`: `*` stands for every topic (a Reader subscription, whose deliveries
    are filtered one by one) and needs `action` on at least one."""
    principal = call.principal
    if not isinstance(principal, Principal):
        raise Unauthorized()
    if type(topic) is not str:
        return
    if wildcard and topic == ANY_TOPIC:
        allowed = principal.may_any(action)
    else:
        allowed = principal.may(action, topic)
    if not allowed:
        raise Unauthorized()
