"""The HTTP edge: uvicorn's HTTP/1.1 protocols, with the bounds they lack against a hostile network.

- A request head (request line and headers) over MAX_HEAD_BYTES is answered 431 with a JSON body as
  soon as the byte past the bound arrives, and nothing more of it is parsed or kept. uvicorn's httptools
  protocol (its default) has no bound at all; its h11 protocol bounds only a head still incomplete
  (16 KiB, answered 400), so a larger head arriving whole in one read passes.
- A connection whose request head is not complete within `header_timeout` seconds is closed: counted
  from the connection's start for its first request (clients that send nothing, or a byte at a time),
  from the head's first byte for later ones.
- An idle connection is closed after uvicorn's keep-alive timeout before its first request too
  (uvicorn arms that timer only once a response is sent).
A WebSocket upgrade is handed to uvicorn's WebSocket protocol as before, its timers disarmed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("hub.http")

MAX_HEAD_BYTES = 16 * 1024
HEAD_TOO_LARGE = f"Request header fields too large: the request line and headers must fit in {MAX_HEAD_BYTES} bytes."
_BODY = json.dumps({"error": HEAD_TOO_LARGE}).encode()
RESPONSE_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_BODY), _BODY)
)
# After a 431, what the client still sends is read and dropped (never parsed nor kept) for this long,
# then the connection is closed: closing at once with unread data would send a reset, which can
# destroy the 431 in the client's buffers before it reads it.
LINGER_SECONDS = 1.0


class _HeadGuard:
    """What both protocols add; mixed in before the uvicorn class, whose attributes it uses."""

    header_timeout: float = 10.0  # set by http_protocol_class()
    refused: Counter[str] | None = None  # connections refused, by reason (a metric); set by http_protocol_class()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._guard_init()

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[misc]
        self._start_timers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._guard_lost()
        super().connection_lost(exc)  # type: ignore[misc]

    def _guard_init(self) -> None:
        self._head_timer: asyncio.TimerHandle | None = None
        self._linger: asyncio.TimerHandle | None = None
        self._refused = False  # answered 431: the rest of the connection is dropped
        self._upgraded = False  # handed to the WebSocket protocol: no longer ours

    def _start_timers(self) -> None:
        """At connection start: the idle (keep-alive) timer and the header timer both run."""
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)
        self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self._upgraded:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # Still answering the previous (pipelined) request: the client is not the one late.
            self._arm_head_timer()
            return
        log.debug("%s: closed: request head not complete within %g s", _peer(self.client), self.header_timeout)
        if self.refused is not None:
            self.refused["header_timeout"] += 1
        self.transport.close()

    def _refuse_head(self) -> None:
        self._refused = True
        self._disarm_head_timer()
        self._unset_keepalive_if_required()
        log.info("%s: request head over %d bytes refused (431)", _peer(self.client), MAX_HEAD_BYTES)
        if self.refused is not None:
            self.refused["head_too_large"] += 1
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()  # mid-response (pipelining): no room for a 431 on the wire
            return
        self.transport.write(RESPONSE_431)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._linger = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _guard_lost(self) -> None:
        self._disarm_head_timer()
        if self._linger is not None:
            self._linger.cancel()


def _peer(client: tuple[str, int] | None) -> str:
    return "%s:%d" % client if client else "client"


class BoundedHttpToolsProtocol(_HeadGuard, HttpToolsProtocol):
    """httptools (llhttp) keeps a header's name and value until it ends and uvicorn keeps the URL,
    both without bound: bytes are counted here before the parser sees them, and while a head is
    being read no more than the bound is ever fed. A head that begins inside a read still being
    parsed (pipelined behind a body) is counted from the next read, so it can pass the bound by
    at most that one read (≤ 256 KiB)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._reading_head = True  # between a message's end (or the start) and its headers' end
        self._head_bytes = 0  # bytes fed while reading this head
        self._head_begun = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if not self._reading_head:
            super().data_received(data)
        else:
            room = MAX_HEAD_BYTES - self._head_bytes
            # The head's end (its empty line; not empty lines before a request, which the parser
            # skips) within its room: all of the head is in and within the bound, so the whole
            # read goes to the parser uncut (a body usually follows).
            if len(data) <= room or (data[:1] not in b"\r\n" and data.find(b"\r\n\r\n", 0, room) != -1):
                self._head_bytes += min(len(data), room)
                super().data_received(data)
            else:
                self._feed_past_bound(data, room)
                return
        if (
            self._reading_head
            and (self._head_begun or self._head_bytes)
            and not self._upgraded
            and not self.transport.is_closing()
        ):
            self._arm_head_timer()

    def _feed_past_bound(self, data: bytes, room: int) -> None:
        """`data` holds more than the head may still take: feed the head's share, then see."""
        if room:
            self._head_bytes += room
            super().data_received(data[:room])
        if self.transport.is_closing():
            return
        if self._reading_head and self._head_bytes >= MAX_HEAD_BYTES:  # the same head, and more of it
            self._refuse_head()
            return
        protocol = self.transport.get_protocol()  # the head ended within the bound: the rest goes on
        protocol.data_received(data[room:])

    def on_message_begin(self) -> None:
        self._head_begun = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._disarm_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head, self._head_bytes, self._head_begun = True, 0, False

    def handle_websocket_upgrade(self) -> None:
        self._upgraded = True
        self._disarm_head_timer()
        super().handle_websocket_upgrade()



