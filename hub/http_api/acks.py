"""Acknowledging writes: 200 once the store has committed, or 202 once the batch is in the ingestion
queue (the store's ordered-at-call-time write) with durability watched in the background.

A write answered 202 that the store then fails is logged (topic and stream, never a token); it was
never answered 200. A write awaited for a 200 that fails raises, and the guard answers 503.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable

from starlette.requests import Request

from .errors import ApiError

log = logging.getLogger("hub.http")

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def wait_param(request: Request, default: bool) -> bool:
    """The `wait` query: true = reply once committed (200), false = once accepted (202)."""
    raw = request.query_params.get("wait")
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ApiError(400, f"wait: expected true or false, got {raw!r}")


class Acknowledgements:
    def __init__(self) -> None:
        self._watching: set[asyncio.Future[Any]] = set()

    async def settle(self, written: Awaitable[Any], *, wait: bool, what: str) -> int:
        """The status to answer with: 200 after `written` resolved, or 202 at once."""
        if wait:
            await written
            return 200
        watch = asyncio.ensure_future(self._watch(written, what))
        self._watching.add(watch)
        watch.add_done_callback(self._watching.discard)
        return 202

    async def _watch(self, written: Awaitable[Any], what: str) -> None:
        try:
            await written
        except Exception as exc:  # noqa: BLE001 - nobody else will see it: log it
            log.error("a write answered 202 (accepted) was NOT stored: %s: %s: %s", what, type(exc).__name__, exc)

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) for the writes answered 202 to settle, so their failures are logged."""
        if self._watching:
            await asyncio.wait(set(self._watching), timeout=timeout)
