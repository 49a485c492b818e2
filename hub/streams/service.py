"""The ingestion service: what the SignalR Writer hub and the HTTP routes both call.

It validates raw decoded values into models (raising ValidationError before anything reaches the
store) and hands them to the store. Write methods are plain functions returning the store's
awaitable, so the order of calls is the order of writes even when a connection pipelines them.
"""

from __future__ import annotations

import uuid
from typing import Any, Awaitable, TypeVar

from .models import Event, Page, ParameterData, StreamInfo, TopicSummary
from .store.base import StreamStore
from .validation import INT64_MAX, INT64_MIN, ValidationError, check_name, parse_definitions
from .validation import parse_events, parse_parameter_data, parse_properties

T = TypeVar("T")
MAX_PAGE = 100_000  # the HTTP API clamps larger requests to this


class IngestionService:
    def __init__(self, store: StreamStore):
        self.store = store

    # --- writes: validated now, ordered now, durable when awaited ---------------------------------

    def send_events(self, topic: str, stream_id: str, raw_events: Any) -> Awaitable[int]:
        _check_stream(topic, stream_id)
        return self.store.append_events(topic, stream_id, parse_events(raw_events))

    def send_parameter_data(self, topic: str, stream_id: str, raw: Any) -> Awaitable[int]:
        _check_stream(topic, stream_id)
        return self.store.append_parameter_data(topic, stream_id, parse_parameter_data(raw))

    def create_stream(self, topic: str, raw_properties: Any) -> Awaitable[str]:
        """Resolves to the new stream's id (a uuid4)."""
        check_name(topic, "topic")
        properties = parse_properties(raw_properties)
        stream_id = str(uuid.uuid4())
        return _then(self.store.put_properties(topic, stream_id, properties), stream_id)

    def update_stream(self, topic: str, stream_id: str, raw_properties: Any) -> Awaitable[StreamInfo]:
        _check_stream(topic, stream_id)
        return self.store.put_properties(topic, stream_id, parse_properties(raw_properties))

    def close_stream(self, topic: str, stream_id: str) -> Awaitable[StreamInfo]:
        _check_stream(topic, stream_id)
        return self.store.close_stream(topic, stream_id)

    def set_event_definitions(self, topic: str, stream_id: str, raw: Any) -> Awaitable[StreamInfo]:
        _check_stream(topic, stream_id)
        return self.store.set_definitions(topic, stream_id, "events", parse_definitions(raw, "events"))

    def set_parameter_definitions(self, topic: str, stream_id: str, raw: Any) -> Awaitable[StreamInfo]:
        _check_stream(topic, stream_id)
        return self.store.set_definitions(topic, stream_id, "parameters", parse_definitions(raw, "parameters"))

    # --- reads ------------------------------------------------------------------------------------

    async def list_topics(self) -> list[TopicSummary]:
        return await self.store.list_topics()

    async def list_streams(self, topic: str) -> list[StreamInfo]:
        check_name(topic, "topic")
        return await self.store.list_streams(topic)

    async def get_stream(self, topic: str, stream_id: str) -> StreamInfo | None:
        _check_stream(topic, stream_id)
        return await self.store.get_stream(topic, stream_id)

    async def read_events(
        self,
        topic: str,
        stream_id: str,
        *,
        from_ts: int | None = None,
        to_ts: int | None = None,
        limit: int = 1000,
        after: str | None = None,
    ) -> Page[Event]:
        _check_read(topic, stream_id, from_ts, to_ts, limit, after)
        try:
            return await self.store.read_events(
                topic, stream_id, from_ts=from_ts, to_ts=to_ts, limit=limit, after=after
            )
        except ValidationError:
            raise
        except ValueError:  # the store did not make this cursor
            raise ValidationError("after", "not a cursor from a previous page of this stream") from None

    async def read_parameter_data(
        self,
        topic: str,
        stream_id: str,
        *,
        from_ts: int | None = None,
        to_ts: int | None = None,
        limit: int = 1000,
        after: str | None = None,
    ) -> Page[ParameterData]:
        _check_read(topic, stream_id, from_ts, to_ts, limit, after)
        try:
            return await self.store.read_parameter_data(
                topic, stream_id, from_ts=from_ts, to_ts=to_ts, limit=limit, after=after
            )
        except ValidationError:
            raise
        except ValueError:
            raise ValidationError("after", "not a cursor from a previous page of this stream") from None


def _check_stream(topic: Any, stream_id: Any) -> None:
    check_name(topic, "topic")
    check_name(stream_id, "streamId")


def _check_read(topic: Any, stream_id: Any, from_ts: Any, to_ts: Any, limit: Any, after: Any) -> None:
    _check_stream(topic, stream_id)
    for name, value in (("from", from_ts), ("to", to_ts)):
        if value is not None and (type(value) is not int or not INT64_MIN <= value <= INT64_MAX):
            raise ValidationError(name, "expected an integer of nanoseconds")
    if type(limit) is not int or not 1 <= limit <= MAX_PAGE:
        raise ValidationError("limit", f"expected an integer from 1 to {MAX_PAGE}")
    if after is not None and type(after) is not str:
        raise ValidationError("after", "expected a cursor string")


async def _then(written: Awaitable[Any], value: T) -> T:
    await written
    return value
