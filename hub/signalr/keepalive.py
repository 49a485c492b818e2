"""Keep-alive: one ticker for every connection of an endpoint, so that an idle connection costs no
task of its own (bench/RESULTS.md, idle connections).

Each tick, for each connection:
- a handshake that did not arrive within `handshake_timeout` ends it (`Handshake was canceled.`);
- a client that sent nothing for `client_timeout` is closed with a Close saying so, unless the
  server is the one not reading it (`conn.stalled`: too many invocations in flight) or its
  transport's own requests show it is alive (long polling: `inherent_keepalive`);
- a Ping is queued after `keepalive_interval` in which the server sent nothing;
- under stateful reconnect, an Ack of what arrived since the last one (about once a second, as
  ASP.NET does); a detached connection is skipped (the endpoint's disconnect timeout applies).

The tasks it starts (the ticker, Acks being written) are held here until they end.
"""

from __future__ import annotations

import asyncio
import logging
import time

from .close_reason import CloseReason
from .connection import HubConnection
from .messages import PING_MESSAGE, Close
from .options import SignalROptions
from .session import State

log = logging.getLogger("hub.signalr")


class KeepAlive:
    def __init__(self, options: SignalROptions):
        self.options = options
        self.connections: set[HubConnection] = set()
        self._task: asyncio.Task | None = None
        self._acks: set[asyncio.Task] = set()
        intervals = [options.keepalive_interval, options.client_timeout, options.handshake_timeout]
        self.period = max(0.05, min(1.0, min(intervals) / 4))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._tick())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for task in list(self._acks):
            task.cancel()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            now = time.monotonic()
            for conn in list(self.connections):
                self.check(conn, now)

    def check(self, conn: HubConnection, now: float) -> None:
        o = self.options
        state = conn.state
        buffer = conn.session.buffer
        if buffer is not None:
            if not buffer.attached:
                return  # no pings, no client timeout: the endpoint's disconnect timeout applies
            if buffer.ack_due() is not None:
                task = asyncio.get_running_loop().create_task(conn.send_ack())
                self._acks.add(task)
                task.add_done_callback(self._acks.discard)
        if state is State.HANDSHAKE:
            if now - conn.created >= o.handshake_timeout:
                log.info("connection %s: handshake timed out", conn.log_id)
                conn.end(CloseReason.TIMEOUT, Close(error="Handshake was canceled."))
        elif state is State.CONNECTED and not conn.transport.inherent_keepalive:
            if conn.stalled:
                pass  # the server is the one not reading: no client timeout
            elif conn.last_received is not None and now - conn.last_received >= o.client_timeout:
                error = f"Connection closed with an error. The client timed out: nothing received for {o.client_timeout:g} s."
                conn.end(CloseReason.TIMEOUT, Close(error=error))
            elif now - conn.last_sent >= o.keepalive_interval:
                conn.post(PING_MESSAGE)  # queued: no task a ping (thousands of idle connections)
