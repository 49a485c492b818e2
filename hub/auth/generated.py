"""The hub's own admin token, made on the first start without --token / --token-file and kept in
--data-dir, so a restart does not lock reconnecting clients out."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def token_path(data_dir: str) -> Path:
    return Path(data_dir) / "token"


def generated_token(data_dir: str) -> tuple[str, bool]:
    """Returns (token, created_now)."""
    path = token_path(data_dir)
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token, False
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token, True
