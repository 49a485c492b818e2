"""The h11 side of the HTTP edge, with bytes only (hub/http_edge.py), and the open-files limit."""

from __future__ import annotations

import subprocess
import sys

import h11
import pytest

from hub.http_edge import MAX_HEAD_BYTES, HeadBoundedConnection


def head(size: int, path: str = "/") -> bytes:
    start = f"GET {path} HTTP/1.1\r\nHost: h\r\nX-Pad: ".encode()
    out = start + b"p" * (size - len(start) - 4) + b"\r\n\r\n"
    assert len(out) == size
    return out


def next_request(conn: HeadBoundedConnection):
    event = conn.next_event()
    assert isinstance(event, h11.Request), event
    return event


@pytest.mark.parametrize("pieces", [1, 7, 1000])
def test_a_head_at_the_bound_passes_and_one_byte_more_does_not(pieces):
    for size, ok in ((MAX_HEAD_BYTES, True), (MAX_HEAD_BYTES + 1, False)):
        conn = HeadBoundedConnection()
        data = head(size)
        step = -(-len(data) // pieces)
        events = []
        try:
            for i in range(0, len(data), step):
                conn.receive_data(data[i : i + step])
                events.append(conn.next_event())
        except h11.RemoteProtocolError as exc:
            assert not ok and exc.error_status_hint == 431 and conn.head_too_large
        else:
            assert ok and isinstance(events[-1], h11.Request) and not conn.head_too_large


def test_what_follows_a_head_does_not_count_and_each_request_has_its_own_bound():
    conn = HeadBoundedConnection()
    body = b"b" * (4 * MAX_HEAD_BYTES)
    first = head(MAX_HEAD_BYTES - 100).replace(b"\r\n\r\n", f"\r\nContent-Length: {len(body)}\r\n\r\n".encode())
    conn.receive_data(first + body + head(MAX_HEAD_BYTES))
    next_request(conn)
    for _ in range(100):  # the body, in as many Data events as h11 likes
        if isinstance(conn.next_event(), h11.EndOfMessage):
            break
    conn.send(h11.Response(status_code=204, headers=[]))
    conn.send(h11.EndOfMessage())
    conn.start_next_cycle()
    next_request(conn)  # the pipelined head, exactly at the bound
    assert isinstance(conn.next_event(), h11.EndOfMessage)
    conn.send(h11.Response(status_code=204, headers=[]))
    conn.send(h11.EndOfMessage())
    conn.start_next_cycle()
    conn.receive_data(head(MAX_HEAD_BYTES + 1))
    with pytest.raises(h11.RemoteProtocolError):
        conn.next_event()
    assert conn.head_too_large


def test_the_hub_raises_its_soft_open_files_limit_to_the_hard_limit():
    code = (
        "import resource, logging\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))\n"
        "from hub.cli import raise_open_files_limit\n"
        "now = raise_open_files_limit()\n"
        "assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == now\n"
        "print(now, hard)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    now, hard = (int(v) for v in done.stdout.split())
    if hard == 256:
        pytest.skip("the hard limit is 256 already")
    assert now > 256 and (now == hard or hard == -1)
    assert "open-files limit raised from 256" in done.stderr
