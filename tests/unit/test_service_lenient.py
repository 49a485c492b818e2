"""The ingestion service's lenient writes (NDJSON rows: bad ones quarantined) and multi-stream
batches (Event Hubs: all or nothing), over the memory store."""

from __future__ import annotations

import pytest

from hub.streams.models import Event, ReadWindow
from hub.streams.lenient import LenientRows, RawRow
from hub.streams.service import StreamService
from hub.streams.store import MemoryStore
from hub.streams.errors import ValidationError


@pytest.fixture
def service() -> StreamService:
    return StreamService(MemoryStore())


async def test_good_rows_are_stored_and_bad_ones_quarantined_with_line_and_reason(service):
    rows = [
        RawRow(1, '{"id":"a","timestamp":1}', {"id": "a", "timestamp": 1}),
        RawRow(2, "{oops", error="not valid JSON: unexpected character"),
        RawRow(4, '{"Id":"b","Timestamp":2,"Tags":{"k":"v"}}', {"Id": "b", "Timestamp": 2, "Tags": {"k": "v"}}),
        RawRow(5, '{"id":"c"}', {"id": "c"}),
        RawRow(6, '"\\ud800"', {"id": "\ud800", "timestamp": 3}),  # a lone surrogate: not storable text
    ]
    batch = service.send_event_rows("t", "s", LenientRows.of(rows))
    assert (batch.successful_rows, batch.quarantined_rows) == (2, 3)
    await batch.written
    assert (await service.read_events("t", "s")).items == [Event("a", 1), Event("b", 2, None, {"k": "v"})]
    quarantined = (await service.read_quarantine("t")).items
    assert [(q.line, q.stream_id) for q in quarantined] == [(2, "s"), (5, "s"), (6, "s")]
    assert quarantined[0].reason == "line 2: not valid JSON: unexpected character"
    assert quarantined[1].reason == "line 5.timestamp: expected an integer of nanoseconds"
    assert quarantined[2].reason == "line 6.id: contains a lone surrogate, not valid Unicode text"
    assert quarantined[1].raw == '{"id":"c"}'
    assert quarantined[2].raw.encode("utf-8")  # kept as text every store can hold


async def test_only_bad_rows_create_no_stream(service):
    batch = service.send_event_rows("t", "s", LenientRows.of([RawRow(1, "x", error="not valid JSON")]))
    await batch.written
    assert await service.list_streams("t") == []
    assert len((await service.read_quarantine("t")).items) == 1


async def test_a_bad_stream_name_refuses_the_whole_batch(service):
    with pytest.raises(ValidationError, match="streamId"):
        service.send_event_rows("t", "a/b", LenientRows.of([RawRow(1, "{}", {"id": "a", "timestamp": 1})]))


async def test_multi_stream_batches_are_validated_before_anything_is_written(service):
    with pytest.raises(ValidationError, match=r"events\[0\]\.timestamp"):
        service.send_event_batches("t", [("s1", [{"id": "a", "timestamp": 1}]), ("s2", [{"id": "b"}])])
    assert await service.list_streams("t") == []
    total = await service.send_event_batches("t", [("s1", [{"id": "a", "timestamp": 1}]), ("s2", [{"id": "b", "timestamp": 2}] * 2)])
    assert total == 3
    assert [s.stream_id for s in await service.list_streams("t")] == ["s1", "s2"]


async def test_quarantine_reads_check_their_arguments(service):
    with pytest.raises(ValidationError, match="after"):
        await service.read_quarantine("t", ReadWindow(after="not a cursor"))
    with pytest.raises(ValidationError, match="limit"):
        await service.read_quarantine("t", ReadWindow(limit=0))
    with pytest.raises(ValidationError, match="topic"):
        await service.read_quarantine("")
