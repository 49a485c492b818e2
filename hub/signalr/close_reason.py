"""Why a connection ended: one value, named once, for logs and metrics labels alike.

`HubConnection.end` takes one; the texts the client reads (its Close message) are chosen by whoever
ends the connection, not derived from the reason.
"""

from __future__ import annotations

from enum import StrEnum


class CloseReason(StrEnum):
    NORMAL = "normal"  # the client closed the connection, or its transport went away
    ERROR = "error"  # bad input (a handshake, a record, a Sequence), a failed write, a server fault
    TIMEOUT = "timeout"  # no handshake within --handshake-timeout, or nothing from the client for --client-timeout
    FELL_BEHIND = "fell_behind"  # more waited to be written to the client than its outbox holds
    SHUTDOWN = "shutdown"  # the server is stopping: the client may reconnect, to another server
    TOKEN_EXPIRED = "token_expired"  # the caller's token expired (no caller yet)
    TOKEN_REVOKED = "token_revoked"  # the caller's token was revoked (no caller yet)
