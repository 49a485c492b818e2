"""The HTTP edge against a real hub process, with each HTTP/1.1 parser uvicorn can use: request heads
bounded (431), connections closed when their head is late or they idle, and a healthy client served
while thousands of slow ones are open."""

from __future__ import annotations

import contextlib
import json
import resource
import select
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from .support import RS

MAX_HEAD = 16 * 1024
ERROR_431 = {"error": "Request header fields too large: the request line and headers must fit in 16384 bytes."}

parsers = pytest.mark.parametrize("parser", ["httptools", "h11"])


def connect(server, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_response(sock: socket.socket, pending: bytearray | None = None) -> tuple[int, dict, bytes]:
    """One HTTP/1.1 response with a Content-Length (all the hub's short answers have one).
    `pending`: bytes already read past the previous response, and where to keep those past this one
    (pipelined responses can arrive in one read)."""
    data = bytes(pending or b"")
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        body += chunk
    if pending is not None:
        pending[:] = body[length:]
    return int(lines[0].split()[1]), headers, body[:length]


def request(path: str, *, size: int | None = None, extra: str = "", body: bytes = b"", method: str = "GET") -> bytes:
    """A request whose head (request line to the blank line included) is `size` bytes when given,
    padded with an X-Pad header."""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    if size is not None:
        pad = size - len(head) - len("X-Pad: \r\n\r\n")
        assert pad >= 0
        head += f"X-Pad: {'p' * pad}\r\n"
    out = (head + "\r\n").encode()
    assert size is None or len(out) == size
    return out + body


def closed_by_server(sock: socket.socket, timeout: float) -> float | None:
    """Seconds until the server closes `sock` (EOF or reset), or None if it stays open `timeout` s."""
    started = time.monotonic()
    return None if wait_closed([sock], timeout) else time.monotonic() - started


def wait_closed(socks: list[socket.socket], timeout: float) -> list[socket.socket]:
    """Wait until the server has closed every one of `socks` (EOF or reset); those still open after `timeout` s."""
    poller = select.poll()  # not select(): descriptors above 1024
    pending = {s.fileno(): s for s in socks}
    for fd, s in pending.items():
        s.setblocking(False)
        poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + timeout
    while pending and (left := deadline - time.monotonic()) > 0:
        for fd, _ in poller.poll(left * 1000):
            try:
                gone = pending[fd].recv(65536) == b""
            except ConnectionResetError:
                gone = True
            except BlockingIOError:
                gone = False
            if gone:
                poller.unregister(fd)
                del pending[fd]
    return list(pending.values())


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


# --- 1. the request head is bounded ----------------------------------------------------------------


@parsers
def test_request_head_over_16_kib_is_refused_with_431(hub_server, parser):
    server = hub_server("--http", parser)
    with connect(server) as sock:  # exactly the bound: served, and the connection kept
        sock.sendall(request("/health", size=MAX_HEAD))
        status, _, _ = read_response(sock)
        assert status == 200
        sock.sendall(request("/health", size=MAX_HEAD + 1))  # one byte more, on the same connection
        status, headers, body = read_response(sock)
        assert (status, headers["content-type"], json.loads(body)) == (431, "application/json", ERROR_431)
        assert closed_by_server(sock, 3) is not None
    # one long URL, then one long header, each arriving in pieces
    for raw in (request("/health?q=" + "u" * MAX_HEAD), request("/health", extra=f"X-Long: {'h' * MAX_HEAD}\r\n")):
        with connect(server) as sock:
            for i in range(0, len(raw), 1000):
                with contextlib.suppress(OSError):
                    sock.sendall(raw[i : i + 1000])
            status, _, body = read_response(sock)
            assert (status, json.loads(body)) == (431, ERROR_431)
    # whole in one write, after the empty lines httptools skips before a request (h11 refuses them: 400)
    with connect(server) as sock:
        sock.sendall(b"\r\n\r\n" + request("/health", size=4 * MAX_HEAD))
        status, _, body = read_response(sock)
        assert status == (431 if parser == "httptools" else 400), (status, body)
    with server.http() as client:  # and the hub goes on
        assert client.get("/health").status_code == 200


@parsers
def test_a_64_mib_head_is_refused_at_once_without_being_kept(hub_server, parser):
    server = hub_server("--http", parser)
    before = rss_kib(server.proc.pid)
    sock = connect(server, timeout=10)
    sent = threading.Event()

    def send() -> None:  # the client keeps sending: the hub reads and drops it, or closes
        chunk = b"a" * (1 << 20)
        with contextlib.suppress(OSError):
            sock.sendall(b"GET /")
            for _ in range(64):
                sock.sendall(chunk)
        sent.set()

    started = time.monotonic()
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    status, _, body = read_response(sock)
    elapsed = time.monotonic() - started
    sender.join(10)
    sock.close()
    assert (status, json.loads(body)) == (431, ERROR_431)
    assert elapsed < 1.0, elapsed
    assert rss_kib(server.proc.pid) - before < 8 * 1024, "the hub kept what it refused"
    with server.http() as client:
        assert client.get("/health").status_code == 200


@parsers
def test_a_head_within_the_bound_is_served_whatever_follows_it(hub_server, parser, unique):
    """A 15 KiB head and a 200 KB body in one write: the bound is on the head, not on what follows."""
    server = hub_server("--http", parser)
    topic, stream = unique("t"), unique("s")
    events = [{"id": f"e{i}", "timestamp": 1_618_133_869_000_000_000 + i, "value": "v" * 100} for i in range(1500)]
    body = json.dumps(events).encode()
    assert len(body) > 10 * MAX_HEAD
    extra = f"Authorization: Bearer {server.token}\r\nContent-Type: application/json\r\n"
    raw = request(f"/topics/{topic}/streams/{stream}/events/data", size=15 * 1024, extra=extra, body=body, method="POST")
    with connect(server) as sock:
        sock.sendall(raw + request("/health"))  # and a pipelined request behind it
        pending = bytearray()
        status, _, reply = read_response(sock, pending)
        assert status == 200, reply
        assert json.loads(reply)["successful_rows"] == len(events)
        assert read_response(sock, pending)[0] == 200
    assert len(server.get_events(topic, stream, limit=5000)) == len(events)


@parsers
async def test_websocket_upgrade_with_a_large_head_still_works(hub_server, parser):
    """uvicorn hands upgrades from the HTTP protocol to the WebSocket one: that still happens."""
    from websockets.asyncio.client import connect as ws_connect

    from .support import negotiate

    server = hub_server("--http", parser)
    reply = await negotiate(server.hub_url, server.token)
    # 12 KiB of head (the websockets library under uvicorn allows 8 KiB a line itself)
    headers = {"Authorization": f"Bearer {server.token}", **{f"X-Pad-{i}": "p" * 4000 for i in range(3)}}
    url = f"{server.ws_url}?id={reply['connectionToken']}"
    async with ws_connect(url, additional_headers=headers, open_timeout=5, ping_interval=None) as ws:
        await ws.send(json.dumps({"protocol": "json", "version": 1}) + RS)
        assert await ws.recv() == "{}" + RS


# --- 2. slow and idle connections are closed ---------------------------------------------------------


@parsers
def test_silent_and_dribbling_connections_are_closed_after_the_header_timeout(hub_server, parser):
    server = hub_server("--http", parser, "--header-timeout", "1")
    silent = connect(server)
    dribbling = connect(server)
    dribbling.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    keep_alive = connect(server)

    stop = threading.Event()

    def dribble() -> None:  # a header byte every 0.2 s, never the end of the head
        with contextlib.suppress(OSError):
            while not stop.wait(0.2):
                dribbling.send(b"x")

    dribbler = threading.Thread(target=dribble, daemon=True)
    dribbler.start()
    started = time.monotonic()
    try:
        # a normal keep-alive client, one request every 0.6 s: never closed meanwhile
        for _ in range(4):
            keep_alive.sendall(request("/health"))
            assert read_response(keep_alive)[0] == 200
            time.sleep(0.6)
        closed = [closed_by_server(s, 3.5 - (time.monotonic() - started)) for s in (silent, dribbling)]
    finally:
        stop.set()
        dribbler.join(5)
    for name, after in zip(("silent", "dribbling"), closed):
        assert after is not None, f"the {name} connection was still open 3.5 s after it opened"
    keep_alive.sendall(request("/health"))
    assert read_response(keep_alive)[0] == 200
    for sock in (silent, dribbling, keep_alive):
        sock.close()


@parsers
def test_idle_connections_are_closed_after_the_keep_alive_timeout_before_the_first_request_too(hub_server, parser):
    """uvicorn's keep-alive timeout is 5 s; --header-timeout is set far above it."""
    server = hub_server("--http", parser, "--header-timeout", "60")
    fresh = connect(server)
    used = connect(server)
    used.sendall(request("/health"))
    assert read_response(used)[0] == 200
    started = time.monotonic()
    closed = [closed_by_server(s, 9 - (time.monotonic() - started)) for s in (fresh, used)]
    assert closed[0] is not None, "a connection that never sent a byte was still open after 9 s"
    assert closed[1] is not None, "an idle keep-alive connection was still open after 9 s"
    fresh.close()
    used.close()


@contextlib.contextmanager
def open_files_soft_limit(limit: int):
    """Children started inside inherit this soft limit; this process gets its own back after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_healthy_client_is_served_while_2000_slow_connections_are_open(hub_server):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4096:
        pytest.skip(f"the open-files hard limit ({hard}) is too low for 2,000 connections on each side")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
    # the hub starts with a common soft limit of 1,024 (systemd's default): it must raise its own
    with open_files_soft_limit(1024):
        server = hub_server("--header-timeout", "6")
    assert "open-files limit raised from 1024" in server.stderr_text()
    slow: list[socket.socket] = []
    first_opened = time.monotonic()
    try:
        for i in range(2000):
            sock = socket.create_connection((server.host, server.port), timeout=5)
            if i % 2:
                sock.sendall(b"GET /health HTTP/1.1\r\nX-Slow: ")  # half a head; the rest never comes
            slow.append(sock)
        with server.http(timeout=2) as client:
            started = time.monotonic()
            assert client.get("/health").status_code == 200
            negotiated = client.post("/hub/negotiate", params={"negotiateVersion": 1})
            assert negotiated.status_code == 200, negotiated.text
            assert time.monotonic() - started < 2
        # (silent ones go after uvicorn's 5 s keep-alive timeout, the others after the 6 s header timeout)
        assert time.monotonic() - first_opened < 5, "the check came after the slow connections were closed: too slow a run"
        # and every slow one is closed by the hub
        still_open = wait_closed(slow, first_opened + 6 + 6 - time.monotonic())
        assert not still_open, f"{len(still_open)} of 2000 slow connections still open 6 s past the header timeout"
    finally:
        for s in slow:
            s.close()
    with httpx.Client(timeout=2) as client:
        assert client.get(f"{server.url}/health").status_code == 200
