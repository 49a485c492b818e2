"""Who a request is: a bearer token (the Authorization header, or the access_token query that
browsers must use for WebSockets, SSE and long polling), looked up among the plain tokens, else
verified as a JWT when a JWT key is configured. Logs never see either (hub/logs.py).

Rotation without restart: --token-file, --jwt-secret-file and --jwt-public-key are re-read on
SIGHUP and when one of their modification times changes (looked at every RELOAD_INTERVAL s). A file
that no longer parses keeps the previous set, and the log says why. After each reload the
listeners run (the app closes the connections of revoked tokens).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from dataclasses import dataclass
from typing import Callable

from starlette.requests import HTTPConnection

from .jwt_bearer import JwtConfigError, JwtKeys, JwtVerifier, load_public_keys, load_secret_file
from .principal import ANONYMOUS, Principal
from .scopes import ADMIN
from .token_file import TokenEntry, TokenFileError, parse_token_file
from .tokens import TokenTable

log = logging.getLogger("hub.auth")

#: The Close error of a connection whose token a reload removed (allowReconnect false).
REVOKED = "The access token was revoked."
RELOAD_INTERVAL = 2.0  # seconds between looks at the files' modification times


@dataclass(frozen=True, slots=True)
class AuthConfig:
    tokens: tuple[str, ...] = ()  # --token and the generated token: admin
    token_file: str | None = None
    jwt_secret: str | None = None
    jwt_secret_file: str | None = None
    jwt_public_key: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    allow_anonymous: bool = False

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(f for f in (self.token_file, self.jwt_secret_file, self.jwt_public_key) if f)


class AuthError(ValueError):
    """A token file or JWT key that cannot be used at start: the hub does not start."""


def request_token(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return conn.query_params.get("access_token") or None


class Authenticator:
    """Callable on a request or WebSocket: its Principal, or None (refused)."""

    def __init__(self, config: AuthConfig):
        self.config = config
        self.tokens = TokenTable()
        self.jwt = JwtVerifier(JwtKeys())
        self.listeners: list[Callable[[], None]] = []
        self._stamps: dict[str, tuple[int, int, int] | None] = {}
        self._watcher: asyncio.Task | None = None
        self._sighup = False
        if config.jwt_secret and config.jwt_secret_file:
            raise AuthError("give --jwt-secret or --jwt-secret-file, not both")
        try:
            self._load()
        except (TokenFileError, JwtConfigError) as exc:
            raise AuthError(str(exc)) from None

    @property
    def allow_anonymous(self) -> bool:
        return self.config.allow_anonymous

    # --- who ---------------------------------------------------------------------------------------

    def __call__(self, conn: HTTPConnection) -> Principal | None:
        if self.config.allow_anonymous:
            return ANONYMOUS
        token = request_token(conn)
        return None if token is None else self.principal_for(token)

    def principal_for(self, token: str) -> Principal | None:
        if self.config.allow_anonymous:
            return ANONYMOUS
        principal = self.tokens.principal(token)
        if principal is None and self.jwt.keys.configured and JwtVerifier.looks_like_jwt(token):
            principal = self.jwt.principal(token)
        return principal

    def principal_for_signature(self, message: bytes, signature: bytes) -> Principal | None:
        if self.config.allow_anonymous:
            return ANONYMOUS
        return self.tokens.principal_for_signature(message, signature)

    # --- loading and reloading -------------------------------------------------------------------------

    def _load(self) -> None:
        """Read every file; swap in the new tokens and keys only when all of them parse."""
        config = self.config
        stamps = {path: _stamp(path) for path in config.files}
        entries = [TokenEntry(t, None, ADMIN) for t in config.tokens if t]
        if config.token_file:
            entries += parse_token_file(config.token_file)
        secret = config.jwt_secret.encode() if config.jwt_secret else None
        if config.jwt_secret_file:
            secret = load_secret_file(config.jwt_secret_file)
        public_keys = load_public_keys(config.jwt_public_key) if config.jwt_public_key else ()
        if secret is not None and len(secret) < 32:
            log.warning("the JWT secret is %d bytes; RFC 7518 asks for at least 32 for HS256", len(secret))
        keys = JwtKeys(secret, public_keys, config.jwt_issuer, config.jwt_audience)
        self.tokens.replace(_deduplicated(entries))
        if keys != self.jwt.keys:
            self.jwt.replace(keys)
        self._stamps = stamps

    def reload(self, why: str) -> bool:
        """Re-read the files now; False (and the previous set kept) when one does not parse."""
        try:
            self._load()
        except (TokenFileError, JwtConfigError) as exc:
            log.warning("auth reload (%s) failed, keeping the previous tokens and keys: %s", why, exc)
            self._stamps = {path: _stamp(path) for path in self.config.files}  # not retried until it changes again
            return False
        log.info("auth reloaded (%s): %d plain tokens%s", why, len(self.tokens),
                 ", JWT keys" if self.jwt.keys.configured else "")
        for listener in list(self.listeners):
            try:
                listener()
            except Exception:  # noqa: BLE001 - one listener's failure must not stop the others
                log.exception("an auth reload listener failed")
        return True

    def changed(self) -> bool:
        return any(_stamp(path) != stamp for path, stamp in self._stamps.items())

    async def start(self) -> None:
        """Reload on SIGHUP (when this thread may install it) and whenever a file changes."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
            loop.add_signal_handler(signal.SIGHUP, self.reload, "SIGHUP")
            self._sighup = True
        if self.config.files:
            self._watcher = asyncio.ensure_future(self._watch())

    async def stop(self) -> None:
        if self._sighup:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            self._sighup = False
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(RELOAD_INTERVAL)
            if self.changed():
                self.reload("a file changed")


def _stamp(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _deduplicated(entries: list[TokenEntry]) -> list[TokenEntry]:
    """A --token also in the file: the file's line wins (it may narrow it)."""
    by_token = {e.token: e for e in entries}
    return list(by_token.values())
