"""No secret in any log line (issue 12, items 7 and 9), against a real hub at --log-level debug:
tokens sent every way the hub accepts them (header, access_token= under each spelling of its key,
a percent-encoded value, repeated keys, Tinybird's token=, an Event Hubs SharedAccessSignature),
WebSocket upgrades with the token and the connection token in the query, long polling and SSE with
`id=`; then every line the process wrote, stdout and stderr, is searched for every secret."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
import urllib.parse

import pytest
from websockets.asyncio.client import connect

from .support import RS, make_events

pytestmark = pytest.mark.e2e


def percent_encoded(text: str) -> str:
    return "".join(f"%{b:02X}" for b in text.encode())


async def raw_http(server, method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b"", *, head_only: bool = False) -> int:
    """One request with exactly this request target (no client re-encodes it); its status code."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    lines = [f"{method} {target} HTTP/1.1", f"Host: {server.host}:{server.port}", "Connection: close", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    await writer.drain()
    try:
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
            if not head_only:
                await reader.read()
    finally:
        writer.close()
    return int(head.split(b" ", 2)[1])


async def negotiate(server, path: str = "/hub", version: int = 1) -> str:
    """The connection token (under negotiate version 0, the connection id is the token)."""
    status_and_body = await asyncio.to_thread(
        lambda: server.http().post(f"{path}/negotiate?negotiateVersion={version}")
    )
    assert status_and_body.status_code == 200, status_and_body.text
    return status_and_body.json()["connectionToken" if version >= 1 else "connectionId"]


