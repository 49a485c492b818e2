"""The plain tokens the hub accepts (--token, the generated token, --token-file), looked up by
digest so comparing a guess never walks a secret byte by byte, and the grant source of the
principals they make (a reload swaps the table; the principals look their grant up in the new one).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Iterable

from .principal import Principal
from .scopes import Grant
from .token_file import TokenEntry


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class _Known:
    name: str
    grant: Grant
    key: bytes  # the token itself, the HMAC key of an Event Hubs SharedAccessSignature


class TokenTable:
    def __init__(self, entries: Iterable[TokenEntry] = ()):
        self._known: dict[str, _Known] = {}
        self._principals: dict[str, Principal] = {}
        self.replace(entries)

    def replace(self, entries: Iterable[TokenEntry]) -> None:
        known: dict[str, _Known] = {}
        for entry in entries:
            key = digest(entry.token)
            name = f"token:{entry.name}" if entry.name else f"token:{key[:8]}"
            known[key] = _Known(name, entry.grant, entry.token.encode())
        self._known = known
        old = self._principals  # the same principal for the same token and name, across reloads
        self._principals = {
            k: p if (p := old.get(k)) is not None and p.name == v.name else Principal(v.name, k, self)
            for k, v in known.items()
        }

    def grant_for(self, key: str) -> Grant | None:
        known = self._known.get(key)
        return None if known is None else known.grant

    def __len__(self) -> int:
        return len(self._known)

    def principal(self, token: str) -> Principal | None:
        return self._principals.get(digest(token))

    def principal_for_signature(self, message: bytes, signature: bytes) -> Principal | None:
        """The token that, as an HMAC-SHA256 key over `message`, gives `signature` (how an Event Hubs
        SharedAccessSignature proves a key without sending it)."""
        found = None
        for key, known in self._known.items():  # every key is tried: the time taken says nothing of which
            if hmac.compare_digest(hmac.new(known.key, message, hashlib.sha256).digest(), signature):
                found = self._principals[key]
        return found

    def principals(self) -> list[Principal]:
        return list(self._principals.values())
