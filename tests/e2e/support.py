"""Helpers for the end-to-end tests: event batches, the HTTP API's event route and curl, and a raw SignalR
JSON connection over the `websockets` library for the tests that must send exactly the bytes they
choose. Shared by tests/e2e, tests/http and tests/reader (importable as `e2e.support`)."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import signal
import subprocess
import threading
from typing import Any

import httpx
import pytest
from signalrcore.hub_connection_builder import HubConnectionBuilder
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

RS = "\x1e"

# After a clean shutdown on SIGTERM, uvicorn re-raises the signal, so the exit status is -SIGTERM;
# -SIGKILL would mean the hub did not stop within the fixture's timeout.
GRACEFUL_EXIT = (0, -signal.SIGTERM)

# 2021-04-11T09:37:49Z in nanoseconds; above 2^53, yet every BASE_TS + k * 1e9 is an exact double,
# so the JavaScript client (whose numbers are doubles) sends exactly these digits.
BASE_TS = 1_618_133_869_000_000_000
SECOND = 1_000_000_000


def make_events(n: int, prefix: str = "ev", start: int = 0, base: int = BASE_TS) -> list[dict]:
    """n complete events with distinct ids (`{prefix}-{i}`), values and tags, timestamps one second apart."""
    events = []
    for i in range(start, start + n):
        ts = base + i * SECOND
        assert int(float(ts)) == ts, "timestamp would not survive a JavaScript number"
        events.append({"id": f"{prefix}-{i}", "timestamp": ts, "value": f"{prefix} value {i}", "tags": {"n": str(i)}})
    return events


def batches_of(events: list[dict], size: int) -> list[list[dict]]:
    return [events[i : i + size] for i in range(0, len(events), size)]


# --- the HTTP API ---------------------------------------------------------------------------------


def events_url(topic: str, stream_id: str) -> str:
    """The path of a stream's events: POST a batch to it, GET a page of it."""
    return f"/topics/{topic}/streams/{stream_id}/events/data"


def ndjson(items: list) -> bytes:
    """One JSON document a line, each line ended by a newline."""
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed (scripts/test installs it)")


def curl(*args: str) -> tuple[int, dict[str, str], str]:
    """Run curl; return (status, headers lower-cased, body)."""
    done = subprocess.run(
        [CURL, "-sS", "-D", "-", *args], capture_output=True, text=True, timeout=20, check=True  # type: ignore[list-item]
    )
    head, _, body = done.stdout.replace("\r\n", "\n").partition("\n\n")
    status_line, *lines = head.splitlines()
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


# --- raw SignalR over websockets ------------------------------------------------------------------