def sas(resource_uri: str, key: str) -> tuple[str, list[str]]:
    """An Azure sample SharedAccessSignature and the spellings of its signature."""
    uri = urllib.parse.quote_plus(resource_uri)
    expiry = str(int(time.time() + 3600))
    digest = hmac.new(key.encode(), f"{uri}\n{expiry}".encode(), hashlib.sha256).digest()
    signature = base64.b64encode(digest).decode()
    quoted = urllib.parse.quote(signature, safe="")
    return f"SharedAccessSignature sr={uri}&sig={quoted}&se={expiry}&skn=send", [signature, quoted, signature[:20]]


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_no_secret_reaches_any_log_line(hub_server, unique, log_format):
    tokens = [f"tok{n}-{secrets.token_hex(8)}" for n in range(3)]
    server = hub_server("--log-level", "debug", "--log-format", log_format, tokens=tokens)
    a, b, c = tokens
    topic = unique("t")
    connection_tokens: list[str] = []
    json_type = {"Content-Type": "application/json"}
    events = json.dumps(make_events(1, "log")).encode()

    # --- HTTP, the token in the header and in the query under every spelling the hub decodes
    assert await raw_http(server, "GET", "/topics", {"Authorization": f"Bearer {c}"}) == 200
    for query in (
        f"access_token={a}", f"access_tok%65n={a}", f"access_t%6Fk%65n={b}", f"%61ccess_token={a}",
        f"access%5Ftoken={b}", f"access%5ftoken={a}", f"access_token={percent_encoded(a)}",
        f"access_token=wrong&access_token={a}", f"name=x&%61%63%63%65%73%73%5f%74%6f%6b%65%6e={b}",
    ):  # fmt: skip
        assert await raw_http(server, "GET", f"/topics?{query}") == 200, query
    assert await raw_http(server, "GET", f"/topics?access_token={a}&access_token=wrong") == 401  # the last one counts
    path = f"/topics/{topic}/streams/s/events/data"
    assert await raw_http(server, "POST", f"{path}?access_tok%65n={b}", json_type, events) == 200
    for query in (f"token={c}", f"tok%65n={c}", f"%74oken={percent_encoded(c)}"):  # Tinybird senders
        assert await raw_http(server, "POST", f"/v0/events?name={topic}&{query}", {}, events[1:-1]) == 202, query
    # Event Hubs: a SharedAccessSignature made with a hub token as the key
    hub_name = unique("eh")
    authorization, signatures = sas(f"https://ns.servicebus.windows.net/{hub_name}", b)
    assert await raw_http(server, "POST", f"/{hub_name}/messages", {"Authorization": authorization}, b"{}") == 201

    # --- WebSockets: negotiated (id= and the token in the query), and skipNegotiation
    for hub_path, key in (("/hub", "access_tok%65n"), ("/reader", "%61ccess_token")):
        connection_token = await negotiate(server, hub_path)
        connection_tokens.append(connection_token)
        for url in (
            f"ws://{server.host}:{server.port}{hub_path}?id={connection_token}&{key}={a}",
            f"ws://{server.host}:{server.port}{hub_path}?{key}={b}",
        ):
            async with connect(url, open_timeout=5, ping_interval=None) as ws:
                await ws.send('{"protocol":"json","version":1}' + RS)
                assert await asyncio.wait_for(ws.recv(), 5) == "{}" + RS
                if url.endswith(b):  # an invocation too, so its lines are in the log
                    await ws.send(json.dumps({"type": 1, "invocationId": "1", "target": "Nope", "arguments": []}) + RS)
                    assert "error" in json.loads((await asyncio.wait_for(ws.recv(), 5)).rstrip(RS))
            connection_token = await negotiate(server, hub_path)
            connection_tokens.append(connection_token)
    # the token in the Authorization header of an upgrade (websockets logs headers at debug)
    async with connect(f"ws://{server.host}:{server.port}/hub", additional_headers={"Authorization": f"Bearer {c}"}) as ws:
        await ws.send('{"protocol":"json","version":1}' + RS)
        assert await asyncio.wait_for(ws.recv(), 5) == "{}" + RS
    # a connection token used by someone without a token: refused, and still not logged
    assert await raw_http(server, "GET", f"/hub?id={connection_tokens[-1]}") == 401

    # --- long polling and Server-Sent Events, with id= (spelled two ways) and the token in the query
    lp = await negotiate(server)
    connection_tokens.append(lp)
    assert await raw_http(server, "GET", f"/hub?id={lp}&access_token={a}") == 200  # the first poll answers at once
    handshake = b'{"protocol":"json","version":1}\x1e'
    # (every request naming a connection carries the token of the user who negotiated it)
    assert await raw_http(server, "POST", f"/hub?i%64={lp}&access_tok%65n={a}", {}, handshake) == 200
    # another user's token on it: refused, and neither token nor connection token logged
    assert await raw_http(server, "GET", f"/hub?id={lp}&access_token={b}") == 403
    assert await raw_http(server, "DELETE", f"/hub?%69d={lp}&access_token={percent_encoded(a)}") == 202
    # negotiate version 0: the connection id is the token; the hub's own lines about the connection
    # (a protocol error closes it) must name it some other way
    v0 = await negotiate(server, version=0)
    connection_tokens.append(v0)
    assert await raw_http(server, "GET", f"/hub?id={v0}&access_token={a}") == 200
    assert await raw_http(server, "POST", f"/hub?id={v0}&access_token={a}", {}, handshake + b"{not json\x1e") == 200
    assert await raw_http(server, "GET", f"/hub?id={v0}&access_token={a}") in (200, 204)
    sse = await negotiate(server)
    connection_tokens.append(sse)
    sse_target = f"/hub?id={sse}&access_token={a}"
    assert await raw_http(server, "GET", sse_target, {"Accept": "text/event-stream"}, head_only=True) == 200

    server.stop()
    lines = [line for line in (server.stdout_text() + "\n" + server.stderr_text()).splitlines() if line]
    assert sum("***" in line for line in lines) >= 20, "\n".join(lines)  # the requests above were logged, redacted
    if log_format == "json":
        assert_json_lines(lines)
    secrets_sent = tokens + [percent_encoded(t) for t in tokens] + connection_tokens + signatures
    leaks = [(secret, line) for line in lines for secret in secrets_sent if secret in line]
    assert not leaks, "\n".join(f"{secret}: {line}" for secret, line in leaks)


