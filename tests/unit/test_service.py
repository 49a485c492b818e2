"""StreamService over a real (memory) store: validation at the edge, thin pass-through after."""

from __future__ import annotations

import inspect
import uuid
from typing import Any, Callable

import pytest

from hub.streams.models import Event, ParameterData, ReadWindow, StreamProperties
from hub.streams.service import StreamService
from hub.streams.store import MemoryStore
from hub.streams.errors import ValidationError

T, S = "telemetry", "car-1"


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def service(store: MemoryStore) -> StreamService:
    return StreamService(store)


def test_writes_are_plain_functions_and_reads_are_coroutines() -> None:
    for name in ("send_events", "send_parameter_data", "create_stream", "update_stream", "close_stream",
                 "set_event_definitions", "set_parameter_definitions"):  # fmt: skip
        assert not inspect.iscoroutinefunction(getattr(StreamService, name)), name
    for name in ("list_topics", "list_streams", "get_stream", "read_events", "read_parameter_data"):
        assert inspect.iscoroutinefunction(getattr(StreamService, name)), name


async def test_send_events(service: StreamService) -> None:
    assert await service.send_events(T, S, [{"Id": "a", "Timestamp": 1, "Value": "v"}]) == 1
    page = await service.read_events(T, S)
    assert page.items == [Event("a", 1, "v")]


async def test_a_bad_batch_stores_nothing(service: StreamService, store: MemoryStore) -> None:
    raw = [{"id": "ok", "timestamp": 1}, {"id": "ok", "timestamp": 2}, {"id": "bad", "timestamp": 1.5}]
    with pytest.raises(ValidationError, match=r"^events\[2\]\.timestamp: expected an integer of nanoseconds$"):
        service.send_events(T, S, raw)  # raises at call time, before anything is awaited
    assert await store.get_stream(T, S) is None
    with pytest.raises(ValidationError, match="has 1 values but timestamps has 2"):
        service.send_parameter_data(T, S, {"timestamps": [1, 2], "numericValues": {"x": [1]}})
    with pytest.raises(ValidationError):
        service.update_stream(T, S, {"name": 5})
    with pytest.raises(ValidationError):
        service.set_event_definitions(T, S, [{"id": "a", "level": "Loud"}])
    assert await store.list_topics() == []


async def test_pipelined_calls_keep_call_order(service: StreamService) -> None:
    first = service.send_events(T, S, [{"id": "first", "timestamp": 9}])
    second = service.send_events(T, S, [{"id": "second", "timestamp": 1}])
    await second
    await first
    assert [e.id for e in (await service.read_events(T, S)).items] == ["first", "second"]


async def test_send_parameter_data_applies_epoch(service: StreamService) -> None:
    raw = {"epoch": 100, "timestamps": [1, 2], "NumericValues": {"speed": [1, None]}}
    assert await service.send_parameter_data(T, S, raw) == 2
    [data] = (await service.read_parameter_data(T, S)).items
    assert data == ParameterData([101, 102], {"speed": [1.0, None]})


async def test_create_stream_makes_a_new_uuid(service: StreamService) -> None:
    stream_id = await service.create_stream(T, {"name": "lap 1"})
    assert uuid.UUID(stream_id).version == 4
    assert await service.create_stream(T, None) != stream_id
    info = await service.get_stream(T, stream_id)
    assert info is not None and info.properties == StreamProperties(name="lap 1") and info.status == "open"


async def test_update_close_and_definitions(service: StreamService) -> None:
    info = await service.update_stream(T, S, {"Name": "lap", "Metadata": {"k": "v"}})
    assert info.properties == StreamProperties(name="lap", metadata={"k": "v"})
    assert (await service.close_stream(T, S)).status == "closed"
    info = await service.set_event_definitions(T, S, [{"id": "crash"}])
    assert info.event_definitions[0]["level"] == "Information"
    info = await service.set_parameter_definitions(T, S, [{"Id": "speed", "Unit": "km/h"}])
    assert info.parameter_definitions[0]["unit"] == "km/h"
    assert info.status == "closed"  # definitions are not data: the stream stays closed
    info = await service.update_stream(T, S, {})
    assert info.status == "open" and info.properties == StreamProperties()


