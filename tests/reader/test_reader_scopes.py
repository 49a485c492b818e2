"""The Reader hub and scopes, in-process (issue 14): Subscribe* needs read on its topic (`*`: on at
least one), Unsubscribe* is never refused, SubscribeToActiveStreams lists only readable topics, and
each delivery goes only to connections that may read its topic at that moment."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.auth.principal import ANONYMOUS
from hub.reader.hub import ReaderHub
from hub.signalr.dispatcher import HubDispatcher, unauthorized
from hub.streams.service import StreamService
from hub.streams.store.memory import MemoryStore
from unit.signalr_fakes import FakeTransport, call, connect, received
from unit.token_files import TokenFile

TOKENS = """\
cars-tok   name=cars-reader   read:cars
both-tok   name=both-reader   read:cars read:boats
writer-tok name=cars-writer   write:cars
"""


@pytest.fixture
def tokens(tmp_path: Path) -> TokenFile:
    return TokenFile(tmp_path / "tokens", TOKENS)


@pytest.fixture
def service() -> StreamService:
    return StreamService(MemoryStore())


@pytest.fixture
def reader(service: StreamService):
    hub = ReaderHub(service)
    dispatcher = HubDispatcher(hub)

    async def open_connection(name: str, user) -> tuple:
        return await connect(hub, dispatcher=dispatcher, connection_id=name, user=user)

    yield open_connection


def events_seen(transport: FakeTransport) -> list[tuple[str, int]]:
    return [(a[0]["topicName"], a[0]["timestamp"]) for a in received(transport, "EventDataReceived")]


def wait_for_event(transport: FakeTransport, topic: str, timestamp: int):
    return transport.wait_for(lambda r: (topic, timestamp) in events_seen(transport))


async def test_a_wildcard_subscription_of_a_cars_only_token_gets_cars_and_never_boats(tokens, service, reader) -> None:
    cars, t = await reader("cars", tokens.principal("cars-tok"))
    admin, ta = await reader("admin", ANONYMOUS)  # in the same `*` groups: one recipient set, filtered per reader
    for conn, transport in ((cars, t), (admin, ta)):
        reply = await call(conn, transport, "1", "SubscribeToEvent", "*", "*", "*")
        assert reply == {"type": 3, "invocationId": "1", "result": None}
        assert (await call(conn, transport, "2", "SubscribeToParameter", "*", "*", "*")).get("error") is None
        assert (await call(conn, transport, "3", "SubscribeToActiveStreams", "*")).get("error") is None

    boats_stream = await service.create_stream("boats", {"name": "b"})
    cars_stream = await service.create_stream("cars", {"name": "c"})
    await service.send_events("boats", "b1", [{"id": "Alert", "timestamp": 1}])
    await service.send_parameter_data("boats", "b1", {"timestamps": [1], "numericValues": {"speed": [1.0]}})
    await service.send_events("cars", "c1", [{"id": "Alert", "timestamp": 2}])
    await service.send_parameter_data("cars", "c1", {"timestamps": [2], "numericValues": {"speed": [2.0]}})
    # Changes are fanned out in write order: once the last cars change is here, a boats one would be too.
    await t.wait_for(lambda r: received(t, "ParameterDataReceived"))
    await ta.wait_for(lambda r: len(received(ta, "ParameterDataReceived")) == 2)

    assert events_seen(t) == [("cars", 2)]
    assert [a[0]["topicName"] for a in received(t, "ParameterDataReceived")] == ["cars"]
    assert {a[0]["streamId"] for a in received(t, "ActiveStreamsChanged")} == {cars_stream, "c1"}
    assert events_seen(ta) == [("boats", 1), ("cars", 2)]
    assert {a[0]["streamId"] for a in received(ta, "ActiveStreamsChanged")} == {boats_stream, cars_stream, "b1", "c1"}

    # The listing holds only readable topics' streams; an unreadable topic lists nothing (never refused).
    listed = await call(cars, t, "4", "SubscribeToActiveStreams", "*")
    assert {s["streamId"] for s in listed["result"]} == {cars_stream, "c1"}
    assert await call(cars, t, "5", "SubscribeToActiveStreams", "boats") == {"type": 3, "invocationId": "5", "result": []}


async def test_narrowing_a_token_in_its_file_stops_deliveries_at_once(tokens, service, reader) -> None:
    conn, t = await reader("r", tokens.principal("both-tok"))
    assert (await call(conn, t, "1", "SubscribeToEvent", "*", "*", "*")).get("error") is None
    assert (await call(conn, t, "2", "SubscribeToEvent", "boats", "b1", "*")).get("error") is None
    await service.send_events("boats", "b1", [{"id": "Alert", "timestamp": 1}])
    await wait_for_event(t, "boats", 1)

    tokens.rewrite(TOKENS.replace("read:cars read:boats", "read:cars"))
    await service.send_events("boats", "b1", [{"id": "Alert", "timestamp": 2}])
    await service.send_events("cars", "c1", [{"id": "Alert", "timestamp": 3}])
    await wait_for_event(t, "cars", 3)
    assert events_seen(t) == [("boats", 1), ("cars", 3)]  # the explicit boats subscription is held, and silent
    # and a new subscription to boats is refused now
    assert (await call(conn, t, "3", "SubscribeToEvent", "boats", "b2", "*"))["error"] == unauthorized("SubscribeToEvent")

    tokens.rewrite(TOKENS)  # widened again: the subscriptions it holds deliver again
    await service.send_events("boats", "b1", [{"id": "Alert", "timestamp": 4}])
    await wait_for_event(t, "boats", 4)


async def test_subscribing_needs_read_and_unsubscribing_is_never_refused(tokens, reader) -> None:
    conn, t = await reader("w", tokens.principal("writer-tok"))  # write:cars only: reads nothing
    refused = [
        ("SubscribeToEvent", "cars", "*", "*"),
        ("SubscribeToEvent", "*", "*", "*"),  # `*` needs read on at least one topic
        ("SubscribeToParameter", "cars", "s", "speed"),
        ("SubscribeToParameter", "*", "s", "*"),
    ]
    for i, (target, *args) in enumerate(refused):
        reply = await call(conn, t, f"r{i}", target, *args)
        assert reply == {"type": 3, "invocationId": f"r{i}", "error": unauthorized(target)}
    assert not conn.closed.is_set()
    answered = [
        ("UnsubscribeFromEvent", "cars", "*", "*"),
        ("UnsubscribeFromParameter", "boats", "s", "speed"),
        ("UnsubscribeFromActiveStreams", "boats"),
        ("UnsubscribeFromStream", "*", "*"),
        ("SubscribeToActiveStreams", "boats"),
    ]
    for i, (target, *args) in enumerate(answered):
        reply = await call(conn, t, f"a{i}", target, *args)
        assert reply.get("error") is None, (target, reply)
    assert (await call(conn, t, "x", "SubscribeToActiveStreams", "*"))["result"] == []


async def test_a_subscription_with_a_topic_that_is_not_a_string_gets_the_validation_error(tokens, reader) -> None:
    conn, t = await reader("c", tokens.principal("cars-tok"))
    reply = await call(conn, t, "1", "SubscribeToEvent", 7, "*", "*")
    assert "topic" in reply["error"] and "unauthorized" not in reply["error"], reply


async def test_a_connection_without_a_principal_may_subscribe_to_nothing(reader) -> None:
    conn, t = await reader("nobody", None)  # an endpoint without authentication: fail closed
    reply = await call(conn, t, "1", "SubscribeToEvent", "cars", "*", "*")
    assert reply["error"] == unauthorized("SubscribeToEvent")
    assert (await call(conn, t, "2", "SubscribeToActiveStreams", "cars"))["result"] == []
