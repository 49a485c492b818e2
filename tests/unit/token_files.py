"""A --token-file on disk and the Authenticator over it, for in-process tests of scopes: write the
file, `reload()` as SIGHUP would, and take a token's Principal (what a connection's CallContext holds)."""

from __future__ import annotations

from pathlib import Path

from hub.auth.authenticator import AuthConfig, Authenticator
from hub.auth.principal import Principal


class TokenFile:
    def __init__(self, path: Path, text: str):
        self.path = path
        path.write_text(text)
        self.auth = Authenticator(AuthConfig(token_file=str(path)))

    def principal(self, token: str) -> Principal:
        principal = self.auth.principal_for(token)
        assert principal is not None, f"{token!r} is not in {self.path}"
        return principal

    def rewrite(self, text: str) -> None:
        """Replace the file and reload it now (the hub does so on SIGHUP or when the file changes)."""
        self.path.write_text(text)
        assert self.auth.reload("test"), f"{self.path} did not parse"
