"""Who is calling, as every check sees it: a user name for logs, rate limits and ownership, and a
grant looked up afresh at each question, never copied at connect, so a reload that narrows or
removes a token applies to the connections it already opened (issue 14).
"""

from __future__ import annotations

import time
from typing import Protocol

from .scopes import ADMIN, Action, Grant


class GrantSource(Protocol):
    def grant_for(self, key: str) -> Grant | None:
        """The grant `key` has now; None when it no longer has any (revoked, or its JWT expired)."""


class Principal:
    """`name` is `token:<name>`, `token:<digest>`, `jwt:<sub>` or `anonymous`: what logs show. `key` is
    what the source looks the grant up by (a token's digest, or a JWT's own text: a secret, never
    logged or shown)."""

    __slots__ = ("name", "key", "expires_at", "_source")

    def __init__(self, name: str, key: str, source: GrantSource, expires_at: float | None = None):
        self.name = name
        self.key = key
        self.expires_at = expires_at  # Unix time: a JWT's exp; None for tokens that do not expire
        self._source = source

    @property
    def grant(self) -> Grant | None:
        return self._source.grant_for(self.key)

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and time.time() >= self.expires_at

    @property
    def revoked(self) -> bool:
        """No longer let in, for a reason other than its expiry (a reload removed it)."""
        return self.grant is None and not self.expired

    def may(self, action: Action, topic: str) -> bool:
        grant = self.grant
        return grant is not None and grant.allows(action, topic)

    def may_any(self, action: Action) -> bool:
        grant = self.grant
        return grant is not None and grant.allows_any(action)

    @property
    def admin(self) -> bool:
        grant = self.grant
        return grant is not None and grant.admin

    def __repr__(self) -> str:  # the key may be a secret: never shown
        return f"Principal({self.name!r})"


class _Everyone:
    def grant_for(self, key: str) -> Grant | None:
        return ADMIN


#: --allow-anonymous: every caller, allowed everything.
ANONYMOUS = Principal("anonymous", "", _Everyone())
