"""The Quix Streaming Reader surface over SignalR: live subscriptions, a thin adapter over the
stream service's live changes (see "Reader over SignalR" in the Quix reference and
protocol-notes/reader.md).

Client -> server (`*` is a wildcard for topic, stream and id):
    SubscribeToEvent / UnsubscribeFromEvent (topic, streamId, eventId)
    SubscribeToParameter / UnsubscribeFromParameter (topic, streamId, parameterId)
    SubscribeToActiveStreams (topic) -> the open streams' summaries; UnsubscribeFromActiveStreams (topic)
    UnsubscribeFromStream (topic, streamId): every event and parameter subscription of that stream
Server -> client:
    EventDataReceived({topicName, streamId, id, timestamp, value, tags}), one per event
    ParameterDataReceived({topicId, topicName, streamId, timestamps, numericValues, stringValues,
        binaryValues, tagValues}) with only the subscribed parameters
    ActiveStreamsChanged(stream summary, "AddUpdate" | "Remove"); Remove when a stream is closed

Each subscription is a SignalR group (subscriptions.py); group_fanout.py delivers the store's
changes to them. A subscription made when its Completion arrives gets every change made durable
after that.

Scopes (hub/auth/hub_calls.py): Subscribe* needs read on its topic (`*`: read on at least one
topic), else ASP.NET's unauthorized Completion; Unsubscribe* is never refused. Each delivery goes
only to the connections whose principal may read its topic at that moment (group_fanout.py), so a
`*` subscription sees only readable topics and a reload that narrows a token applies at once.
SubscribeToActiveStreams is a listing: never refused, it lists only readable topics' streams.
"""

from __future__ import annotations

from typing import Any

from ..auth.hub_calls import authorize, may
from ..auth.scopes import Action
from ..signalr.call import CallContext, HubError
from ..signalr.hub import Hub, hub_method
from ..streams.service import StreamService
from ..streams.store.base import StoreUnavailable
from ..streams.errors import ValidationError
from .group_fanout import GroupFanOut
from .subscriptions import DATA_KINDS, WILDCARD, Interest, Key, SubscriptionKind, item_id, pattern

#: Subscriptions one connection may hold (each costs a group membership and an index entry).
MAX_SUBSCRIPTIONS = 10_000


class ReaderHub(Hub):
    user_errors = (ValidationError, StoreUnavailable)

    def __init__(self, service: StreamService):
        self.service = service
        self.interest = Interest()
        self._fanout: GroupFanOut | None = None

    @property
    def fanout(self) -> GroupFanOut:
        if self._fanout is None:  # `clients` is set when an endpoint binds the hub
            self._fanout = GroupFanOut(self.service, self.clients, self.interest)
        return self._fanout

    # --- subscribing ------------------------------------------------------------------------------

    async def _subscribe(self, call: CallContext, key: Key) -> None:
        groups = self.clients.groups
        if key.group in groups.of(call.connection_id):
            return
        if len(groups.of(call.connection_id)) >= MAX_SUBSCRIPTIONS:
            raise HubError(f"This connection already holds {MAX_SUBSCRIPTIONS} subscriptions; unsubscribe from some first.")
        await self.fanout.ensure_open()
        # No await from here on: the connection cannot go between the check and the join.
        if call.connection_id in self.clients and groups.add(key.group, call.connection_id):
            self.interest.add(key)

    def _unsubscribe(self, call: CallContext, key: Key) -> None:
        if self.clients.groups.discard(key.group, call.connection_id):
            self.interest.remove(key)

    def on_disconnected(self, call: CallContext) -> None:
        for group in self.clients.groups.of(call.connection_id):
            self.interest.remove(Key.parse(group))
        # the SignalR layer takes the connection out of its groups next

    @hub_method("SubscribeToEvent")
    async def subscribe_to_event(self, call: CallContext, topic: Any, stream_id: Any, event_id: Any) -> None:
        authorize(call, Action.READ, topic, wildcard=True)
        await self._subscribe(call, _data_key(SubscriptionKind.EVENT, topic, stream_id, event_id, "eventId"))

    @hub_method("UnsubscribeFromEvent")
    async def unsubscribe_from_event(self, call: CallContext, topic: Any, stream_id: Any, event_id: Any) -> None:
        self._unsubscribe(call, _data_key(SubscriptionKind.EVENT, topic, stream_id, event_id, "eventId"))

    @hub_method("SubscribeToParameter")
    async def subscribe_to_parameter(self, call: CallContext, topic: Any, stream_id: Any, parameter_id: Any) -> None:
        authorize(call, Action.READ, topic, wildcard=True)
        await self._subscribe(call, _data_key(SubscriptionKind.PARAMETER, topic, stream_id, parameter_id, "parameterId"))

    @hub_method("UnsubscribeFromParameter")
    async def unsubscribe_from_parameter(self, call: CallContext, topic: Any, stream_id: Any, parameter_id: Any) -> None:
        self._unsubscribe(call, _data_key(SubscriptionKind.PARAMETER, topic, stream_id, parameter_id, "parameterId"))

    @hub_method("SubscribeToActiveStreams")
    async def subscribe_to_active_streams(self, call: CallContext, topic: Any) -> list[dict[str, Any]]:
        """Joins first, then lists: a stream changed in between is in the list and/or announced
        (AddUpdate is idempotent), never missed. A listing: never refused, it holds only the topics
        the caller may read (announcements are filtered the same way, at each one)."""
        await self._subscribe(call, Key(SubscriptionKind.ACTIVE_STREAMS, pattern(topic, "topic")))
        topics = [t.topic for t in await self.service.list_topics()] if topic == WILDCARD else [topic]
        streams = []
        for name in topics:
            if not may(call.principal, Action.READ, name):
                continue
            streams += [info.to_json() for info in await self.service.list_streams(name) if info.status == "open"]
        return streams

    @hub_method("UnsubscribeFromActiveStreams")
    async def unsubscribe_from_active_streams(self, call: CallContext, topic: Any) -> None:
        self._unsubscribe(call, Key(SubscriptionKind.ACTIVE_STREAMS, pattern(topic, "topic")))

    @hub_method("UnsubscribeFromStream")
    async def unsubscribe_from_stream(self, call: CallContext, topic: Any, stream_id: Any) -> None:
        """Every event and parameter subscription of the caller on this stream; `*` here matches
        any topic / stream the subscriptions name (so ("*", "*") ends every data subscription)."""
        topic, stream_id = pattern(topic, "topic"), pattern(stream_id, "streamId")
        for group in list(self.clients.groups.of(call.connection_id)):
            key = Key.parse(group)
            if key.kind in DATA_KINDS and topic in (WILDCARD, key.topic) and stream_id in (WILDCARD, key.stream_id):
                self._unsubscribe(call, key)


def _data_key(kind: SubscriptionKind, topic: Any, stream_id: Any, item: Any, what: str) -> Key:
    return Key(kind, pattern(topic, "topic"), pattern(stream_id, "streamId"), item_id(item, what))
