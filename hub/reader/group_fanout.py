"""The Reader hub's group fan-out: one subscription to the store's changes per hub process, fanned
out to the subscription groups (subscriptions.py).

Delivery comes from the store (what every entry point writes, once durable, in write order; with
the redis store, what any hub process wrote), never from a writer: a write is never slowed by a
reader. `GroupFanOut` owns the one subscription (opened when the first client subscribes; its
`where` is the Interest index, so the store publishes only streams someone wants) and a pump task
that turns each Change into client calls, queued on each connection without waiting
(HubConnection.post: a client that falls behind is closed, the others go on).

Each delivery goes only to the connections whose principal may read its topic now (TopicReaders:
asked at every change, never remembered from the subscription, so a reload that narrows a token
applies to the next change; each recipient set of a change is filtered once, and an admin:* grant
answers without looking at the topic).

If the pump itself falls behind the writers (more than MAX_PENDING_CHANGES unread: the process is
out of CPU), changes are lost to every subscriber: they are all closed with a Close saying so, and
a later subscription opens a new one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..auth.hub_calls import may
from ..auth.scopes import Action
from ..signalr.close_reason import CloseReason
from ..signalr.groups import HubClients
from ..streams.models import ParameterData
from ..streams.service import StreamService
from ..streams.store.broadcast import Change, ChangeKind, ChangeSubscription, SubscriptionOverflow
from .subscriptions import WILDCARD, Interest, SubscriptionKind, active_streams_group, data_group_prefix

log = logging.getLogger("hub.reader")

#: Changes that may wait for the pump before the subscription is cut (a process out of CPU).
MAX_PENDING_CHANGES = 100_000
#: The pump lets other tasks run (the connections' writes among them) after this many events or
#: parameter rows in a row: a burst is written out as it is fanned out, not queued whole.
YIELD_EVERY = 500

FELL_BEHIND_CLOSE_ERROR = (
    "Connection closed with an error. The hub fell behind the writers and live data was lost: "
    "reconnect and subscribe again."
)

_ALL = None  # every parameter of a stream (a `*` subscription)


class GroupFanOut:
    def __init__(self, service: StreamService, clients: HubClients, interest: Interest):
        self.service = service
        self.clients = clients
        self.interest = interest
        self._changes: ChangeSubscription | None = None
        self._pump: asyncio.Task | None = None
        self._opening = asyncio.Lock()

    @property
    def open(self) -> bool:
        return self._changes is not None and not self._changes.closed

    async def ensure_open(self) -> None:
        """Open the subscription if it is not (raises the store's StoreUnavailable when it cannot be)."""
        if self.open:
            return
        async with self._opening:
            if self.open:
                return
            changes = await self.service.changes(max_pending=MAX_PENDING_CHANGES)
            changes.where = self.interest.wants
            self._changes = changes
            self._pump = asyncio.ensure_future(self._run(changes))

    async def close(self) -> None:
        if self._changes is not None:
            self._changes.close()
        if self._pump is not None:
            self._pump.cancel()
            try:
                await self._pump
            except asyncio.CancelledError:
                pass

    async def _run(self, changes: ChangeSubscription) -> None:
        items = 0
        try:
            async for change in changes:
                try:
                    self.deliver(change)
                except Exception:  # noqa: BLE001 - one bad change must not stop the others
                    log.exception("delivering a change of %s/%s failed", change.topic, change.stream_id)
                items += len(change.cursors) or 1
                if items >= YIELD_EVERY:
                    items = 0
                    await asyncio.sleep(0)
        except SubscriptionOverflow:
            log.warning("reader feed: fell more than %d changes behind the writers; closing every subscriber", MAX_PENDING_CHANGES)
            for connection_id in self.clients.groups.connection_ids():
                self.clients.close(connection_id, FELL_BEHIND_CLOSE_ERROR, CloseReason.FELL_BEHIND)
        except Exception:  # noqa: BLE001
            log.exception("reader feed failed")
        finally:
            if self._changes is changes:
                self._changes = None

    # --- one change -------------------------------------------------------------------------------

    def deliver(self, change: Change) -> None:
        if change.kind == ChangeKind.EVENTS:
            self._events(change)
        elif change.kind == ChangeKind.PARAMETERS:
            self._parameters(change)
        elif change.kind == ChangeKind.STREAM and change.info is not None:
            self._stream(change)

    def _group_prefixes(self, kind: SubscriptionKind, topic: str, stream_id: str) -> list[str]:
        """The group-name prefixes of the subscriptions (exact or wildcard) this stream's data of `kind` meets."""
        return [data_group_prefix(kind, t, s) for t, s in self.interest.patterns(kind, topic, stream_id)]

    def _events(self, change: Change) -> None:
        topic, stream_id = change.topic, change.stream_id
        prefixes = self._group_prefixes(SubscriptionKind.EVENT, topic, stream_id)
        if not prefixes:
            return
        members = self.clients.groups.members
        readers = TopicReaders(self.clients, topic)
        every = [m for m in (members(p + WILDCARD) for p in prefixes) if m]
        recipients_of: dict[str, Any] = {}
        # Consecutive events with the same recipients (nearly always all of them) go out as one batch.
        runs: list[tuple[Any, list[tuple[dict[str, Any]]]]] = []
        for event in change.events:
            recipients = recipients_of.get(event.id)
            if recipients is None:
                specific = [m for m in (members(p + event.id) for p in prefixes) if m]
                recipients = recipients_of[event.id] = readers.among(_union(every + specific))
            if not recipients:
                continue
            call = ({
                "topicName": topic,
                "streamId": stream_id,
                "id": event.id,
                "timestamp": event.timestamp,
                "value": event.value,
                "tags": event.tags,
            },)
            if runs and runs[-1][0] is recipients:
                runs[-1][1].append(call)
            else:
                runs.append((recipients, [call]))
        for recipients, calls in runs:
            self.clients.send_each(recipients, "EventDataReceived", calls)

    def _parameters(self, change: Change) -> None:
        data = change.parameter_data
        if data is None or not data.rows:
            return
        topic, stream_id = change.topic, change.stream_id
        prefixes = self._group_prefixes(SubscriptionKind.PARAMETER, topic, stream_id)
        if not prefixes:
            return
        members = self.clients.groups.members
        wanted: dict[str, set[str] | None] = {}  # connection -> parameter ids, or _ALL
        for prefix in prefixes:
            for connection_id in members(prefix + WILDCARD):
                wanted[connection_id] = _ALL
        names = {*data.numeric_values, *data.string_values, *data.binary_values}
        for prefix in prefixes:
            for name in names:
                for connection_id in members(prefix + name):
                    if connection_id not in wanted:
                        wanted[connection_id] = {name}
                    elif (chosen := wanted[connection_id]) is not _ALL:
                        chosen.add(name)
        readers = TopicReaders(self.clients, topic)
        buckets: dict[frozenset[str] | None, list[str]] = {}
        for connection_id, chosen in wanted.items():
            if not readers.may(connection_id):
                continue
            buckets.setdefault(None if chosen is _ALL else frozenset(chosen), []).append(connection_id)
        for selection, connection_ids in buckets.items():
            payload = parameter_payload(topic, stream_id, data, selection)
            if payload is not None:
                self.clients.send_to(connection_ids, "ParameterDataReceived", payload)

    def _stream(self, change: Change) -> None:
        info = change.info
        assert info is not None
        if not self.interest.wants_topic(change.topic):
            return
        members = self.clients.groups.members
        groups = (active_streams_group(change.topic), active_streams_group(WILDCARD))
        recipients = TopicReaders(self.clients, change.topic).among(_union([m for m in map(members, groups) if m]))
        if recipients:
            action = "Remove" if info.status == "closed" else "AddUpdate"
            self.clients.send_to(recipients, "ActiveStreamsChanged", info.to_json(), action)


class TopicReaders:
    """Which connections may read one topic now, for one change: each recipient set it is given is
    filtered once (the same set object in, the same answer out, so the batching by identity in
    `_events` holds), and handed back as it is when every member may read (nothing copied). Each
    principal is asked once per change (many connections often share one token)."""

    __slots__ = ("clients", "topic", "_filtered", "_verdicts")

    def __init__(self, clients: HubClients, topic: str):
        self.clients = clients
        self.topic = topic
        # Both live as long as the change: one entry per recipient set, and per principal, of it.
        self._filtered: dict[int, tuple[Any, Any]] = {}  # id(set) -> (that set, its readers)
        self._verdicts: dict[Any, bool] = {}  # principal -> may read the topic

    def may(self, connection_id: str) -> bool:
        principal = self.clients.principal(connection_id)
        verdict = self._verdicts.get(principal)
        if verdict is None:
            verdict = self._verdicts[principal] = may(principal, Action.READ, self.topic)
        return verdict

    def among(self, recipients: Any) -> Any:
        known = self._filtered.get(id(recipients))
        if known is not None and known[0] is recipients:
            return known[1]
        principal_of, verdicts, topic = self.clients.principal, self._verdicts, self.topic
        refused = []  # self.may(), inlined: once per recipient per change
        for connection_id in recipients:
            principal = principal_of(connection_id)
            verdict = verdicts.get(principal)
            if verdict is None:
                verdict = verdicts[principal] = may(principal, Action.READ, topic)
            if not verdict:
                refused.append(connection_id)
        readable = set(recipients).difference(refused) if refused else recipients
        self._filtered[id(recipients)] = (recipients, readable)
        return readable


def parameter_payload(
    topic: str, stream_id: str, data: ParameterData, selection: frozenset[str] | None
) -> dict[str, Any] | None:
    """ParameterDataReceived's argument carrying only `selection` (None: every parameter); rows
    holding none of them are left out, and None is returned when no row is left."""
    numeric, strings, binary, tags = data.numeric_values, data.string_values, data.binary_values, data.tag_values
    timestamps = data.timestamps
    if selection is not None:
        numeric = {k: v for k, v in numeric.items() if k in selection}
        strings = {k: v for k, v in strings.items() if k in selection}
        binary = {k: v for k, v in binary.items() if k in selection}
        columns = [*numeric.values(), *strings.values(), *binary.values()]
        rows = [i for i in range(data.rows) if any(column[i] is not None for column in columns)]
        if not rows:
            return None
        if len(rows) < data.rows:
            timestamps = [timestamps[i] for i in rows]
            numeric, strings, binary, tags = (
                {k: [v[i] for i in rows] for k, v in section.items()} for section in (numeric, strings, binary, tags)
            )
    return {
        "topicId": topic,
        "topicName": topic,
        "streamId": stream_id,
        "timestamps": timestamps,
        "numericValues": numeric,
        "stringValues": strings,
        "binaryValues": binary,
        "tagValues": tags,
    }


def _union(sets: list) -> Any:
    """One set as it is (nothing copied: the common case of one group), several merged."""
    if not sets:
        return ()
    if len(sets) == 1:
        return sets[0]
    return set().union(*sets)
