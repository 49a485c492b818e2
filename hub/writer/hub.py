"""The Quix Writer surface over SignalR: a thin adapter from hub methods to the ingestion service.

Each write method validates and orders its write when it runs (in arrival order) and answers with a
Deferred that resolves once the store has accepted the batch, so Completions are pipelined and
never sent before the data is stored.
"""

from __future__ import annotations

from typing import Any

from ..signalr.hub import CallContext, Deferred, Hub, hub_method
from ..streams.service import IngestionService
from ..streams.validation import ValidationError


async def _void(awaitable: Any) -> None:
    await awaitable


class WriterHub(Hub):
    user_errors = (ValidationError,)

    def __init__(self, service: IngestionService):
        self.service = service

    @hub_method("CreateStream")
    async def create_stream(self, call: CallContext, topic: Any, properties: Any) -> Any:
        stream_id = await self.service.create_stream(topic, properties)
        return {"streamId": stream_id}

    @hub_method("UpdateStream")
    async def update_stream(self, call: CallContext, topic: Any, stream_id: Any, properties: Any) -> Deferred:
        return Deferred(_void(self.service.update_stream(topic, stream_id, properties)))

    @hub_method("CloseStream")
    async def close_stream(self, call: CallContext, topic: Any, stream_id: Any) -> Deferred:
        return Deferred(_void(self.service.close_stream(topic, stream_id)))

    @hub_method("SendEventData")
    async def send_event_data(self, call: CallContext, topic: Any, stream_id: Any, events: Any) -> Deferred:
        return Deferred(_void(self.service.send_events(topic, stream_id, events)))

    @hub_method("SendParameterData")
    async def send_parameter_data(self, call: CallContext, topic: Any, stream_id: Any, data: Any) -> Deferred:
        return Deferred(_void(self.service.send_parameter_data(topic, stream_id, data)))
