"""Who may use the hub: bearer tokens, from the Authorization header or the access_token query.

Browsers cannot set headers on WebSocket, SSE or long-polling requests, so the query form is accepted
everywhere; logs never see either (see logs.py).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Iterable

from starlette.requests import HTTPConnection

ANONYMOUS = "anonymous"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenAuth:
    """Callable on a request or WebSocket: the caller's name (a short, non-secret digest of its token)
    or None when the token is missing or wrong."""

    def __init__(self, tokens: Iterable[str], allow_anonymous: bool = False):
        tokens = list(tokens)
        # Looked up by digest, so comparing a guess never walks the secret byte by byte.
        self._users = {_digest(t): f"token:{_digest(t)[:8]}" for t in tokens if t}
        self._keys = [(t.encode(), self._users[_digest(t)]) for t in dict.fromkeys(tokens) if t]  # for HMACs
        self.allow_anonymous = allow_anonymous

    def __call__(self, conn: HTTPConnection) -> str | None:
        if self.allow_anonymous:
            return ANONYMOUS
        token = request_token(conn)
        if token is None:
            return None
        return self._users.get(_digest(token))

    def user_for(self, token: str) -> str | None:
        return ANONYMOUS if self.allow_anonymous else self._users.get(_digest(token))

    def user_for_signature(self, message: bytes, signature: bytes) -> str | None:
        """The user whose token, used as an HMAC-SHA256 key over `message`, gives `signature` (how
        Event Hubs' SharedAccessSignature proves a key without sending it); None when no token does."""
        if self.allow_anonymous:
            return ANONYMOUS
        found = None
        for key, user in self._keys:  # every key is tried, so the time taken says nothing of which
            if hmac.compare_digest(hmac.new(key, message, hashlib.sha256).digest(), signature):
                found = user
        return found


def request_token(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return conn.query_params.get("access_token") or None


def load_token_file(path: str) -> list[str]:
    """One token a line; blank lines and lines starting with # are skipped."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def token_path(data_dir: str) -> Path:
    """Where the generated token is kept."""
    return Path(data_dir) / "token"


def generated_token(data_dir: str) -> tuple[str, bool]:
    """The hub's own token, kept in data_dir so a restart does not lock reconnecting clients out.
    Returns (token, created_now)."""
    path = token_path(data_dir)
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token, False
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token, True
