"""The Writer hub and scopes, in-process (issue 14): the scope is checked before the rate limit (a
refused call spends no budget), a topic that is not a string gets its validation error, and the
streams stop at the next item once a reload narrows the token."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.ratelimit import RateLimiter
from hub.signalr.dispatcher import unauthorized
from hub.streams.service import StreamService
from hub.streams.store.memory import MemoryStore
from hub.writer.hub import WriterHub
from unit.signalr_fakes import call, completions, connect, frame, items_of
from unit.token_files import TokenFile

EVENT = {"id": "Alert", "timestamp": 1}


def read_event_data(iid: str, *, follow: bool) -> dict:
    return {"type": 4, "invocationId": iid, "target": "ReadEventData", "arguments": ["cars", "s", None, follow]}


@pytest.fixture
def tokens(tmp_path: Path) -> TokenFile:
    return TokenFile(tmp_path / "tokens", "tok name=car-17 write:cars read:cars\n")


@pytest.fixture
def service() -> StreamService:
    return StreamService(MemoryStore())


async def test_a_refused_call_spends_no_rate_limit_budget(tokens, service) -> None:
    limiter = RateLimiter(1, clock=lambda: 0.0)  # one request per (user, topic), never refilled
    conn, t = await connect(WriterHub(service, limiter), user=tokens.principal("tok"))
    for i in range(3):
        reply = await call(conn, t, f"b{i}", "SendEventData", "boats", "s", [EVENT])
        assert reply == {"type": 3, "invocationId": f"b{i}", "error": unauthorized("SendEventData")}
    assert not conn.closed.is_set()
    tokens.rewrite("tok name=car-17 write:cars write:boats\n")
    assert await call(conn, t, "ok", "SendEventData", "boats", "s", [EVENT]) == {"type": 3, "invocationId": "ok", "result": None}
    assert "Rate limit" in (await call(conn, t, "over", "SendEventData", "boats", "s", [EVENT]))["error"]


async def test_read_event_data_needs_read_and_write_methods_need_write(tmp_path, service) -> None:
    tokens = TokenFile(tmp_path / "tokens", "w name=w write:cars\nr name=r read:cars\n")
    writer, tw = await connect(WriterHub(service), user=tokens.principal("w"))
    reader, tr = await connect(WriterHub(service), user=tokens.principal("r"))
    assert (await call(writer, tw, "1", "SendEventData", "cars", "s", [EVENT])).get("error") is None
    assert (await call(reader, tr, "1", "SendEventData", "cars", "s", [EVENT]))["error"] == unauthorized("SendEventData")
    for conn, t, allowed in ((reader, tr, True), (writer, tw, False)):
        await conn.receive(frame(read_event_data("r", follow=False)), via=t)
        records = await t.wait_for(lambda r: completions(r, "r"))
        if allowed:
            assert [item["timestamp"] for item in items_of(records, "r")] == [1]
            assert completions(records, "r") == [{"type": 3, "invocationId": "r"}]
        else:
            assert completions(records, "r") == [{"type": 3, "invocationId": "r", "error": unauthorized("ReadEventData")}]


async def test_a_topic_that_is_not_a_string_gets_the_validation_error_not_unauthorized(tokens, service) -> None:
    conn, t = await connect(WriterHub(service), user=tokens.principal("tok"))
    reply = await call(conn, t, "1", "SendEventData", 42, "s", [EVENT])
    assert "topic" in reply["error"] and "unauthorized" not in reply["error"], reply


async def test_a_connection_without_a_principal_is_refused(service) -> None:
    conn, t = await connect(WriterHub(service), user=None)  # an endpoint without authentication: fail closed
    assert (await call(conn, t, "1", "CreateStream", "cars", {}))["error"] == unauthorized("CreateStream")


async def test_a_followed_read_stops_once_a_reload_takes_read_away(tokens, service) -> None:
    conn, t = await connect(WriterHub(service), user=tokens.principal("tok"))
    await conn.receive(frame(read_event_data("f", follow=True)), via=t)
    await service.send_events("cars", "s", [EVENT])
    await t.wait_for(lambda r: items_of(r, "f"))
    tokens.rewrite("tok name=car-17 write:cars\n")
    await service.send_events("cars", "s", [{**EVENT, "timestamp": 2}])
    records = await t.wait_for(lambda r: completions(r, "f"))
    assert len(items_of(records, "f")) == 1
    assert completions(records, "f") == [{"type": 3, "invocationId": "f", "error": unauthorized("ReadEventData")}]
    assert not conn.closed.is_set()


async def test_an_upload_stream_stops_at_the_next_item_once_a_reload_takes_write_away(
    tokens, service, async_wait_for
) -> None:
    conn, t = await connect(WriterHub(service), user=tokens.principal("tok"))
    upload = {"type": 1, "invocationId": "u", "target": "StreamEventData", "arguments": ["cars", "s"], "streamIds": ["x"]}
    await conn.receive(frame(upload), via=t)
    await conn.receive(frame({"type": 2, "invocationId": "x", "item": EVENT}), via=t)

    async def timestamps_stored() -> list[int]:
        return [e.timestamp for e in (await service.read_events("cars", "s")).items]

    await async_wait_for(timestamps_stored)
    tokens.rewrite("tok name=car-17 read:cars\n")
    await conn.receive(frame({"type": 2, "invocationId": "x", "item": {**EVENT, "timestamp": 2}}), via=t)
    records = await t.wait_for(lambda r: completions(r, "u"))
    assert completions(records, "u") == [{"type": 3, "invocationId": "u", "error": unauthorized("StreamEventData")}]
    assert await timestamps_stored() == [1]
