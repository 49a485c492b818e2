"""Server-to-client invocations in-process (a real HubConnection over fake transports, no server):
ordering with Completions, groups, the bounded send queue, stateful reconnect; and the Reader hub's
fan-out over the memory store (overlapping subscriptions, parameter filtering, the store's `where`)."""

from __future__ import annotations

import asyncio
import json

from hub.auth.principal import ANONYMOUS
from hub.reader.group_fanout import parameter_payload
from hub.reader.hub import ReaderHub
from hub.signalr.call import CallContext
from hub.signalr.connection import HubConnection
from hub.signalr.dispatcher import HubDispatcher
from hub.signalr.hub import Hub, hub_method
from hub.signalr.options import SignalROptions
from hub.streams.models import ParameterData
from hub.streams.service import StreamService
from hub.streams.store.memory import MemoryStore
from unit.signalr_fakes import FakeTransport, call, completions, connect, frame, invoke, received

RS = "\x1e"


class EchoHub(Hub):
    """Join(group) joins; Tell(group, text) calls Said(text) on the group, then returns "told"."""

    def __init__(self) -> None:
        self.gone: list[str] = []

    @hub_method("Join")
    async def join(self, call: CallContext, group: str) -> None:
        self.clients.groups.add(group, call.connection_id)

    @hub_method("Tell")
    async def tell(self, call: CallContext, group: str, text: str) -> str:
        self.clients.send_group(group, "Said", text)
        return "told"

    def on_disconnected(self, call: CallContext) -> None:
        self.gone.append(call.connection_id)


