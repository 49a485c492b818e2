"""Every method of both hubs against a real hub process with a real (raw WebSocket) client, with a
token scoped to another topic and with the right one (issue 14). The methods are taken from the
hubs' own method tables, so a method added later fails here until it is given its arguments below.

A refused call gets ASP.NET's Completion `Failed to invoke '<method>' because user is unauthorized`
and the connection stays open; SubscribeToActiveStreams (a listing, filtered) and Unsubscribe*
answer normally whatever the scope."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hub.reader.hub import ReaderHub
from hub.signalr.dispatcher import unauthorized
from hub.writer.hub import WriterHub

from .support import RawConnection

pytestmark = pytest.mark.e2e

TOPIC = "cars"
TOKENS = """\
boats-tok  name=boats   write:boats read:boats
cars-tok   name=cars    write:cars read:cars
"""
EVENT = {"id": "Alert", "timestamp": 1, "value": "x"}
PARAMETERS = {"timestamps": [1], "numericValues": {"speed": [1.0]}}


@dataclass(frozen=True)
class Call:
    """How the walk calls one method: its arguments (`{stream}` is the stream made by CreateStream),
    `kind` "invoke", "stream" (StreamInvocation) or "upload" (one client stream of `items`)."""

    arguments: tuple
    kind: str = "invoke"
    items: tuple = ()
    listing_or_unsubscribe: bool = False  # answers normally whatever the scope


STREAM = "{stream}"
#: In the order the right-scope walk makes them (CloseStream last: a closed stream takes no writes).
CALLS: dict[tuple[str, str], Call] = {
    ("/hub", "CreateStream"): Call((TOPIC, {"name": "walk"})),
    ("/hub", "UpdateStream"): Call((TOPIC, STREAM, {"name": "walk 2"})),
    ("/hub", "SendEventData"): Call((TOPIC, STREAM, [EVENT])),
    ("/hub", "SendParameterData"): Call((TOPIC, STREAM, PARAMETERS)),
    ("/hub", "StreamEventData"): Call((TOPIC, STREAM), kind="upload", items=(EVENT,)),
    ("/hub", "StreamParameterData"): Call((TOPIC, STREAM), kind="upload", items=(PARAMETERS,)),
    ("/hub", "ReadEventData"): Call((TOPIC, STREAM, None, False), kind="stream"),
    ("/hub", "CloseStream"): Call((TOPIC, STREAM)),
    ("/reader", "SubscribeToEvent"): Call((TOPIC, "*", "*")),
    ("/reader", "UnsubscribeFromEvent"): Call((TOPIC, "*", "*"), listing_or_unsubscribe=True),
    ("/reader", "SubscribeToParameter"): Call((TOPIC, "*", "speed")),
    ("/reader", "UnsubscribeFromParameter"): Call((TOPIC, "*", "speed"), listing_or_unsubscribe=True),
    ("/reader", "SubscribeToActiveStreams"): Call((TOPIC,), listing_or_unsubscribe=True),
    ("/reader", "UnsubscribeFromActiveStreams"): Call((TOPIC,), listing_or_unsubscribe=True),
    ("/reader", "UnsubscribeFromStream"): Call((TOPIC, "*"), listing_or_unsubscribe=True),
}


def registered_methods() -> set[tuple[str, str]]:
    """Every method the two hubs expose, from their own tables (what the dispatcher serves)."""
    hubs = {"/hub": WriterHub(service=None), "/reader": ReaderHub(service=None)}  # type: ignore[arg-type]
    return {(path, method.name) for path, hub in hubs.items() for method in hub.methods().values()}


def test_the_walk_names_every_method_of_both_hubs() -> None:
    assert set(CALLS) == registered_methods(), "give every hub method its arguments in CALLS"


async def make(conn: RawConnection, iid: str, target: str, call: Call, stream_id: str) -> list[dict]:
    """Make one call; every record up to and including its Completion."""
    arguments = [stream_id if a == STREAM else a for a in call.arguments]
    message: dict[str, Any] = {"type": 4 if call.kind == "stream" else 1, "invocationId": iid, "target": target,
                               "arguments": arguments}
    items: list[dict] = []
    if call.kind == "upload":
        upload = f"{iid}-items"
        message["streamIds"] = [upload]
        items = [{"type": 2, "invocationId": upload, "item": item} for item in call.items]
        items.append({"type": 3, "invocationId": upload})
    await conn.send(message, *items)
    records = []
    while True:
        record = await conn.recv(timeout=10)
        if record.get("invocationId") == iid:
            records.append(record)
            if record["type"] == 3:
                return records


async def open_hub(server, path: str, token: str) -> RawConnection:
    conn = await RawConnection.open(f"ws://{server.host}:{server.port}{path}", token, hub_url=f"{server.url}{path}")
    assert await conn.handshake() == {}
    return conn


@pytest.fixture
def scoped_hub(hub_server, tmp_path: Path):
    token_file = tmp_path / "tokens"
    token_file.write_text(TOKENS)
    return hub_server("--token-file", str(token_file))


async def test_a_token_scoped_to_another_topic_is_refused_every_method_but_listings_and_unsubscribes(scoped_hub) -> None:
    connections = {path: await open_hub(scoped_hub, path, "boats-tok") for path in ("/hub", "/reader")}
    try:
        for i, ((path, target), call) in enumerate(CALLS.items()):
            records = await make(connections[path], f"c{i}", target, call, "s1")
            if call.listing_or_unsubscribe:
                listed = [] if target == "SubscribeToActiveStreams" else None  # cars' streams, none readable
                assert records == [{"type": 3, "invocationId": f"c{i}", "result": listed}], target
            else:
                assert records == [{"type": 3, "invocationId": f"c{i}", "error": unauthorized(target)}], target
        # still open, and a call the token may make works on each
        for path, target, arguments in (("/hub", "SendEventData", ("boats", "s1", [EVENT])),
                                        ("/reader", "SubscribeToEvent", ("boats", "*", "*"))):
            reply = await connections[path].invoke(target, *arguments, invocation_id="ok")
            assert reply == {"type": 3, "invocationId": "ok", "result": None}
    finally:
        for conn in connections.values():
            await conn.close()
    with scoped_hub.http() as http:  # the admin --token sees every topic: nothing refused reached the store
        assert [t["topic"] for t in http.get("/topics").json()] == ["boats"]


async def test_the_right_scope_is_refused_nothing(scoped_hub) -> None:
    connections = {path: await open_hub(scoped_hub, path, "cars-tok") for path in ("/hub", "/reader")}
    stream_id = "s1"
    try:
        for i, ((path, target), call) in enumerate(CALLS.items()):
            records = await make(connections[path], f"c{i}", target, call, stream_id)
            completion = records[-1]
            assert "error" not in completion, (target, completion)
            if target == "CreateStream":
                stream_id = completion["result"]["streamId"]
            if target == "ReadEventData":
                assert [r["item"]["timestamp"] for r in records[:-1]] == [1, 1]  # SendEventData's, StreamEventData's
    finally:
        for conn in connections.values():
            await conn.close()
