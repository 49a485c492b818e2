"""The floor: the least work our stack (uvicorn + websockets + Starlette + orjson) can do for the same
messages, hand-written, to measure the hub against in the same run.

- `/hub` (WebSocket, SignalR JSON): handshake, split records, parse each, append the events to a
  list, answer each invocation with its Completion. No auth, no validation, no timers.
- `POST /topics/{t}/streams/{s}/events/data` (NDJSON or a JSON array): parse the lines, append them,
  answer with the counts.

    python -m bench.floor --port 8090

Run with the same uvicorn settings as the hub (hub/cli.py): uvloop, httptools, websockets-sansio,
no protocol-level WebSocket pings, no server header.
"""

from __future__ import annotations

import argparse

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

RS = "\x1e"
STORE: list = []  # everything received, as the hub's memory store keeps it


async def hub(ws: WebSocket) -> None:
    await ws.accept()
    handshake = (await ws.receive()).get("text") or ""
    if '"json"' not in handshake:
        await ws.send({"type": "websocket.send", "text": '{"error":"The floor speaks json only."}' + RS})
        await ws.close()
        return
    await ws.send({"type": "websocket.send", "text": "{}" + RS})
    append = STORE.extend
    while True:
        message = await ws.receive()
        text = message.get("text")
        if text is None:
            return  # disconnect (or a binary frame the floor does not speak)
        replies = []
        for record in text.split(RS):
            if not record:
                continue
            msg = orjson.loads(record)
            if msg.get("type") != 1:
                continue  # pings, closes
            args = msg["arguments"]
            append(args[2])
            iid = msg.get("invocationId")
            if iid is not None:
                replies.append(orjson.dumps({"type": 3, "invocationId": iid, "result": None}).decode() + RS)
        for reply in replies:
            await ws.send({"type": "websocket.send", "text": reply})


async def events_data(request: Request) -> Response:
    body = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        rows = orjson.loads(body)
    else:
        rows = [orjson.loads(line) for line in body.split(b"\n") if line.strip()]
    STORE.extend(rows)
    return Response(orjson.dumps({"successful_rows": len(rows), "quarantined_rows": 0}), media_type="application/json")


async def health(request: Request) -> Response:
    return Response(b"ok", media_type="text/plain")


app = Starlette(
    routes=[
        Route("/health", health),
        WebSocketRoute("/hub", hub),
        Route("/topics/{topic}/streams/{stream}/events/data", events_data, methods=["POST"]),
    ]
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--reuse-port", action="store_true", help="SO_REUSEPORT: several floors on one port")
    args = parser.parse_args()
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        ws="websockets-sansio",
        ws_max_size=16 * 1024 * 1024,
        ws_ping_interval=None,
        server_header=False,
    )
    server = uvicorn.Server(config)
    sockets = [reuse_port_socket(args.host, args.port)] if args.reuse_port else None
    server.run(sockets=sockets)


def reuse_port_socket(host: str, port: int):
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


if __name__ == "__main__":
    main()
