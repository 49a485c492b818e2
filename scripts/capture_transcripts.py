"""Capture wire transcripts from real clients into protocol-notes/transcripts/*.md.

    .venv/bin/python scripts/capture_transcripts.py      (after scripts/test has installed things)

Starts the real hub (the test suite's fixture code), runs the real `@microsoft/signalr` drivers
from tests/node with their Trace log on (`logMessageContent: true`), and a few raw WebSocket
sessions for the bad-input cases, then writes what went over the wire as markdown. Tokens are
replaced by <token>; connection ids and stream ids vary from run to run.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
import sys
import tempfile
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))

from e2e.harness import HubServerFactory, NodeRunner  # noqa: E402
from e2e.support import BASE_TS, RawConnection, make_events  # noqa: E402

OUT_DIR = REPO_ROOT / "protocol-notes" / "transcripts"
CONTENT = re.compile(
    r"^\((?P<transport>[^)]+) transport\) (?P<dir>sending data|data received)\. .*? Content: '(?P<body>.*)'\.$", re.S
)


def show(text: str) -> str:
    text = re.sub(r"(.)\1{39,}", lambda m: f"{m[1] * 8}…<{len(m[0])} × {m[1]!r}>", text)
    return text.replace("\x1e", "␞")


def redact(text: str, tokens: list[str]) -> str:
    for token in tokens:
        text = text.replace(token, "<token>")
    return text


def trace_lines(trace: list[dict]) -> list[str]:
    """The client's trace as a wire log: `C→S`/`S→C` for frames, `··` for the client's own notes."""
    lines = []
    for entry in trace:
        message = entry["message"]
        who = f"[{entry['conn']}] " if entry.get("conn") not in (None, "conn") else ""
        match = CONTENT.match(message)
        if match:
            arrow = "C→S" if match["dir"] == "sending data" else "S→C"
            lines.append(f"{who}{arrow} {show(match['body'])}")
        elif any(
            key in message
            for key in (
                "negotiation request",
                "Selecting transport",
                "WebSocket connected",
                "Using HubProtocol",
                "socket closed",
                "Connection disconnected",
            )
        ):
            lines.append(f"{who}··  {message}")
    return lines


def section(title: str, intro: str, lines: list[str], tokens: list[str]) -> str:
    body = redact("\n".join(lines), tokens)
    return f"## {title}\n\n{intro}\n\n```\n{body}\n```\n"


def write(name: str, title: str, intro: str, sections: list[str]) -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.date.today().isoformat()
    legend = (
        f"Captured {stamp} by `scripts/capture_transcripts.py`. `␞` is the record separator 0x1E; "
        "`C→S` client to server, `S→C` server to client, `··` the client's own log."
    )
    text = f"# {title}\n\n{intro}\n\n{legend}\n\n" + "\n".join(sections)
    (OUT_DIR / name).write_text(text)
    print(f"wrote {OUT_DIR / name}")


def js_client(server, node: NodeRunner) -> None:
    spec = {"url": server.hub_url, "token": server.token, "topic": "cars", "trace": True}
    event = {"id": "Alert", "timestamp": BASE_TS, "value": "Help", "tags": {"capacity": "over"}}
    created = node(
        "send-events.mjs",
        {**spec, "createStream": {"properties": {"name": "Lap 1", "location": "/car/lap1"}}, "batches": [[event]]},
    )
    pipelined = node(
        "send-events.mjs",
        {
            **spec,
            "streamId": "s1",
            "pipeline": True,
            "batches": [make_events(1, "a"), make_events(1, "b", start=1), make_events(1, "c", start=2)],
        },
    )
    errors = node(
        "errors-then-ok.mjs",
        {
            **spec,
            "streamId": "s2",
            "calls": [
                {"method": "NoSuchMethod", "args": []},
                {"method": "SendEventData", "args": ["cars"]},
                {"method": "SendEventData", "args": ["cars", "s2", [{"id": "x", "timestamp": 1.5, "value": "v"}]]},
            ],
            "goodEvent": make_events(1, "ok")[0],
        },
    )
    with server.http() as client:
        read_back = client.get(f"/topics/cars/streams/{created['streamId']}/events/data")
    tokens = [server.token]
    write(
        "js-client-json-websockets.md",
        "@microsoft/signalr 10.0.11 (Node) over WebSockets, JSON protocol",
        "The client built as an application builds it: `new HubConnectionBuilder().withUrl(url, { accessTokenFactory }).build()`, "
        "default transport negotiation. Lines come from the client's own Trace log.",
        [
            section(
                "CreateStream, then SendEventData, then stop()",
                f"Read back afterwards with `GET /topics/cars/streams/<id>/events/data` → {read_back.status_code} `{read_back.text}`",
                trace_lines(created["trace"]),
                tokens,
            ),
            section(
                "Three pipelined invokes (Promise.all): Completions come back in order",
                "Invocations of one connection are applied in the order received.",
                trace_lines(pipelined["trace"]),
                tokens,
            ),
            section(
                "Bad calls on connection A while connection B is open",
                "Unknown method, wrong argument count, an invalid event: each gets its Completion error, and both connections keep working.",
                trace_lines(errors["trace"]),
                tokens,
            ),
        ],
    )


async def raw_session(server, actions) -> list[str]:
    """Run `actions(conn)` on a raw connection and log every frame both ways."""
    conn = await RawConnection.open(server.ws_url, server.token, hub_url=server.hub_url)
    lines: list[str] = []
    try:
        await actions(conn)
        await conn.records_until_closed(timeout=5)
    except Exception as error:  # the transcript says what happened
        lines.append(f"··  {type(error).__name__}: {error}")
    finally:
        await conn.close()
    wire = [f"{arrow} {show(frame if isinstance(frame, str) else repr(frame))}" for arrow, frame in conn.wire]
    return wire + lines + [f"··  WebSocket closed: code {conn.ws.close_code}, reason {conn.ws.close_reason!r}"]


async def raw_cases(server, small) -> None:
    async def send_and_wait(conn, *texts):
        for text in texts:
            await conn.send_text(text)

    async def after_handshake(conn, text):
        await conn.handshake()
        await conn.send_text(text)

    cases = [
        ("Unknown protocol", server, lambda c: send_and_wait(c, '{"protocol":"x","version":1}\x1e')),
        ("Protocol version 3", server, lambda c: send_and_wait(c, '{"protocol":"json","version":3}\x1e')),
        ("Garbage handshake", server, lambda c: send_and_wait(c, "hello there\x1e")),
        ("Invalid JSON record after the handshake", server, lambda c: after_handshake(c, '{"type":1,"target":\x1e')),
        (
            "Message over --max-message-size 1024",
            small,
            lambda c: after_handshake(
                c,
                json.dumps(
                    {
                        "type": 1,
                        "invocationId": "1",
                        "target": "SendEventData",
                        "arguments": ["t", "s", [{"id": "big", "timestamp": 1, "value": "x" * 1100}]],
                    }
                )
                + "\x1e",
            ),
        ),
    ]
    sections = []
    for title, srv, action in cases:
        lines = await raw_session(srv, action)
        sections.append(
            section(
                title,
                "Frames in the order they crossed the wire, until the server closed the socket.",
                lines,
                [srv.token],
            )
        )

    async with httpx.AsyncClient(timeout=5) as client:
        negotiate = await client.post(f"{server.hub_url}/negotiate?negotiateVersion=1", headers=server.auth_headers)
        refused = await client.post(f"{server.hub_url}/negotiate?negotiateVersion=1")
    sections.insert(
        0,
        section(
            "Negotiate",
            "`POST /hub/negotiate?negotiateVersion=1`, with and without the token.",
            [
                "C→S POST /hub/negotiate?negotiateVersion=1  (Authorization: Bearer <token>)",
                f"S→C {negotiate.status_code} {negotiate.text}",
                "C→S POST /hub/negotiate?negotiateVersion=1  (no token)",
                f"S→C {refused.status_code} {refused.text}",
            ],
            [server.token],
        ),
    )
    write(
        "raw-bad-input.md",
        "Bad input over a raw WebSocket",
        "What the hub answers to a handshake or record it cannot accept, sent with the `websockets` library "
        "(tests/e2e/test_bad_input.py checks the same cases, each with a second connection that keeps working).",
        sections,
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        factory = HubServerFactory(Path(tmp))
        try:
            server = factory()
            small = factory("--max-message-size", "1024")
            js_client(server, NodeRunner())
            asyncio.run(raw_cases(server, small))
        finally:
            factory.close()


if __name__ == "__main__":
    main()
