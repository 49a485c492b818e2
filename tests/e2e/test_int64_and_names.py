"""Values refused, never changed (issue 12), against a real server: timestamps outside int64 and the
names `.` and `..`, over HTTP (JSON and NDJSON, and the GET routes' from/to), SignalR JSON and
SignalR MessagePack (raw frames, so the exact literal or MessagePack integer is what the hub gets),
and the real JavaScript client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import msgpack
import pytest

from hub.signalr.protocols.msgpack import encode_length_prefix, read_length_prefix

from .support import RS, RawConnection, make_events

pytestmark = pytest.mark.e2e

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
TS_REFUSED = "expected an integer of nanoseconds"
HUB_ERROR = "An unexpected error occurred invoking '{}' on the server. HubException: {}"
STREAM_ERROR = "An error occurred on the server while streaming results. HubException: {}"
# JSON literals outside int64: just below and above it, 2^64, and what JSON.stringify(-(2**63) - 1)
# writes (-2^63 - 192); orjson read the first and the last as the float -2^63.
OUTSIDE_INT64_LITERALS = ["-9223372036854775809", "9223372036854775808", "18446744073709551616", "-9223372036854776000", "9.3e18"]
RESERVED = [".", ".."]


def event_literal(timestamp: str) -> str:
    return '[{"id":"a","timestamp":' + timestamp + ',"value":"v"}]'


# --- HTTP ----------------------------------------------------------------------------------------


def test_http_refuses_timestamps_outside_int64_and_keeps_its_edges(shared_hub, unique):
    topic, stream_id = unique("t"), unique("s")
    with shared_hub.http() as client:
        path = f"/topics/{topic}/streams/{stream_id}"
        for literal in OUTSIDE_INT64_LITERALS:
            json_reply = client.post(
                f"{path}/events/data", content=event_literal(literal), headers={"Content-Type": "application/json"}
            )
            assert (json_reply.status_code, json_reply.json()) == (400, {"error": f"events[0].timestamp: {TS_REFUSED}"}), literal
            ndjson = client.post(
                f"{path}/events/data",
                content=event_literal(literal)[1:-1] + "\n",
                headers={"Content-Type": "application/x-ndjson"},
            )
            assert ndjson.json() == {"successful_rows": 0, "quarantined_rows": 1}, literal
            parameters = client.post(
                f"{path}/parameters/data",
                content='{"timestamps":[1,' + literal + '],"numericValues":{"x":[1,2]}}',
                headers={"Content-Type": "application/json"},
            )
            assert parameters.status_code == 400, literal
            assert parameters.json() == {"error": f"parameterData.timestamps[1]: {TS_REFUSED}"}, literal
        quarantine = client.get(f"/topics/{topic}/quarantine").json()
        assert [row["reason"] for row in quarantine] == [f"line 1.timestamp: {TS_REFUSED}"] * len(OUTSIDE_INT64_LITERALS)

        # Nothing of the refused writes was stored; the edges themselves are kept exactly.
        edges = event_literal(str(INT64_MIN))[:-1] + "," + event_literal(str(INT64_MAX))[1:]
        ok = client.post(f"{path}/events/data", content=edges, headers={"Content-Type": "application/json"})
        assert ok.status_code == 200, ok.text
        assert [e["timestamp"] for e in client.get(f"{path}/events/data").json()] == [INT64_MIN, INT64_MAX]

        for query in ("from=-9223372036854775809", "to=9223372036854775808", "from=18446744073709551616"):
            reply = client.get(f"{path}/events/data?{query}")
            name = query.split("=")[0]
            assert (reply.status_code, reply.json()) == (400, {"error": f"{name}: {TS_REFUSED}"}), query
            assert client.get(f"{path}/parameters/data?{query}").status_code == 400, query
        assert len(client.get(f"{path}/events/data?from={INT64_MIN}&to={INT64_MAX}").json()) == 1  # `to` excluded


@pytest.mark.parametrize("name", RESERVED)
def test_http_refuses_the_names_dot_and_dot_dot(shared_hub, unique, name):
    topic, stream_id = unique("t"), unique("s")
    events = json.dumps(make_events(1, "dot"))
    segment = name.replace(".", "%2E")  # percent-encoded, so that no client resolves it away first
    json_type = {"Content-Type": "application/json"}
    with shared_hub.http() as client:
        for path, what in (
            (f"/topics/{segment}/streams/{stream_id}", "topic"),
            (f"/topics/{topic}/streams/{segment}", "streamId"),
        ):
            error = {"error": f"{what}: must not be '.' or '..'"}
            for reply in (
                client.post(f"{path}/events/data", content=events, headers=json_type),
                client.post(f"{path}/parameters/data", content='{"timestamps":[1]}', headers=json_type),
                client.put(path, content="{}", headers=json_type),
                client.post(f"{path}/close"),
                client.put(f"{path}/events", content="[]", headers=json_type),
                client.get(f"{path}/events/data"),
                client.get(path),
            ):
                assert (reply.status_code, reply.json()) == (400, error), (reply.request.method, reply.request.url)
        topic_error = {"error": "topic: must not be '.' or '..'"}
        for reply in (
            client.post(f"/topics/{segment}/streams", content="{}", headers=json_type),
            client.get(f"/topics/{segment}/streams"),
            client.get(f"/topics/{segment}/quarantine"),
            client.post(f"/v0/events?name={segment}", content=events[1:-1]),
        ):
            assert reply.status_code == 400 and reply.json() == topic_error, (reply.request.url, reply.text)
        assert name not in [t["topic"] for t in client.get("/topics").json()]


# --- SignalR, JSON and MessagePack over raw frames -------------------------------------------------


class RawMessagePack:
    """A MessagePack connection over a RawConnection: binary records in, records out."""

    def __init__(self, conn):
        self.conn = conn
        self.buffer = b""

    @classmethod
    async def open(cls, raw_ws, server) -> "RawMessagePack":
        conn = await raw_ws.open(server)
        await conn.send_text('{"protocol":"messagepack","version":1}' + RS)
        reply = await asyncio.wait_for(conn.ws.recv(), 5)
        assert reply in ("{}" + RS, b"{}\x1e"), reply
        return cls(conn)

    async def send(self, message: list) -> None:
        body = msgpack.packb(message)
        await self.conn.ws.send(encode_length_prefix(len(body)) + body)

    async def recv(self) -> list:
        while True:
            prefix = read_length_prefix(self.buffer, 0)
            if prefix is not None and len(self.buffer) >= prefix[1] + prefix[0]:
                length, start = prefix
                record, self.buffer = self.buffer[start : start + length], self.buffer[start + length :]
                message = msgpack.unpackb(record)
                if message[0] != 6:  # pings
                    return message
                continue
            self.buffer += await asyncio.wait_for(self.conn.ws.recv(), 5)

    async def completion(self, invocation_id: str) -> list:
        while True:
            message = await self.recv()
            if message[0] == 3 and message[2] == invocation_id:
                return message


async def json_completion(conn, record: str, invocation_id: str) -> dict:
    await conn.send_text(record + RS)
    while True:
        message = await conn.recv()
        if message.get("type") == 3 and message.get("invocationId") == invocation_id:
            return message


async def test_signalr_json_refuses_timestamps_outside_int64(raw_ws, shared_hub, unique):
    topic, stream_id = unique("t"), unique("s")
    conn = await raw_ws.ready(shared_hub)
    names = f'"{topic}","{stream_id}"'
    for n, literal in enumerate(OUTSIDE_INT64_LITERALS):
        calls = [
            (f'{{"type":1,"invocationId":"e{n}","target":"SendEventData","arguments":[{names},{event_literal(literal)}]}}',
             HUB_ERROR.format("SendEventData", f"events[0].timestamp: {TS_REFUSED}")),
            (f'{{"type":1,"invocationId":"p{n}","target":"SendParameterData","arguments":[{names},{{"timestamps":[{literal}]}}]}}',
             HUB_ERROR.format("SendParameterData", f"parameterData.timestamps[0]: {TS_REFUSED}")),
            (f'{{"type":4,"invocationId":"r{n}","target":"ReadEventData","arguments":[{names},{literal},false]}}',
             STREAM_ERROR.format(f"fromTimestamp: {TS_REFUSED}")),
        ]  # fmt: skip
        for record, error in calls:
            invocation_id = json.loads(record)["invocationId"]
            assert await json_completion(conn, record, invocation_id) == {"type": 3, "invocationId": invocation_id, "error": error}
    with shared_hub.http() as client:
        assert client.get(f"/topics/{topic}/streams/{stream_id}/events/data").status_code == 404  # nothing stored


async def test_signalr_messagepack_refuses_timestamps_outside_int64(raw_ws, shared_hub, unique):
    topic, stream_id = unique("t"), unique("s")
    conn = await RawMessagePack.open(raw_ws, shared_hub)
    for n, value in enumerate([2**63, 2**64 - 1, 9.3e18, -9.3e18, 2.0**63]):
        calls = [
            ([1, {}, f"e{n}", "SendEventData", [topic, stream_id, [{"id": "a", "timestamp": value}]]],
             HUB_ERROR.format("SendEventData", f"events[0].timestamp: {TS_REFUSED}")),
            ([1, {}, f"p{n}", "SendParameterData", [topic, stream_id, {"timestamps": [1, value]}]],
             HUB_ERROR.format("SendParameterData", f"parameterData.timestamps[1]: {TS_REFUSED}")),
            ([4, {}, f"r{n}", "ReadEventData", [topic, stream_id, value, False]],
             STREAM_ERROR.format(f"fromTimestamp: {TS_REFUSED}")),
        ]  # fmt: skip
        for message, error in calls:
            await conn.send(message)
            assert await conn.completion(message[2]) == [3, {}, message[2], 1, error], value
    # -(2.0**63) is an int64 (JavaScript's -(2**63)): kept, as the integer
    await conn.send([1, {}, "edge", "SendEventData", [topic, stream_id, [{"id": "a", "timestamp": -(2.0**63)}]]])
    assert await conn.completion("edge") == [3, {}, "edge", 3, None]
    assert [e["timestamp"] for e in await asyncio.to_thread(shared_hub.get_events, topic, stream_id)] == [INT64_MIN]


@pytest.mark.parametrize("protocol", ["json", "messagepack"])
async def test_signalr_refuses_the_names_dot_and_dot_dot(raw_ws, shared_hub, unique, protocol):
    topic, stream_id = unique("t"), unique("s")
    events = make_events(1, "dot")
    calls: list[tuple[str, list[Any], str]] = []
    for name in RESERVED:
        for what, t, s in (("topic", name, stream_id), ("streamId", topic, name)):
            for target, args in (
                ("SendEventData", [t, s, events]),
                ("SendParameterData", [t, s, {"timestamps": [1]}]),
                ("UpdateStream", [t, s, {}]),
                ("CloseStream", [t, s]),
            ):
                calls.append((target, args, HUB_ERROR.format(target, f"{what}: must not be '.' or '..'")))
        calls.append(("CreateStream", [name, {}], HUB_ERROR.format("CreateStream", "topic: must not be '.' or '..'")))
    if protocol == "json":
        conn = await raw_ws.ready(shared_hub)
        for n, (target, args, error) in enumerate(calls):
            await conn.send({"type": 1, "invocationId": str(n), "target": target, "arguments": args})
            assert await conn.recv() == {"type": 3, "invocationId": str(n), "error": error}, (target, args)
        await conn.send({"type": 4, "invocationId": "r", "target": "ReadEventData", "arguments": [".", stream_id, None, False]})
        assert await conn.recv() == {"type": 3, "invocationId": "r", "error": STREAM_ERROR.format("topic: must not be '.' or '..'")}
    else:
        mp = await RawMessagePack.open(raw_ws, shared_hub)
        for n, (target, args, error) in enumerate(calls):
            await mp.send([1, {}, str(n), target, args])
            assert await mp.completion(str(n)) == [3, {}, str(n), 1, error], (target, args)
    with shared_hub.http() as client:
        assert not {".", ".."} & {t["topic"] for t in client.get("/topics").json()}


async def test_reader_hub_refuses_the_names_dot_and_dot_dot(raw_ws, shared_hub):
    reader = await RawConnection.open(shared_hub.url.replace("http", "ws", 1) + "/reader", shared_hub.token)
    raw_ws.opened.append(reader)
    assert await reader.handshake() == {}
    for n, (target, args, what) in enumerate(
        [
            ("SubscribeToEvent", [".", "s", "*"], "topic"),
            ("SubscribeToParameter", ["t", "..", "*"], "streamId"),
            ("SubscribeToActiveStreams", [".."], "topic"),
        ]
    ):
        reply = await reader.invoke(target, *args, invocation_id=str(n))
        assert reply["error"] == HUB_ERROR.format(target, f"{what}: must not be '.' or '..'"), reply


def test_the_javascript_client_cannot_write_outside_int64_or_to_dot_names(shared_hub, node, unique):
    """@microsoft/signalr writes -(2**63) - 1 as -9223372036854776000 in JSON: outside int64, refused
    (orjson used to read it as -2^63 and store that)."""
    topic, stream_id = unique("t"), unique("s")
    for protocol in ("json", "messagepack"):
        out = node(
            "errors-then-ok.mjs",
            {
                "url": shared_hub.hub_url, "token": shared_hub.token, "protocol": protocol,
                "topic": topic, "streamId": stream_id, "goodEvent": make_events(1, protocol)[0],
                "calls": [
                    # over JSON the client writes -9223372036854776000; over MessagePack the float64
                    # -2^63 (an int64, so 9.3e18 stands in for "outside" there)
                    {"method": "SendEventData", "args": [topic, stream_id, [
                        {"id": "x", "timestamp": INT64_MIN - 1 if protocol == "json" else 9.3e18}]]},
                    {"method": "SendEventData", "args": [".", stream_id, make_events(1)]},
                    {"method": "SendEventData", "args": [topic, "..", make_events(1)]},
                ],
            },
        )  # fmt: skip
        errors = [call.get("error") for call in out["calls"]]
        assert errors == [
            HUB_ERROR.format("SendEventData", f"events[0].timestamp: {TS_REFUSED}"),
            HUB_ERROR.format("SendEventData", "topic: must not be '.' or '..'"),
            HUB_ERROR.format("SendEventData", "streamId: must not be '.' or '..'"),
        ], (protocol, out)
        assert out["afterA"]["ok"] and out["afterB"]["ok"], out
    with httpx.Client(base_url=shared_hub.url, headers=shared_hub.auth_headers) as client:
        stored = client.get(f"/topics/{topic}/streams/{stream_id}/events/data").json()
    assert [e["id"] for e in stored] == ["json-0", "json-0", "messagepack-0", "messagepack-0"]  # A and B each: nothing refused stored
