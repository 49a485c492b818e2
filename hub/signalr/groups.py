"""Server-to-client invocations: how a hub calls `connection.on("Name", …)` handlers on its clients.

`HubClients` is a hub's handle on the connections of its endpoint (the dispatcher sets it as
`hub.clients`): send an `Invocation` without invocationId (fire-and-forget, as ASP.NET's
`Clients.Client(id).SendAsync`) to one connection, to a set of them, or to a group. `Groups` are
named sets of connections (ASP.NET's `Groups.AddToGroupAsync`), keyed by any string the hub chooses;
a connection leaves every group it is in when it goes.

Sending never waits: each message is encoded once per protocol and queued on each connection
(`ConnectionContext.post_batch`), whose bounded outbox closes a client that falls too far behind
(`--max-send-queue`). So a hub fanning out a writer's data never waits for a slow reader, and what
waits for one reader is bounded. Nothing here knows what the hub sends.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from .close_reason import CloseReason
from .context import ConnectionContext
from .messages import Invocation

_EMPTY: frozenset[str] = frozenset()


class Groups:
    """Named sets of connection ids. Sans-I/O: membership only."""

    __slots__ = ("_members", "_of")

    def __init__(self) -> None:
        self._members: dict[str, set[str]] = {}
        self._of: dict[str, set[str]] = {}

    def add(self, group: str, connection_id: str) -> bool:
        """Put the connection in the group; False when it already was."""
        members = self._members.setdefault(group, set())
        if connection_id in members:
            return False
        members.add(connection_id)
        self._of.setdefault(connection_id, set()).add(group)
        return True

    def discard(self, group: str, connection_id: str) -> bool:
        """Take the connection out of the group; False when it was not in it."""
        members = self._members.get(group)
        if members is None or connection_id not in members:
            return False
        members.discard(connection_id)
        if not members:
            del self._members[group]
        names = self._of[connection_id]
        names.discard(group)
        if not names:
            del self._of[connection_id]
        return True

    def leave_all(self, connection_id: str) -> set[str]:
        """Take the connection out of every group; returns the groups it was in."""
        names = self._of.pop(connection_id, set())
        for group in names:
            members = self._members[group]
            members.discard(connection_id)
            if not members:
                del self._members[group]
        return names

    def members(self, group: str) -> frozenset[str] | set[str]:
        """The connection ids in the group (a live view: do not change it)."""
        return self._members.get(group, _EMPTY)

    def of(self, connection_id: str) -> frozenset[str] | set[str]:
        """The groups the connection is in (a live view: copy it before changing membership)."""
        return self._of.get(connection_id, _EMPTY)

    def connection_ids(self) -> list[str]:
        """Every connection in at least one group."""
        return list(self._of)

    def __len__(self) -> int:
        return len(self._members)


class HubClients:
    """The connections of one hub endpoint (those past their handshake), and its groups."""

    def __init__(self) -> None:
        self._connections: dict[str, ConnectionContext] = {}
        self.groups = Groups()

    # --- called by the dispatcher as connections come and go ------------------------------------

    def connected(self, conn: ConnectionContext) -> None:
        self._connections[conn.connection_id] = conn

    def disconnected(self, conn: ConnectionContext) -> None:
        if self._connections.get(conn.connection_id) is conn:
            del self._connections[conn.connection_id]
        self.groups.leave_all(conn.connection_id)

    # --- for hubs ------------------------------------------------------------------------------

    def __contains__(self, connection_id: str) -> bool:
        return connection_id in self._connections

    def __len__(self) -> int:
        return len(self._connections)

    def principal(self, connection_id: str) -> Any:
        """Who the connection's user is (CallContext.principal); None when it is not connected."""
        conn = self._connections.get(connection_id)
        return None if conn is None else conn.call.principal

    def send(self, connection_id: str, target: str, *arguments: Any) -> bool:
        """Call the client method `target` on one connection. False when it is gone (or was just
        closed for falling behind)."""
        return self.send_to((connection_id,), target, *arguments) == 1

    def send_group(self, group: str, target: str, *arguments: Any) -> int:
        """Call `target` on every connection in the group; returns how many took it."""
        return self.send_to(self.groups.members(group), target, *arguments)

    def send_to(self, connection_ids: Iterable[str], target: str, *arguments: Any) -> int:
        """Call `target` on each of these connections (unknown ids are skipped), encoding the
        message once per protocol. Never waits; returns how many connections took it."""
        return self.send_each(connection_ids, target, (arguments,))

    def send_each(self, connection_ids: Iterable[str], target: str, calls: Sequence[Sequence[Any]]) -> int:
        """Call `target` once per argument list in `calls`, in that order, on each of these
        connections: each message encoded once per protocol, and queued on each connection in one
        go. Never waits; returns how many connections took them."""
        if not calls:
            return 0
        messages = [Invocation(target, list(arguments)) for arguments in calls]
        encoded: dict[int, tuple[list[str | bytes], str | bytes]] = {}
        connections = self._connections
        sent = 0
        for connection_id in connection_ids:
            conn = connections.get(connection_id)
            if conn is None or conn.protocol is None:
                continue
            key = id(conn.protocol)
            batch = encoded.get(key)
            if batch is None:
                records = [conn.protocol.encode(m) for m in messages]
                batch = encoded[key] = (records, records[0] if len(records) == 1 else records[0][:0].join(records))
            if conn.post_batch(messages, *batch):
                sent += 1
        return sent

    def close(self, connection_id: str, error: str, reason: CloseReason = CloseReason.ERROR) -> bool:
        """Close a connection now with a Close message carrying `error` (what was queued for it is
        dropped); False when it is not connected."""
        conn = self._connections.get(connection_id)
        if conn is None:
            return False
        conn.abort(error, reason)
        return True
