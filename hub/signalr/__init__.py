"""The generic SignalR server; it knows nothing of topics. Its parts, the wire first:

- the wire, sans-I/O: `messages.py` (hub messages as values), `protocols/` (the JSON and MessagePack
  codecs behind one `HubProtocol`, and the `ArgumentBinder` a hub may give them), `handshake.py`;
- one connection, sans-I/O: `session.py` (its states in one table, the handshake, the message
  reader, the stateful-reconnect numbering of `stateful.py`, the bounded outbox of `outbox.py`),
  `options.py` (the timers and limits), `close_reason.py` (why a connection ended);
- hubs: `hub.py` (a hub's methods), `call.py` (`CallContext`, `HubError`), `dispatcher.py` (hub
  messages → method calls; the work left running comes back as a `Job`, or a `PendingCompletion`
  for a store's future), `streaming.py` (stream invocations and their bounds), `groups.py` (groups,
  server-to-client calls), `context.py` (`ConnectionContext`: all the dispatcher and the groups see
  of a connection);
- the asyncio pump: `connection.py` (`HubConnection`: frames in, the one way to end), `writer.py`
  (frames out), `inflight.py` (the work beside the receive loop), `keepalive.py` (one ticker for
  every connection);
- HTTP: `transports/` (WebSockets, Server-Sent Events, long polling: frames, nothing of the hub
  protocol) and `endpoint.py` (negotiate and the routes).
"""
