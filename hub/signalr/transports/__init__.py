"""The SignalR transports: pumps that carry hub-protocol frames and know nothing of the hub protocol.

base.py is what a connection needs of a transport (`Transport`: send, close, its `name` and
`transfer_formats`); websocket.py, sse.py and long_polling.py are the three this server implements.
`TRANSPORTS` lists them once: negotiate offers them from it, --transport filters it, and the
endpoint routes a request to the transport it names. The HTTP requests that drive them are
hub/signalr/endpoint.py's.
"""

from __future__ import annotations

from .base import Transport
from .long_polling import LongPollingTransport
from .sse import ServerSentEventsTransport
from .websocket import WebSocketTransport

#: Every transport implemented, in the order negotiate lists them (ASP.NET's).
TRANSPORTS: tuple[type[Transport], ...] = (WebSocketTransport, ServerSentEventsTransport, LongPollingTransport)
