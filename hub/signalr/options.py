"""The SignalR server's timers and limits, one value per endpoint (hub/app.py fills it from the
command line). Each limit is enforced in one place, named beside it."""

from __future__ import annotations

from dataclasses import dataclass

from .stateful import DEFAULT_BUFFER_LIMIT


@dataclass(slots=True)
class SignalROptions:
    keepalive_interval: float = 15.0  # keepalive.py
    client_timeout: float = 30.0  # keepalive.py
    handshake_timeout: float = 15.0  # keepalive.py
    disconnect_timeout: float = 15.0
    max_message_size: int = 1_048_576  # a record, or an unfinished one (the codecs' readers)
    shutdown_timeout: float = 10.0
    poll_timeout: float = 90.0  # how long a long poll waits for data before answering 200 empty
    stateful_reconnect: bool = True  # offered in negotiate to clients that ask (WebSockets only)
    stateful_buffer_size: int = DEFAULT_BUFFER_LIMIT  # unacknowledged bytes kept for a replay (stateful.py)
    max_send_queue: int = 10_000  # messages waiting to be written to one client before it is closed as fallen behind (outbox.py)
    max_send_queue_bytes: int = 16 * 1024 * 1024  # the same, in encoded bytes
    max_streams: int = 100  # stream invocations (uploads and downloads) open at once on one connection (streaming.py)
    max_invocations: int = 100  # invocations whose Completion is not queued yet, before reading stops (session.py)
