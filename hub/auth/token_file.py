"""The token file (`--token-file`): one token a line, then optionally a name and scopes:

    s3cret           name=car-17  write:cars read:cars
    0th3r            name=car-17  write:cars read:cars     # the next token of car-17 (rotation overlap)
    dashb0ard-t0ken  read:*
    legacy-token                                           # no scopes: admin, as before scopes existed

Blank lines and lines starting with `#` are skipped; ` #` starts a comment. A malformed line is an
error naming the file, the line number and what is wrong, never the token itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .scopes import ADMIN, Grant, Scope, ScopeError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")


class TokenFileError(ValueError):
    """What is wrong with a token file, as `<file> line <n>: <what>`."""


@dataclass(frozen=True, slots=True)
class TokenEntry:
    token: str
    name: str | None
    grant: Grant


def parse_token_file(path: str | Path) -> list[TokenEntry]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenFileError(f"{path}: cannot be read: {exc}") from None
    return parse_token_lines(text, str(path))


def parse_token_lines(text: str, where: str) -> list[TokenEntry]:
    entries: list[TokenEntry] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].split("\t#", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        try:
            entry = _entry(line.split())
        except ValueError as exc:
            raise TokenFileError(f"{where} line {number}: {exc}") from None
        if entry.token in seen:
            raise TokenFileError(f"{where} line {number}: the same token is already on line {seen[entry.token]}")
        seen[entry.token] = number
        entries.append(entry)
    return entries


def _entry(fields: list[str]) -> TokenEntry:
    token, rest = fields[0], fields[1:]
    if token.startswith("name=") or _looks_like_scope(token):
        raise ValueError("the token must come first on its line, before name= and the scopes")
    name: str | None = None
    scopes: list[Scope] = []
    for position, field in enumerate(rest, start=2):
        if field.startswith("name="):
            if name is not None:
                raise ValueError("name= is given twice")
            name = field[len("name="):]
            if not NAME.fullmatch(name):
                raise ValueError(
                    f"name={name!r}: a name is 1-128 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
                )
            continue
        try:
            scopes.append(Scope.parse(field))
        except ScopeError as exc:
            # Quoted only when it begins with an action: any other field might be a misplaced token.
            if not _looks_like_scope(field):
                raise ValueError(
                    f"field {position} is neither name=<name> nor a scope <action>:<topic pattern> "
                    f"with action read, write or admin (e.g. write:cars)"
                ) from None
            raise ValueError(str(exc)) from None
    return TokenEntry(token, name, Grant(scopes) if scopes else ADMIN)


def _looks_like_scope(field: str) -> bool:
    action, colon, _ = field.partition(":")
    return bool(colon) and action in ("read", "write", "admin")
