"""The Quix Writer surface over SignalR: a thin adapter from hub methods to the stream service.

Each write method validates and orders its write when it runs (in arrival order) and answers with a
Deferred that resolves once the store has accepted the batch, so Completions are pipelined and
never sent before the data is stored.

Streams: `StreamEventData` / `StreamParameterData` take a client-to-server stream (each item stored
as it arrives; the result is the number of events / rows stored), and `ReadEventData` is a
server-to-client stream of stored, then (with follow) live events, one event per StreamItem.

Every method first checks the caller's scope on its topic (`write`, `read` for ReadEventData;
hub/auth/hub_calls.py): refused, its Completion says ASP.NET's `Failed to invoke '<method>' because
user is unauthorized` and the connection stays open. The streams check again at each item, so a
reload that narrows the token stops them at once. Then, with --rate-limit, the invocation spends one
request of the caller's budget on the topic, the budget the HTTP routes draw on too (hub/ratelimit.py,
keyed by the token's user name); a refused call spends none.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

from ..auth.hub_calls import authorize, may
from ..auth.scopes import Action
from ..ratelimit import RateLimiter
from ..signalr.call import CallContext, HubError, Unauthorized
from ..signalr.hub import Deferred, Hub, hub_method
from ..streams.event_follower import FellBehind
from ..streams.service import StreamService
from ..streams.store.base import StoreUnavailable
from ..streams.errors import ValidationError
from .binding import messagepack_names_and_events


class WriterHub(Hub):
    # StoreUnavailable: the write was not stored (e.g. Redis is down); the caller may retry it.
    user_errors = (ValidationError, FellBehind, StoreUnavailable)

    def __init__(self, service: StreamService, limiter: RateLimiter | None = None):
        self.service = service
        self.limiter = limiter  # --rate-limit: the budget per token and topic the HTTP routes share

    def _admit(self, call: CallContext, action: Action, topic: Any) -> None:
        """May the caller `action` on `topic` (else Unauthorized), then one request of its budget on
        `topic` (over it, a Completion error saying when to retry)."""
        authorize(call, action, topic)
        if self.limiter is None or type(topic) is not str:
            return
        decision = self.limiter.take(call.user or "", topic, "signalr")
        if not decision.allowed:
            raise HubError(
                f"Rate limit of {self.limiter.rate:g} requests/s for this token on topic {topic!r} exceeded; "
                f"retry in {decision.retry_after:.2f} s."
            )

    @hub_method("CreateStream")
    async def create_stream(self, call: CallContext, topic: Any, properties: Any) -> Any:
        self._admit(call, Action.WRITE, topic)
        stream_id = await self.service.create_stream(topic, properties)
        return {"streamId": stream_id}

    @hub_method("UpdateStream")
    async def update_stream(self, call: CallContext, topic: Any, stream_id: Any, properties: Any) -> Deferred:
        self._admit(call, Action.WRITE, topic)
        return Deferred(self.service.update_stream(topic, stream_id, properties), void=True)

    @hub_method("CloseStream")
    async def close_stream(self, call: CallContext, topic: Any, stream_id: Any) -> Deferred:
        self._admit(call, Action.WRITE, topic)
        return Deferred(self.service.close_stream(topic, stream_id), void=True)

    # MessagePack arguments are decoded straight into validated events (binding.py).
    @hub_method("SendEventData", binders={"messagepack": messagepack_names_and_events})
    async def send_event_data(self, call: CallContext, topic: Any, stream_id: Any, events: Any) -> Deferred:
        self._admit(call, Action.WRITE, topic)
        return Deferred(self.service.send_events(topic, stream_id, events), void=True)

    @hub_method("SendParameterData")
    async def send_parameter_data(self, call: CallContext, topic: Any, stream_id: Any, data: Any) -> Deferred:
        self._admit(call, Action.WRITE, topic)
        return Deferred(self.service.send_parameter_data(topic, stream_id, data), void=True)

    @hub_method("StreamEventData", streams=1)
    async def stream_event_data(self, call: CallContext, topic: Any, stream_id: Any, items: AsyncIterator[Any]) -> int:
        self._admit(call, Action.WRITE, topic)
        return await self.service.send_event_stream(topic, stream_id, _while_allowed(call, Action.WRITE, topic, items))

    @hub_method("StreamParameterData", streams=1)
    async def stream_parameter_data(
        self, call: CallContext, topic: Any, stream_id: Any, items: AsyncIterator[Any]
    ) -> int:
        self._admit(call, Action.WRITE, topic)
        return await self.service.send_parameter_stream(
            topic, stream_id, _while_allowed(call, Action.WRITE, topic, items)
        )

    @hub_method("ReadEventData")
    async def read_event_data(
        self, call: CallContext, topic: Any, stream_id: Any, from_timestamp: Any, follow: Any
    ) -> AsyncIterator[dict[str, Any]]:
        self._admit(call, Action.READ, topic)
        async for event in self.service.event_stream(topic, stream_id, from_timestamp, follow):
            if not may(call.principal, Action.READ, topic):  # narrowed since the call: stop following
                raise Unauthorized()
            yield event.to_json()


async def _while_allowed(call: CallContext, action: Action, topic: Any, items: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """A client stream's items, each only while the caller still may `action` on `topic`."""
    async for item in items:
        if not may(call.principal, action, topic):
            raise Unauthorized()
        yield item