class HeadBoundedConnection(h11.Connection):
    """h11's server side, refusing a request head over `max_head` bytes whether it arrives in pieces
    (h11's own incomplete-event bound) or whole in one read (counted here: bytes fed, less those h11
    still holds, since the head began)."""

    def __init__(self, max_head: int = MAX_HEAD_BYTES):
        super().__init__(h11.SERVER, max_incomplete_event_size=max_head)
        self.max_head = max_head
        self.head_too_large = False
        self._fed = 0
        self._head_start = 0  # bytes h11 had consumed when the current head began

    def receive_data(self, data: bytes) -> None:
        self._fed += len(data)
        super().receive_data(data)

    def _consumed(self) -> int:
        return self._fed - len(self.trailing_data[0])

    @property
    def head_begun(self) -> bool:
        """Some bytes of the next request head are in, and not yet its end."""
        return self.their_state is h11.IDLE and self._fed > self._head_start

    def start_next_cycle(self) -> None:
        super().start_next_cycle()
        self._head_start = self._consumed()

    def next_event(self):  # type: ignore[override]
        reading_head = self.their_state is h11.IDLE
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as exc:
            if reading_head and exc.error_status_hint == 431:
                self.head_too_large = True
            raise
        # Only when more than the bound was fed since the head began is the count worth a copy.
        if type(event) is h11.Request and self._fed - self._head_start > self.max_head:
            if self._consumed() - self._head_start > self.max_head:
                self.head_too_large = True
                raise h11.RemoteProtocolError("request head too large", error_status_hint=431)
        return event


class BoundedH11Protocol(_HeadGuard, H11Protocol):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.conn = HeadBoundedConnection(MAX_HEAD_BYTES)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if self._refused or self._upgraded or self.transport.is_closing():
            return
        if self.conn.their_state is not h11.IDLE:
            self._disarm_head_timer()
        elif self.conn.head_begun:
            self._arm_head_timer()

    def send_400_response(self, msg: str) -> None:
        if self.conn.head_too_large:
            self._refuse_head()
        else:
            super().send_400_response(msg)

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._upgraded = True
        self._disarm_head_timer()
        super().handle_websocket_upgrade(event)


IMPLEMENTATIONS = ("auto", "httptools", "h11")


def http_protocol_class(
    implementation: str = "auto", header_timeout: float = 10.0, refused: Counter[str] | None = None
) -> type[asyncio.Protocol]:
    """The class to pass as uvicorn.Config(http=...): httptools ("auto", as uvicorn's own default) or h11.
    `refused`: counts connections closed for `header_timeout` and `head_too_large` (431)."""
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"unknown HTTP implementation {implementation!r}; use one of {', '.join(IMPLEMENTATIONS)}")
    base = BoundedH11Protocol if implementation == "h11" else BoundedHttpToolsProtocol
    return type(base.__name__, (base,), {"header_timeout": header_timeout, "refused": refused})
