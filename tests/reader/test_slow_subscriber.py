"""A subscriber that stops reading is closed when its send queue passes --max-send-queue, with a Close
saying it fell behind; meanwhile the writer's throughput and the hub's memory stay flat, and another
subscriber (of a quieter stream) is not affected.

The stuck subscriber is a raw WebSocket with a tiny receive buffer whose client library stops reading
the socket once one message waits unread (websockets' max_queue): TCP back-pressure then reaches
the hub within a few MB, and everything after that would pile up in the hub without the bound.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import pytest
from e2e.support import RS, RawConnection
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

pytestmark = pytest.mark.e2e

EVENTS_PER_PHASE = 24_000
BATCH = 100
VALUE = "v" * 1000  # ~1.1 kB an EventDataReceived: 26 MB a phase if it all piled up for one client
MAX_SEND_QUEUE = 500


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def invocation_frames(topic: str, stream_id: str, phase: str) -> list[str]:
    frames = []
    for b in range(EVENTS_PER_PHASE // BATCH):
        batch = [{"id": f"{phase}-{b}-{i}", "timestamp": 1_618_133_869_000_000_000 + b * BATCH + i, "value": VALUE}
                 for i in range(BATCH)]
        frames.append(json.dumps({"type": 1, "invocationId": f"{phase}-{b}", "target": "SendEventData",
                                  "arguments": [topic, stream_id, batch]}) + RS)
    return frames


async def write_phase(writer: RawConnection, frames: list[str], window: int = 16) -> float:
    """Send the invocations with `window` in flight; events per second once every one is completed."""
    started = time.perf_counter()
    sent = done = 0
    while done < len(frames):
        while sent < len(frames) and sent - done < window:
            await writer.send_text(frames[sent])
            sent += 1
        record = await writer.recv(10)
        if record.get("type") == 3:
            assert record.get("error") is None, record
            done += 1
    return len(frames) * BATCH / (time.perf_counter() - started)


async def open_stuck_reader(server, topic: str) -> RawConnection:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # set before connect: a small window
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
    url = f"ws://127.0.0.1:{server.port}/reader?access_token={server.token}"
    ws = await connect(url, sock=sock, max_queue=1, compression=None, max_size=None, ping_interval=None)
    reader = RawConnection(ws)
    assert await reader.handshake() == {}
    completion = await reader.invoke("SubscribeToEvent", topic, "*", "*", invocation_id="sub")
    assert completion.get("error") is None, completion
    return reader  # from here on nobody reads it


async def test_a_subscriber_that_never_reads_is_closed_and_the_writer_does_not_notice(hub_server, raw_ws, unique):
    # --retention: the memory store keeps 100 events a stream, so RSS shows what waits for subscribers
    hub = hub_server("--store", "memory", "--retention", "100", "--max-send-queue", str(MAX_SEND_QUEUE))
    topic = unique("slow")
    writer = await raw_ws.ready(hub)
    other = await RawConnection.open(f"ws://127.0.0.1:{hub.port}/reader", hub.token, hub_url=f"{hub.url}/reader")
    raw_ws.opened.append(other)
    assert await other.handshake() == {}
    assert (await other.invoke("SubscribeToEvent", topic, "ticks", "*", invocation_id="sub")).get("error") is None

    async def tick(n: int) -> None:
        """A write to the quiet stream, and the other subscriber receives it."""
        event = {"id": "tick", "timestamp": n, "value": str(n)}
        assert (await writer.invoke("SendEventData", topic, "ticks", [event], invocation_id=f"t{n}")).get("error") is None
        record = await other.recv(10)
        assert record.get("target") == "EventDataReceived" and record["arguments"][0]["value"] == str(n), record

    # phase 1: nobody subscribed to stream "s" (warms the hub up, and is the reference rate)
    reference = await write_phase(writer, invocation_frames(topic, "s", "a"))
    await tick(1)
    rss_before = rss_mb(hub.proc.pid)

    # phase 2: the same, with a subscriber of everything that never reads
    stuck = await open_stuck_reader(hub, topic)
    raw_ws.opened.append(stuck)
    during = await write_phase(writer, invocation_frames(topic, "s", "b"))
    rss_after = rss_mb(hub.proc.pid)
    await tick(2)

    assert during >= 0.5 * reference, (during, reference)
    # Unbounded, the stuck subscriber would hold ~26 MB of encoded messages by now.
    assert rss_after - rss_before < 12, (rss_before, rss_after)

    # It reads again: what was in flight, then the Close saying why, then the end of the socket.
    got_events = 0
    close = None
    try:
        while True:
            record = await stuck.recv(10)
            if record.get("target") == "EventDataReceived":
                got_events += 1
            elif record.get("type") == 7:
                close = record
    except ConnectionClosed:
        pass
    assert close is not None and "fell behind" in close["error"] and f"more than {MAX_SEND_QUEUE} messages" in close["error"], close
    assert got_events < EVENTS_PER_PHASE
    await tick(3)  # the other subscriber is still there
    # The writer was never affected: it goes on writing on the same connection.
    completion = await writer.invoke("SendEventData", topic, "s", [{"id": "after", "timestamp": 1, "value": "x"}],
                                     invocation_id="after")
    assert completion.get("error") is None, completion
    print(f"writer: {reference:,.0f} events/s with a reader, {during:,.0f} with a stuck one too; "
          f"hub RSS {rss_before:.1f} -> {rss_after:.1f} MB; stuck reader got {got_events} events before its Close")