async def negotiate(hub_url: str, token: str | None, version: int = 1, stateful: bool = False) -> dict:
    """The negotiate reply (asserting a 200); `stateful` asks for stateful reconnect."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    params: dict[str, str | int] = {"negotiateVersion": version}
    if stateful:
        params["useStatefulReconnect"] = "true"
    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.post(f"{hub_url}/negotiate", params=params, headers=headers)
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


class RawConnection:
    """A SignalR JSON connection driven by hand: send any text, read records one at a time."""

    def __init__(self, ws: ClientConnection):
        self.ws = ws
        self._buffer = ""
        self._records: list[str] = []
        self.wire: list[tuple[str, str | bytes]] = []  # ("C→S" | "S→C", frame), for transcripts

    @classmethod
    async def open(
        cls,
        ws_url: str,
        token: str | None,
        *,
        use_negotiate: bool = True,
        hub_url: str | None = None,
        token_in_query: bool = False,
    ) -> "RawConnection":
        url = ws_url
        query = []
        if use_negotiate:
            reply = await negotiate(hub_url or ws_url.replace("ws://", "http://", 1), token)
            query.append(f"id={reply.get('connectionToken') or reply['connectionId']}")
        headers = {}
        if token and token_in_query:
            query.append(f"access_token={token}")
        elif token:
            headers["Authorization"] = f"Bearer {token}"
        if query:
            url += "?" + "&".join(query)
        ws = await connect(url, additional_headers=headers, max_size=None, open_timeout=5, ping_interval=None)
        return cls(ws)

    async def send_text(self, text: str) -> None:
        self.wire.append(("C→S", text))
        await self.ws.send(text)

    async def send(self, *messages: dict) -> None:
        """Several records in one frame."""
        await self.send_text("".join(json.dumps(m) + RS for m in messages))

    async def handshake(self, protocol: str = "json", version: int = 1, timeout: float = 5.0) -> dict:
        await self.send_text(json.dumps({"protocol": protocol, "version": version}) + RS)
        return await self.recv(timeout, skip_pings=False)

    async def recv(self, timeout: float = 5.0, skip_pings: bool = True) -> dict:
        """The next record, as a dict. Raises ConnectionClosed when the socket closes first."""
        while True:
            while not self._records:
                frame = await asyncio.wait_for(self.ws.recv(), timeout)
                self.wire.append(("S→C", frame))
                if isinstance(frame, bytes):
                    raise AssertionError(f"binary frame on a JSON connection: {frame!r}")
                self._buffer += frame
                *complete, self._buffer = self._buffer.split(RS)
                self._records.extend(complete)
            record = json.loads(self._records.pop(0))
            if skip_pings and record.get("type") == 6:
                continue
            return record

    async def records_until_closed(self, timeout: float = 5.0) -> list[dict]:
        """Every record (pings excluded) until the server closes the socket; fails on a timeout."""
        records: list[dict] = []
        async with asyncio.timeout(timeout):
            while True:
                try:
                    records.append(await self.recv(timeout))
                except ConnectionClosed:
                    return records

    async def invoke(self, target: str, *arguments: Any, invocation_id: str = "1", timeout: float = 5.0) -> dict:
        """Send an Invocation and return its Completion (other records are skipped)."""
        await self.send({"type": 1, "invocationId": invocation_id, "target": target, "arguments": list(arguments)})
        async with asyncio.timeout(timeout):
            while True:
                record = await self.recv(timeout)
                if record.get("type") == 3 and record.get("invocationId") == invocation_id:
                    return record

    async def close(self) -> None:
        await self.ws.close()


async def assert_still_serves(conn: RawConnection, server, topic: str, stream_id: str, prefix: str) -> None:
    """`conn` (opened before some other connection misbehaved) can still invoke SendEventData,
    and the events are stored."""
    events = make_events(2, prefix)
    completion = await conn.invoke("SendEventData", topic, stream_id, events, invocation_id=f"ok-{prefix}")
    assert completion.get("error") is None, completion
    assert "result" in completion and completion["result"] is None, completion
    stored = await asyncio.to_thread(server.get_events, topic, stream_id)
    assert [e["id"] for e in stored][-2:] == [e["id"] for e in events]


# --- signalrcore (sync, threads) -------------------------------------------------------------------


class SignalrcoreSession:
    """A signalrcore connection used from the test thread, every wait bounded."""

    def __init__(self, url: str, token: str | None):
        options: dict[str, Any] = {}
        if token is not None:
            options["access_token_factory"] = lambda: token
        self.connection = (
            HubConnectionBuilder().with_url(url, options=options).configure_logging(logging.WARNING).build()
        )
        self.opened = threading.Event()
        self.closed = threading.Event()
        self.errors: list[Any] = []
        self._results: dict[str, Any] = {}
        self._done: dict[str, threading.Event] = {}
        self.connection.on_open(self.opened.set)
        self.connection.on_close(self.closed.set)
        self.connection.on_error(self._on_error)

    def _on_error(self, message: Any) -> None:
        self.errors.append(message)
        invocation_id = getattr(message, "invocation_id", None)
        if invocation_id in self._done:
            self._results[invocation_id] = message
            self._done[invocation_id].set()

    def start(self, timeout: float = 10.0) -> None:
        self.connection.start()
        assert self.opened.wait(timeout), f"signalrcore did not connect within {timeout} s"

    def invoke(self, method: str, arguments: list, invocation_id: str, timeout: float = 10.0) -> Any:
        done = self._done[invocation_id] = threading.Event()

        def on_completion(message: Any) -> None:
            self._results[invocation_id] = message
            done.set()

        self.connection.invoke(method, arguments, on_completion, invocation_id=invocation_id)
        assert done.wait(timeout), f"no Completion for {method} ({invocation_id}) within {timeout} s"
        return self._results[invocation_id]

    def stop(self, timeout: float = 10.0) -> None:
        self.connection.stop()
        self.closed.wait(timeout)
