"""The SSE and long-polling transports without a server: event framing as bytes, and the poll
rules (data, timeout, superseded, closed) with plain asyncio."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.signalr.transports.long_polling import ENDED, LongPollingTransport
from hub.signalr.transports.sse import OPENING, ServerSentEventsTransport, format_event

# --- Server-Sent Events framing (ASP.NET's ServerSentEventsMessageFormatter) -----------------------


@pytest.mark.parametrize(
    ("frame", "event"),
    [
        ('{"type":6}\x1e', b'data: {"type":6}\x1e\r\n\r\n'),
        ("", b"\r\n"),
        ("a\nb", b"data: a\r\ndata: b\r\n\r\n"),
        ("a\r\nb\n", b"data: a\r\ndata: b\r\ndata: \r\n\r\n"),
        (b"\xc3\xa9t\xc3\xa9", "data: été\r\n\r\n".encode()),
    ],
)
def test_format_event(frame, event):
    assert format_event(frame) == event


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r")))
def test_an_event_source_reads_back_the_frame(text):
    """What EventSource does with our bytes (join the data lines with \\n) gives the frame back."""
    event = format_event(text).decode()
    assert event.endswith("\r\n")
    lines = event[:-2].split("\r\n")[:-1]
    assert all(line.startswith("data: ") for line in lines)
    assert "\n".join(line[len("data: ") :] for line in lines) == text


async def test_sse_transport_writes_the_opening_then_one_event_per_frame_then_ends():
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    transport = ServerSentEventsTransport(send)
    await transport.open()
    await transport.send('{}\x1e')
    await transport.close()
    await transport.close()
    with pytest.raises(ConnectionError):
        await transport.send('{"type":6}\x1e')

    assert sent[0]["status"] == 200
    assert dict(sent[0]["headers"])[b"content-type"] == b"text/event-stream"
    assert dict(sent[0]["headers"])[b"cache-control"] == b"no-cache"
    assert [m.get("body") for m in sent[1:]] == [OPENING, b"data: {}\x1e\r\n\r\n", b""]
    assert [m.get("more_body") for m in sent[1:]] == [True, True, False]
    assert transport.ended.is_set()


# --- long polling ----------------------------------------------------------------------------------


async def test_poll_returns_everything_buffered_as_whole_frames():
    transport = LongPollingTransport()
    await transport.send("{}\x1e")
    await transport.send(b"\x02\x91\x06")
    assert await transport.poll(5) == b"{}\x1e\x02\x91\x06"


async def test_poll_waits_for_data():
    transport = LongPollingTransport()
    poll = asyncio.ensure_future(transport.poll(5))
    await asyncio.sleep(0.01)
    assert not poll.done()
    await transport.send('{"type":6}\x1e')
    assert await asyncio.wait_for(poll, 1) == b'{"type":6}\x1e'


async def test_poll_times_out_with_nothing():
    transport = LongPollingTransport()
    assert await transport.poll(0.05) == b""


async def test_a_new_poll_ends_the_pending_one_and_takes_the_data():
    transport = LongPollingTransport()
    first = asyncio.ensure_future(transport.poll(5))
    await asyncio.sleep(0.01)
    second = asyncio.ensure_future(transport.poll(5))
    assert await asyncio.wait_for(first, 1) is ENDED
    await transport.send("x\x1e")
    assert await asyncio.wait_for(second, 1) == b"x\x1e"


async def test_close_hands_over_what_is_left_then_ends():
    transport = LongPollingTransport()
    await transport.send('{"type":7}\x1e')
    await transport.close()
    assert not transport.drained
    with pytest.raises(ConnectionError):
        await transport.send("late\x1e")
    assert await transport.poll(5) == b'{"type":7}\x1e'
    assert transport.drained
    assert await transport.poll(5) is ENDED


async def test_close_ends_a_pending_poll():
    transport = LongPollingTransport()
    poll = asyncio.ensure_future(transport.poll(5))
    await asyncio.sleep(0.01)
    await transport.close()
    assert await asyncio.wait_for(poll, 1) is ENDED


async def test_a_client_that_does_not_poll_makes_sends_wait_not_memory_grow():
    transport = LongPollingTransport(max_buffered=10)
    await transport.send(b"0123456789")
    blocked = asyncio.ensure_future(transport.send(b"more"))
    await asyncio.sleep(0.01)
    assert not blocked.done()
    assert await transport.poll(5) == b"0123456789"
    await asyncio.wait_for(blocked, 1)
    assert await transport.poll(5) == b"more"


async def test_close_releases_a_waiting_send():
    transport = LongPollingTransport(max_buffered=1)
    await transport.send(b"a")
    blocked = asyncio.ensure_future(transport.send(b"b"))
    await asyncio.sleep(0.01)
    await transport.close()
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(blocked, 1)