class BlockingTransport(FakeTransport):
    """Sends wait until `release` is set: a client that stopped reading."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def send(self, data: str | bytes) -> None:
        await self.release.wait()
        await super().send(data)


async def test_a_client_method_call_keeps_its_place_before_the_completion() -> None:
    hub = EchoHub()
    conn, transport = await connect(hub)
    await conn.receive(frame(invoke("1", "Join", "g"), invoke("2", "Tell", "g", "hello")), via=transport)
    records = await transport.wait_for(lambda r: completions(r, "2"))
    assert records == [
        {"type": 3, "invocationId": "1", "result": None},
        {"type": 1, "target": "Said", "arguments": ["hello"]},  # no invocationId: nothing to answer
        {"type": 3, "invocationId": "2", "result": "told"},
    ]


async def test_groups_fan_out_once_per_member_and_a_connection_leaves_them_when_it_goes() -> None:
    hub = EchoHub()
    dispatcher = HubDispatcher(hub)
    transports = []
    for name in ("a", "b", "c"):
        t = FakeTransport()
        conn = HubConnection(name, t, dispatcher, SignalROptions())
        await conn.receive('{"protocol":"json","version":1}' + RS, via=t)
        transports.append((conn, t))
    for conn, t in transports[:2]:
        await conn.receive(frame(invoke("j", "Join", "g")), via=t)
    assert hub.clients.send_group("g", "Said", "x") == 2
    await transports[0][0].close()
    assert hub.gone == ["a"] and hub.clients.groups.members("g") == {"b"} and "a" not in hub.clients
    assert hub.clients.send_group("g", "Said", "y") == 1
    await asyncio.sleep(0)
    said = [[r["arguments"] for r in t.records() if r.get("target") == "Said"] for _, t in transports]
    assert said == [[["x"]], [["x"], ["y"]], []]


async def test_a_client_that_falls_behind_is_closed_with_a_close_message_and_leaves_its_groups() -> None:
    hub = EchoHub()
    transport = BlockingTransport()
    transport.release.set()
    conn = HubConnection("slow", transport, HubDispatcher(hub), SignalROptions(max_send_queue=10))
    await conn.receive('{"protocol":"json","version":1}' + RS + frame(invoke("1", "Join", "g")), via=transport)
    await transport.wait_for(lambda r: completions(r, "1"))
    transport.release.clear()  # the client stops reading
    sent = [hub.clients.send_group("g", "Said", i) for i in range(30)]
    await asyncio.sleep(0)  # the first message is now stuck in the transport
    sent += [hub.clients.send_group("g", "Said", i) for i in range(30, 60)]
    assert sum(sent) < 25 and sent[-1] == 0  # at most 2 x 10 waited: one batch stuck, ten queued
    await asyncio.sleep(0)
    assert conn.closed.is_set() and hub.gone == ["slow"] and not hub.clients.groups.members("g")
    transport.release.set()  # it reads again: the frame that was stuck, then the Close
    records = await transport.wait_for(lambda r: r and r[-1].get("type") == 7)
    assert "fell behind: more than 10 messages" in records[-1]["error"]
    await transport.wait_for(lambda _: transport.closed)


async def test_stateful_connections_number_posted_messages_and_replay_them_after_a_reconnect() -> None:
    hub = EchoHub()
    conn, old = await connect(hub, version=2, stateful=True)
    await conn.receive(frame(invoke("1", "Join", "g")), via=old)
    await old.wait_for(lambda r: completions(r, "1"))
    assert conn.transport_lost(old)
    # While the client is away: queued into the replay buffer, numbered after the Completion (1).
    assert hub.clients.send_group("g", "Said", "while away") == 1
    await asyncio.sleep(0.01)
    new = FakeTransport()
    await conn.resume(new)
    assert new.records() == [
        {"type": 9, "sequenceId": 1},
        {"type": 3, "invocationId": "1", "result": None},
        {"type": 1, "target": "Said", "arguments": ["while away"]},
    ]


async def test_a_stateful_client_that_never_acks_falls_behind_too() -> None:
    hub = EchoHub()
    conn, transport = await connect(hub, version=2, stateful=True,
                                    options=SignalROptions(max_send_queue=5, stateful_buffer_size=200))
    await conn.receive(frame(invoke("1", "Join", "g")), via=transport)
    await transport.wait_for(lambda r: completions(r, "1"))
    for i in range(40):  # ~40 bytes each: the pipe waits for an Ack after ~5, then 5 more wait here
        hub.clients.send_group("g", "Said", f"message {i:03d}")
        await asyncio.sleep(0)
    assert conn.closed.is_set() and hub.gone == ["c1"]
    records = await transport.wait_for(lambda r: r and r[-1].get("type") == 7)
    assert "fell behind" in records[-1]["error"]


# --- the Reader hub over the memory store ---------------------------------------------------------


async def reader_connection(hub: ReaderHub, dispatcher: HubDispatcher, name: str):
    """A Reader connection past its handshake, whose user may read everything."""
    return await connect(hub, dispatcher=dispatcher, connection_id=name, user=ANONYMOUS)


async def test_overlapping_subscriptions_deliver_each_event_once_and_the_store_publishes_only_what_is_wanted() -> None:
    store = MemoryStore()
    service = StreamService(store)
    hub = ReaderHub(service)
    dispatcher = HubDispatcher(hub)
    conn, t = await reader_connection(hub, dispatcher, "r")
    for i, args in enumerate([("cars", "c1", "Alert"), ("cars", "*", "*"), ("*", "c1", "Alert"), ("*", "*", "Alert")]):
        assert (await call(conn, t, f"s{i}", "SubscribeToEvent", *args)).get("error") is None
    assert store.changes.wants("cars", "c1") and store.changes.wants("bikes", "b1")  # ("*", "*", "Alert")
    await service.send_events("cars", "c1", [{"id": "Alert", "timestamp": 1}, {"id": "Other", "timestamp": 2}])
    await service.send_events("bikes", "b1", [{"id": "Other", "timestamp": 3}, {"id": "Alert", "timestamp": 4}])
    await t.wait_for(lambda r: len([x for x in r if x.get("target") == "EventDataReceived"]) >= 3)
    await asyncio.sleep(0.01)
    got = [(a[0]["topicName"], a[0]["id"], a[0]["timestamp"]) for a in received(t, "EventDataReceived")]
    assert got == [("cars", "Alert", 1), ("cars", "Other", 2), ("bikes", "Alert", 4)]

    # UnsubscribeFromStream("*", "c1") ends the two subscriptions that name stream c1, not the others
    assert (await call(conn, t, "u1", "UnsubscribeFromStream", "*", "c1")).get("error") is None
    assert sorted(hub.clients.groups.of("r")) == ["e\0*\0*\0Alert", "e\0cars\0*\0*"]
    for iid, args in (("u2", ("cars", "*", "*")), ("u3", ("*", "*", "Alert"))):
        await call(conn, t, iid, "UnsubscribeFromEvent", *args)
    assert not store.changes.wants("cars", "c1")  # nobody wants anything: the store publishes nothing
    await conn.close()
    assert not hub.interest


def test_parameter_payload_keeps_only_the_chosen_parameters_and_the_rows_that_have_them() -> None:
    data = ParameterData(
        [1, 2, 3],
        numeric_values={"speed": [1.0, None, None], "rpm": [1.0, 2.0, 3.0]},
        string_values={"gear": [None, None, "3"]},
        binary_values={"blob": ["AA==", None, None]},
        tag_values={"lap": ["a", "b", "c"]},
    )
    payload = parameter_payload("t", "s", data, frozenset({"speed", "gear"}))
    assert payload == {
        "topicId": "t", "topicName": "t", "streamId": "s", "timestamps": [1, 3],
        "numericValues": {"speed": [1.0, None]}, "stringValues": {"gear": [None, "3"]}, "binaryValues": {},
        "tagValues": {"lap": ["a", "c"]},
    }
    assert parameter_payload("t", "s", data, frozenset({"absent"})) is None
    everything = parameter_payload("t", "s", data, None)
    assert everything is not None and everything["numericValues"] == data.numeric_values
    json.dumps(everything)


def test_the_fanout_benchmark_still_imports() -> None:
    """bench/fanout.py is run by hand (bench/RESULTS.md): this keeps a refactor from breaking it unnoticed."""
    import bench.fanout as fanout

    assert callable(fanout.cli) and fanout.TOPIC


async def test_one_batch_bigger_than_the_queue_is_taken_by_a_client_that_is_keeping_up() -> None:
    """One write of more events than --max-send-queue must not cut off subscribers that are idle."""
    hub = EchoHub()
    conn, transport = await connect(hub, options=SignalROptions(max_send_queue=10))
    await conn.receive(frame(invoke("1", "Join", "g")), via=transport)
    await transport.wait_for(lambda r: completions(r, "1"))
    assert hub.clients.send_each(hub.clients.groups.members("g"), "Said", [(i,) for i in range(25)]) == 1
    records = await transport.wait_for(lambda r: len([x for x in r if x.get("target") == "Said"]) == 25)
    assert [r["arguments"][0] for r in records if r.get("target") == "Said"] == list(range(25))
    assert not conn.closed.is_set()
    # while that is still queued, the next batch over the limit means the client is behind
    transport.frames.clear()
    hub.clients.send_each(hub.clients.groups.members("g"), "Said", [(i,) for i in range(25)])
    assert hub.clients.send_each(hub.clients.groups.members("g"), "Said", [(0,)]) == 0
    await asyncio.sleep(0)
    assert conn.closed.is_set()
