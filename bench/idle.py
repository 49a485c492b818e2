"""Idle connections: N WebSocket connections opened and handshaken, then held with the client's
keep-alive (a Ping record every 15 s, as @microsoft/signalr sends) for a while.

The suite (`python -m bench idle`) splits the connections over several holder processes (each
process may have at most 20,000 open files here) and several 127.0.0.x source addresses (so the
ephemeral ports of one address do not run out), and measures the server: RSS before and after (per
connection = delta / N), CPU while idle, how many connections stayed open.

A holder, run by the suite (one JSON line on stdout when ready, one when done):

    python -m bench.idle --url http://127.0.0.1:8080/hub --token T --count 5000 \
        --source 127.0.0.2 --hold 300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from urllib.parse import urlsplit

from . import wire
from .servers import pin_self

PING_INTERVAL = 15.0
CONNECT_CONCURRENCY = 256


async def hold(args: argparse.Namespace) -> None:
    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = f"{parts.path or '/hub'}?access_token={args.token}"
    sources = args.source or ["127.0.0.1"]
    clients: list[wire.WsClient] = []
    failures: list[str] = []
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    loop = asyncio.get_running_loop()
    ping = wire.ping_frame("json")
    pingers: list[asyncio.Future] = []

    async def keepalive(client: wire.WsClient) -> None:
        # From the handshake on (the hub's client timeout runs from there), spread over the interval.
        await asyncio.sleep(random.uniform(0, PING_INTERVAL))
        while not client.closed.done():
            client.send(ping)
            await asyncio.sleep(PING_INTERVAL)

    async def open_one(i: int) -> None:
        async with gate:
            handshaken = loop.create_future()

            def on_message(opcode: int, payload: bytes) -> None:
                if not handshaken.done():
                    handshaken.set_result(payload)

            try:
                client = await wire.ws_connect(host, port, path, on_message, local_addr=(sources[i % len(sources)], 0))
                client.send(wire.handshake_frame("json"))
                reply = await asyncio.wait_for(handshaken, 30)
                if not reply.startswith(b"{}"):
                    raise ConnectionError(reply[:200].decode(errors="replace"))
                clients.append(client)
                pingers.append(asyncio.ensure_future(keepalive(client)))
            except Exception as exc:  # noqa: BLE001 - counted and reported
                failures.append(f"{type(exc).__name__}: {exc}")

    started = time.perf_counter()
    await asyncio.gather(*(open_one(i) for i in range(args.count)))
    _say({"event": "ready", "open": len(clients), "failed": len(failures), "first_failure": failures[0] if failures else None,
          "connect_seconds": round(time.perf_counter() - started, 2)})

    # Hold until told (a line on stdin) or the time is up.
    reader = asyncio.ensure_future(loop.run_in_executor(None, sys.stdin.readline))
    await asyncio.wait([reader], timeout=args.hold)
    still_open = sum(1 for c in clients if not c.closed.done())
    codes: dict[str, int] = {}
    for c in clients:
        if c.closed.done():
            codes[str(c.close_code)] = codes.get(str(c.close_code), 0) + 1
    _say({"event": "done", "open": still_open, "dropped": len(clients) - still_open, "close_codes": codes})
    for p in pingers:
        p.cancel()
    for c in clients:
        c.close()
    await asyncio.sleep(0.5)


def _say(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8080/hub")
    p.add_argument("--token", default="")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--source", action="append", help="a local address to connect from (repeatable)")
    p.add_argument("--hold", type=float, default=300)
    args = p.parse_args()
    pin_self()
    try:
        import uvloop

        uvloop.run(hold(args))
    except ImportError:  # pragma: no cover
        asyncio.run(hold(args))


if __name__ == "__main__":
    main()