async def test_no_scoped_token_jwt_or_jwt_secret_reaches_any_log_line(hub_server, unique, tmp_path):
    """Issue 14: named, scoped tokens from --token-file and JWTs (HS256, from --jwt-secret-file),
    accepted and refused, every way a token is sent; a reload (SIGHUP) of a malformed file whose bad
    line holds a token; then every line is searched for every secret."""
    import os
    import signal

    import jwt as pyjwt

    scoped, admin, malformed_line_token = (f"tok-{secrets.token_hex(10)}" for _ in range(3))
    jwt_secret = secrets.token_hex(32)
    (tmp_path / "tokens").write_text(f"{scoped} name=car-17 write:cars-* read:cars-*\n{admin} name=ops\n")
    (tmp_path / "jwt-secret").write_text(jwt_secret + "\n")
    server = hub_server("--log-level", "debug", "--token-file", str(tmp_path / "tokens"),
                        "--jwt-secret-file", str(tmp_path / "jwt-secret"), token=None)
    now = int(time.time())
    good_jwt = pyjwt.encode({"sub": "device-9", "exp": now + 300, "scope": "write:cars-* read:cars-*"}, jwt_secret, algorithm="HS256")
    expired_jwt = pyjwt.encode({"sub": "device-9", "exp": now - 10, "scope": "read:*"}, jwt_secret, algorithm="HS256")
    forged_jwt = pyjwt.encode({"sub": "device-9", "exp": now + 300, "scope": "admin:*"}, "x" * 64, algorithm="HS256")
    topic = unique("cars")
    events = json.dumps(make_events(1, "log")).encode()
    json_type = {"Content-Type": "application/json"}
    path = f"/topics/{topic}/streams/s/events/data"

    for token in (scoped, good_jwt):
        assert await raw_http(server, "POST", path, {**json_type, "Authorization": f"Bearer {token}"}, events) == 200
        assert await raw_http(server, "GET", f"{path}?access_token={token}") == 200
        assert await raw_http(server, "GET", f"{path}?access_tok%65n={percent_encoded(token)}") == 200
        assert await raw_http(server, "POST", f"/v0/events?name={topic}&token={token}", {}, events[1:-1]) == 202
    for refused in (expired_jwt, forged_jwt, good_jwt + "x"):
        assert await raw_http(server, "GET", "/topics", {"Authorization": f"Bearer {refused}"}) == 401
        assert await raw_http(server, "GET", f"/topics?access_token={refused}") == 401
    assert await raw_http(server, "GET", f"/topics/{good_jwt}/streams", {"Authorization": f"Bearer {admin}"}) in (200, 400)
    async with connect(f"ws://{server.host}:{server.port}/hub?access_token={good_jwt}", open_timeout=5, ping_interval=None) as ws:
        await ws.send('{"protocol":"json","version":1}' + RS)
        assert await asyncio.wait_for(ws.recv(), 5) == "{}" + RS
        await ws.send(json.dumps({"type": 1, "invocationId": "1", "target": "SendEventData",
                                  "arguments": [topic, "s", make_events(1, "ws")]}) + RS)
        assert "error" not in json.loads((await asyncio.wait_for(ws.recv(), 5)).rstrip(RS))

    (tmp_path / "tokens").write_text(f"{scoped} name=car-17\n{malformed_line_token} name=a name=b\n")
    os.kill(server.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "reload (SIGHUP) failed" not in server.stdout_text() + server.stderr_text():
        assert time.monotonic() < deadline, "the failed reload was not logged"
        await asyncio.sleep(0.05)

    server.stop()
    lines = (server.stdout_text() + "\n" + server.stderr_text()).splitlines()
    secrets_sent = [scoped, admin, malformed_line_token, jwt_secret, good_jwt, expired_jwt, forged_jwt]
    secrets_sent += [t.rsplit(".", 1)[1] for t in (good_jwt, expired_jwt, forged_jwt)]  # the signatures alone
    secrets_sent += [percent_encoded(t) for t in (scoped, good_jwt)]
    leaks = [(secret, line) for line in lines for secret in secrets_sent if secret in line]
    assert not leaks, "\n".join(f"{secret[:12]}…: {line}" for secret, line in leaks)


def assert_json_lines(lines: list[str]) -> None:
    """Every line one JSON object with ts, level, logger and msg; the fields a line can know are
    there: on uvicorn's access lines, on the hub's connection open and close lines."""
    records = []
    for line in lines:
        record = json.loads(line)  # every line, or the test fails here naming it
        assert isinstance(record, dict) and {"ts", "level", "logger", "msg"} <= record.keys(), line
        records.append(record)
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert access and all({"remote", "method", "path", "status"} <= r.keys() for r in access), access[:3]
    assert {r["status"] for r in access} >= {200, 401, 403}
    opened = [r for r in records if r["msg"].startswith("connection ") and " opened: " in r["msg"]]
    closed = [r for r in records if r["msg"].startswith("connection ") and " closed: " in r["msg"] and "duration_ms" in r]
    assert {r["hub"] for r in opened} == {"WriterHub", "ReaderHub"}, opened
    assert {r["transport"] for r in opened} >= {"WebSockets", "LongPolling"}, opened
    for record in opened + closed:
        assert record["level"] == "info" and record["connection_id"] and record["user"].startswith("token:"), record
    assert {r["connection_id"] for r in closed} >= {r["connection_id"] for r in opened if r["transport"] == "WebSockets"}
    assert all(r["reason"] in ("normal", "error", "shutdown") and r["duration_ms"] >= 0 for r in closed), closed
    # once each, at info: no other info line opens or closes a connection the hub's observer logged
    for record in opened:
        about = [r for r in records if r["level"] == "info" and f"connection {record['connection_id']} " in r["msg"]]
        assert sum(" opened: " in r["msg"] for r in about) == 1 and sum(" closed" in r["msg"] for r in about) <= 1, about
