"""Raw long-polling and Server-Sent Events connections over httpx, for the tests that must see the
exact requests and answers (status codes, headers, bodies) of the HTTP transports."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import httpx

RS = b"\x1e"


def records(body: bytes) -> list[dict]:
    """The JSON records in a body (complete records only: the body must end with 0x1E)."""
    assert body.endswith(RS), body
    return [json.loads(r) for r in body.split(RS)[:-1]]


async def negotiate(client: httpx.AsyncClient, hub_url: str, version: int = 1) -> tuple[str, dict]:
    """(the id transport requests carry, the negotiate reply)."""
    response = await client.post(f"{hub_url}/negotiate", params={"negotiateVersion": version})
    assert response.status_code == 200, (response.status_code, response.text)
    reply = response.json()
    return reply.get("connectionToken") or reply["connectionId"], reply


class LongPolling:
    """One long-polling connection: `poll`, `post`, `delete` are the bare requests."""

    def __init__(self, client: httpx.AsyncClient, hub_url: str, token: str):
        self.client, self.hub_url, self.id = client, hub_url, token

    @classmethod
    async def open(cls, client: httpx.AsyncClient, hub_url: str) -> LongPolling:
        """Negotiated, first poll done (it must answer at once: 200, empty)."""
        token, _ = await negotiate(client, hub_url)
        conn = cls(client, hub_url, token)
        first = await asyncio.wait_for(conn.poll(), 2)
        assert (first.status_code, first.content) == (200, b""), (first.status_code, first.content)
        return conn

    async def poll(self) -> httpx.Response:
        return await self.client.get(self.hub_url, params={"id": self.id})

    async def post(self, body: bytes | str) -> httpx.Response:
        return await self.client.post(self.hub_url, params={"id": self.id}, content=body)

    async def delete(self) -> httpx.Response:
        return await self.client.delete(self.hub_url, params={"id": self.id})

    async def next_records(self, timeout: float = 5.0) -> list[dict]:
        """Poll until a body with data comes; its records."""
        async with asyncio.timeout(timeout):
            while True:
                response = await self.poll()
                assert response.status_code == 200, (response.status_code, response.text)
                if response.content:
                    return records(response.content)

    async def handshake(self, protocol: str = "json") -> list[dict]:
        sent = await self.post(json.dumps({"protocol": protocol, "version": 1}).encode() + RS)
        assert sent.status_code == 200, (sent.status_code, sent.text)
        return await self.next_records()

    async def invoke(self, target: str, *arguments, invocation_id: str = "1") -> dict:
        body = json.dumps({"type": 1, "invocationId": invocation_id, "target": target, "arguments": list(arguments)})
        sent = await self.post(body.encode() + RS)
        assert sent.status_code == 200, (sent.status_code, sent.text)
        async with asyncio.timeout(5):
            while True:
                for record in await self.next_records():
                    if record.get("type") == 3 and record.get("invocationId") == invocation_id:
                        return record


class EventStream:
    """One Server-Sent Events connection: the streaming GET, read event by event."""

    def __init__(self, response: httpx.Response, chunks: AsyncIterator[bytes]):
        self.response = response
        self._chunks = chunks
        self.raw = b""  # every byte received, for transcripts
        self._buffer = b""

    async def read_until(self, marker: bytes, timeout: float = 5.0) -> bytes:
        """Bytes up to and including `marker`."""
        async with asyncio.timeout(timeout):
            while marker not in self._buffer:
                chunk = await anext(self._chunks)
                self.raw += chunk
                self._buffer += chunk
        end = self._buffer.index(marker) + len(marker)
        out, self._buffer = self._buffer[:end], self._buffer[end:]
        return out

    async def next_event(self, timeout: float = 5.0, skip_pings: bool = True) -> bytes:
        """The next event's data (the `data: ` lines joined), pings skipped unless asked."""
        while True:
            event = await self.read_until(b"\r\n\r\n", timeout)
            data = b"\n".join(line[len(b"data: ") :] for line in event[:-4].split(b"\r\n") if line.startswith(b"data: "))
            if skip_pings and data == b'{"type":6}\x1e':
                continue
            return data

    async def ended(self, timeout: float = 5.0) -> bytes:
        """Everything until the server ends the response."""
        rest = b""
        async with asyncio.timeout(timeout):
            async for chunk in self._chunks:
                self.raw += chunk
                rest += chunk
        return self._buffer + rest


@contextlib.asynccontextmanager
async def event_stream(client: httpx.AsyncClient, hub_url: str, token: str, **params) -> AsyncIterator[EventStream]:
    """GET with `Accept: text/event-stream`, as EventSource sends it (token in the query)."""
    request = client.build_request(
        "GET", hub_url, params={"id": token, **params}, headers={"Accept": "text/event-stream"}
    )
    response = await client.send(request, stream=True)
    try:
        yield EventStream(response, response.aiter_raw())
    finally:
        await response.aclose()
