"""Hub protocol codecs, by the name a client asks for in its handshake (matched
case-insensitively, as ASP.NET does: see handshake.select_protocol)."""

from .base import HubProtocol, MessageTooLarge, ProtocolError, TransferFormat
from .json import JsonHubProtocol
from .msgpack import MessagePackHubProtocol

PROTOCOLS: dict[str, HubProtocol] = {
    "json": JsonHubProtocol(),
    "messagepack": MessagePackHubProtocol(),
}

__all__ = ["PROTOCOLS", "HubProtocol", "MessageTooLarge", "ProtocolError", "TransferFormat"]
