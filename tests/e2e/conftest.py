"""Fixtures for the end-to-end tests (the shared ones live in tests/conftest.py)."""

from __future__ import annotations

import contextlib

import pytest

from .support import RawConnection


class RawConnections:
    """Opens raw SignalR connections and closes them all at teardown."""

    def __init__(self) -> None:
        self.opened: list[RawConnection] = []

    async def open(self, server, **kwargs) -> RawConnection:
        """Connected (negotiate + WebSocket upgrade with the server's token), no handshake yet."""
        conn = await RawConnection.open(server.ws_url, server.token, hub_url=server.hub_url, **kwargs)
        self.opened.append(conn)
        return conn

    async def ready(self, server, **kwargs) -> RawConnection:
        """Connected with the JSON handshake done."""
        conn = await self.open(server, **kwargs)
        reply = await conn.handshake()
        assert reply == {}, reply
        return conn

    async def close_all(self) -> None:
        for conn in self.opened:
            with contextlib.suppress(Exception):
                await conn.close()


@pytest.fixture
async def raw_ws():
    connections = RawConnections()
    yield connections
    await connections.close_all()