async def test_listings(service: StreamService) -> None:
    await service.send_events("b", S, [])
    await service.send_events("a", S, [])
    assert [t.topic for t in await service.list_topics()] == ["a", "b"]
    assert [s.stream_id for s in await service.list_streams("a")] == [S]


WRITES: dict[str, Callable[[StreamService, Any, Any], Any]] = {
    "send_events": lambda svc, topic, stream: svc.send_events(topic, stream, []),
    "send_parameter_data": lambda svc, topic, stream: svc.send_parameter_data(topic, stream, {"timestamps": []}),
    "update_stream": lambda svc, topic, stream: svc.update_stream(topic, stream, {}),
    "close_stream": lambda svc, topic, stream: svc.close_stream(topic, stream),
    "set_event_definitions": lambda svc, topic, stream: svc.set_event_definitions(topic, stream, []),
    "set_parameter_definitions": lambda svc, topic, stream: svc.set_parameter_definitions(topic, stream, []),
}


@pytest.mark.parametrize("write", list(WRITES))
@pytest.mark.parametrize(
    ("topic", "stream_id", "message"),
    [
        ("", S, "topic: expected a non-empty string"),
        ("a/b", S, "topic: must not contain '/'"),
        (T, "", "streamId: expected a non-empty string"),
        (T, "x" * 257, "streamId: is longer than 256 characters"),
        (T, "a\tb", "streamId: must not contain control characters"),
        (T, None, "streamId: expected a non-empty string"),
    ],
)
async def test_writes_validate_names(
    service: StreamService, store: MemoryStore, write: str, topic: Any, stream_id: Any, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        WRITES[write](service, topic, stream_id)
    assert str(caught.value) == message
    assert await store.list_topics() == []


async def test_create_stream_validates_topic(service: StreamService) -> None:
    with pytest.raises(ValidationError, match="^topic: must not contain '/'$"):
        service.create_stream("a/b", {})


async def test_reads_validate_names(service: StreamService) -> None:
    with pytest.raises(ValidationError, match="^topic: "):
        await service.list_streams("")
    with pytest.raises(ValidationError, match="^streamId: "):
        await service.get_stream(T, "a/b")
    with pytest.raises(ValidationError, match="^topic: "):
        await service.read_events("\n", S)
    with pytest.raises(ValidationError, match="^streamId: "):
        await service.read_parameter_data(T, "")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "limit: expected an integer from 1 to 100000"),
        ({"limit": 100_001}, "limit: expected an integer from 1 to 100000"),
        ({"limit": "5"}, "limit: expected an integer from 1 to 100000"),
        ({"from_ts": "5"}, "from: expected an integer of nanoseconds"),
        ({"to_ts": 2**63}, "to: expected an integer of nanoseconds"),
        ({"after": "garbage"}, "after: not a cursor from a previous page of this stream"),
        ({"after": 5}, "after: expected a cursor string"),
    ],
)
async def test_read_arguments(service: StreamService, kwargs: dict[str, Any], message: str) -> None:
    await service.send_events(T, S, [{"id": "a", "timestamp": 1}])
    for read in (service.read_events, service.read_parameter_data):
        with pytest.raises(ValidationError) as caught:
            await read(T, S, ReadWindow(**kwargs))
        assert str(caught.value) == message


async def test_paging_through_the_service(service: StreamService) -> None:
    await service.send_events(T, S, [{"id": f"e{i}", "timestamp": 100 - i} for i in range(25)])
    page = await service.read_events(T, S, ReadWindow(from_ts=80, limit=10))
    assert [e.timestamp for e in page.items] == list(range(100, 90, -1))
    rest = await service.read_events(T, S, ReadWindow(from_ts=80, limit=10, after=page.next_cursor))
    assert [e.timestamp for e in rest.items] == list(range(90, 80, -1))
    last = await service.read_events(T, S, ReadWindow(from_ts=80, limit=10, after=rest.next_cursor))
    assert [e.timestamp for e in last.items] == [80] and last.next_cursor is None
