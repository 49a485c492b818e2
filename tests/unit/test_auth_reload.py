"""Rotation without restart (hub/auth/authenticator.py): the token file and the JWT key files are
re-read on SIGHUP and when they change; what a reload removes or narrows applies to principals
already handed out (the connections they opened); a file that no longer parses changes nothing."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path

import jwt
import pytest

from hub.auth import authenticator as authenticator_module
from hub.auth.authenticator import AuthConfig, Authenticator
from hub.auth.scopes import Action

READ, WRITE = Action.READ, Action.WRITE
SECRET_A, SECRET_B = "a" * 64, "b" * 64


def write(path: Path, text: str) -> None:
    """Replace the file's content so that its modification stamp changes (size and mtime)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    if path.stat().st_mtime_ns == before:  # a coarse clock: move it on
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    path.write_text("car-token name=car-17 write:cars read:cars\nold-token name=old read:*\n")
    return path


def test_a_reload_narrows_and_revokes_the_principals_already_handed_out(token_file: Path) -> None:
    auth = Authenticator(AuthConfig(token_file=str(token_file)))
    car, old = auth.principal_for("car-token"), auth.principal_for("old-token")
    calls = []
    auth.listeners.append(lambda: calls.append("reloaded"))
    write(token_file, "car-token name=car-17 read:cars\nnew-token name=new write:*\n")
    assert auth.reload("test")
    assert calls == ["reloaded"]
    assert not car.may(WRITE, "cars") and car.may(READ, "cars") and not car.revoked  # narrowed at once
    assert old.revoked and not old.may(READ, "x") and auth.principal_for("old-token") is None
    assert auth.principal_for("new-token").may(WRITE, "boats")  # added: works at once


def test_a_malformed_file_keeps_the_previous_set_and_says_why(token_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    auth = Authenticator(AuthConfig(token_file=str(token_file)))
    car = auth.principal_for("car-token")
    calls = []
    auth.listeners.append(lambda: calls.append("reloaded"))
    write(token_file, "car-token name=car-17 write:cars\nleaked-secret wirte:everything\n")
    with caplog.at_level(logging.WARNING, logger="hub.auth"):
        assert not auth.reload("SIGHUP")
    assert calls == [] and car.may(READ, "cars") and auth.principal_for("old-token") is not None
    (record,) = [r for r in caplog.records if "reload" in r.getMessage()]
    assert "keeping the previous tokens and keys" in record.getMessage() and "line 2" in record.getMessage()
    assert "leaked-secret" not in record.getMessage()
    assert not auth.changed()  # not retried until the file changes again


def test_rotating_the_jwt_secret_file_revokes_tokens_signed_with_the_old_one(tmp_path: Path) -> None:
    secret = tmp_path / "jwt-secret"
    secret.write_text(SECRET_A + "\n")
    auth = Authenticator(AuthConfig(jwt_secret_file=str(secret)))
    claims = {"sub": "d", "exp": int(time.time()) + 300, "scope": "write:cars"}
    old = auth.principal_for(jwt.encode(claims, SECRET_A, algorithm="HS256"))
    assert old is not None and old.may(WRITE, "cars")
    write(secret, SECRET_B + "\n")
    assert auth.changed() and auth.reload("a file changed")
    assert old.revoked and auth.principal_for(jwt.encode(claims, SECRET_A, algorithm="HS256")) is None
    assert auth.principal_for(jwt.encode(claims, SECRET_B, algorithm="HS256")) is not None


async def test_a_changed_file_is_reloaded_by_the_watcher(token_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(authenticator_module, "RELOAD_INTERVAL", 0.05)
    auth = Authenticator(AuthConfig(token_file=str(token_file)))
    reloaded = asyncio.Event()
    auth.listeners.append(reloaded.set)
    await auth.start()
    try:
        write(token_file, "added-token name=added write:*\n")
        await asyncio.wait_for(reloaded.wait(), 5)
        assert auth.principal_for("added-token") is not None and auth.principal_for("car-token") is None
    finally:
        await auth.stop()


async def test_sighup_reloads_and_does_not_stop_the_process(token_file: Path) -> None:
    """(Without the handler, SIGHUP's default action would end this very test process.)"""
    auth = Authenticator(AuthConfig(token_file=str(token_file)))
    reloaded = asyncio.Event()
    auth.listeners.append(reloaded.set)
    await auth.start()
    try:
        token_file.write_text("sighup-token name=h read:*\n")
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.wait_for(reloaded.wait(), 5)
        assert auth.principal_for("sighup-token") is not None
    finally:
        await auth.stop()
