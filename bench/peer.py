"""The peer: what a Python user would pick instead, python-socketio (ASGI) on uvicorn, receiving the
same SendEventData event with an acknowledgement and appending the events to a list.

    python -m bench.peer --port 8091

Same uvicorn settings as the hub and the floor. Engine.IO's own ping runs every 25 s (its default);
the generator answers it.
"""

from __future__ import annotations

import argparse

import socketio
import uvicorn

STORE: list = []

sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=[], logger=False, engineio_logger=False)
app = socketio.ASGIApp(sio)


@sio.on("SendEventData")
async def send_event_data(sid: str, topic: str, stream_id: str, events: list) -> None:
    STORE.extend(events)  # returning None acknowledges with no arguments: 43<id>[]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    args = parser.parse_args()
    uvicorn.run(
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


if __name__ == "__main__":
    main()
