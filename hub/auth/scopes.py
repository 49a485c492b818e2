"""What a token may do: scopes `<action>:<topic pattern>`, as Tinybird's DATASOURCES:APPEND:<name>.

Actions: `read` (every GET of data, listings, Reader subscriptions, ReadEventData), `write` (create,
update, close, send: every HTTP write and drop-in), `admin` (everything, including what later
features add). Neither read nor write implies the other; admin implies both. The pattern is a topic
name or a glob in which only `*` is special (`cars`, `cars-*`, `*`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Iterable


class Action(StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


class ScopeError(ValueError):
    """A scope that does not parse; the message says why (and never holds a token)."""


@dataclass(frozen=True, slots=True)
class Scope:
    action: Action
    pattern: str

    @classmethod
    def parse(cls, text: str) -> "Scope":
        """`write:cars`, split at the first `:`."""
        action, colon, pattern = text.partition(":")
        if not colon:
            raise ScopeError(f"{text!r} is not a scope: expected <action>:<topic pattern>, e.g. write:cars or admin:*")
        try:
            kind = Action(action)
        except ValueError:
            raise ScopeError(f"{text!r} is not a scope: the action must be read, write or admin") from None
        if not pattern:
            raise ScopeError(f"{text!r} is not a scope: the topic pattern is empty (use * for every topic)")
        if "/" in pattern or any(c < " " or "\x7f" <= c <= "\x9f" for c in pattern):
            raise ScopeError(f"{text!r} is not a scope: a topic pattern holds no '/' and no control characters")
        return cls(kind, pattern)

    def __str__(self) -> str:
        return f"{self.action}:{self.pattern}"


def _matcher(pattern: str):
    if pattern == "*":
        return None  # every topic
    if "*" not in pattern:
        return pattern.__eq__
    regex = re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)
    return lambda topic: regex.fullmatch(topic) is not None


class Grant:
    """A set of scopes, asked `allows(action, topic)` on every call and delivery (so it is cheap:
    an `admin:*` grant answers without looking at the topic)."""

    __slots__ = ("scopes", "_rules", "_everything")

    def __init__(self, scopes: Iterable[Scope]):
        self.scopes: tuple[Scope, ...] = tuple(dict.fromkeys(scopes))
        # action -> matchers; None in the list matches every topic
        self._rules: dict[Action, list] = {a: [] for a in Action}
        for scope in self.scopes:
            self._rules[scope.action].append(_matcher(scope.pattern))
        self._everything = None in self._rules[Action.ADMIN]

    @classmethod
    def parse(cls, texts: Iterable[str]) -> "Grant":
        return cls(Scope.parse(t) for t in texts)

    @property
    def admin(self) -> bool:
        """`admin:*`: everything, on every topic (what routes without a topic, such as /metrics, need)."""
        return self._everything

    def allows(self, action: Action, topic: str) -> bool:
        if self._everything:
            return True
        actions = (action, Action.ADMIN) if action is not Action.ADMIN else (Action.ADMIN,)
        for kind in actions:
            for match in self._rules[kind]:
                if match is None or match(topic):
                    return True
        return False

    def allows_any(self, action: Action) -> bool:
        """Whether some topic allows `action` (a `*` subscription needs read on at least one)."""
        return bool(self._rules[action] or self._rules[Action.ADMIN])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Grant) and set(self.scopes) == set(other.scopes)

    def __hash__(self) -> int:
        return hash(frozenset(self.scopes))

    def __repr__(self) -> str:
        return f"Grant({' '.join(map(str, self.scopes))})"


#: What a plain token with no scopes listed, --token and the generated token have.
ADMIN = Grant([Scope(Action.ADMIN, "*")])
