"""A loopback TCP proxy for the reconnect tests: it forwards bytes both ways and can cut a WebSocket
connection abruptly, mid-frame, after a chosen number of client-to-server bytes (what a flaky
network does to a device: both ends just see the socket die)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass
class Link:
    """One client connection through the proxy."""

    number: int
    websocket: bool | None = None  # decided from the first request's headers
    upstream_bytes: int = 0
    downstream_bytes: int = 0
    cut: bool = False
    writers: list[asyncio.StreamWriter] = field(default_factory=list)


class CuttingProxy:
    """`cuts`: for the 1st, 2nd, ... WebSocket through the proxy, after how many client-to-server
    bytes to cut it (None: never). HTTP requests (negotiate) pass untouched."""

    def __init__(self, upstream_port: int, cuts: list[int | None]):
        self.upstream_port = upstream_port
        self.cuts = list(cuts)
        self.links: list[Link] = []
        self.websockets = 0
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self) -> "CuttingProxy":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in self.links:
            for writer in link.writers:
                writer.transport.abort()

    @property
    def cut_links(self) -> list[Link]:
        return [link for link in self.links if link.cut]

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        link = Link(len(self.links))
        self.links.append(link)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_writer.transport.abort()
            return
        link.writers = [client_writer, up_writer]
        await asyncio.gather(
            self._pump(link, client_reader, up_writer, upstream=True),
            self._pump(link, up_reader, client_writer, upstream=False),
            return_exceptions=True,
        )

    async def _pump(self, link: Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool) -> None:
        limit: int | None = None
        try:
            while not link.cut:
                data = await reader.read(65536)
                if not data:
                    break
                if upstream:
                    if link.websocket is None:
                        link.websocket = b"upgrade: websocket" in data.lower()
                        if link.websocket:
                            index = self.websockets
                            self.websockets += 1
                            limit = self.cuts[index] if index < len(self.cuts) else None
                    if limit is not None and link.upstream_bytes + len(data) > limit:
                        # Forward only part of this chunk (a frame cut in two), then kill both ends.
                        keep = max(0, limit - link.upstream_bytes)
                        writer.write(data[:keep])
                        link.upstream_bytes += keep
                        self._cut(link)
                        return
                    link.upstream_bytes += len(data)
                else:
                    link.downstream_bytes += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if not link.cut:
                with contextlib.suppress(Exception):
                    writer.close()

    def _cut(self, link: Link) -> None:
        link.cut = True
        for writer in link.writers:
            writer.transport.abort()  # RST, no close handshake: both sides see the socket die
