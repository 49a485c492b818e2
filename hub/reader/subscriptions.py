"""What the Reader hub's clients subscribed to, as SignalR group names, and the index that tells the
store's change broadcast which streams anyone wants. Sans-I/O: strings and counters.

A subscription is a group (hub/signalr/groups.py) whose name encodes it:
    events      "e\\0{topic}\\0{streamId}\\0{eventId}"
    parameters  "p\\0{topic}\\0{streamId}\\0{parameterId}"
    streams     "a\\0{topic}"                       (SubscribeToActiveStreams)
Any part may be `*`. Topics and stream ids never hold control characters (validation.check_name),
so the first two separators are unambiguous whatever the id holds.
"""

from __future__ import annotations

from collections import Counter
from enum import StrEnum
from typing import Any, NamedTuple

from ..streams.errors import ValidationError
from ..streams.validation import check_name

WILDCARD = "*"
MAX_ID_LENGTH = 1024
SEP = "\0"


class SubscriptionKind(StrEnum):
    """What a subscription is to; its value starts the subscription's group name."""

    EVENT = "e"
    PARAMETER = "p"
    ACTIVE_STREAMS = "a"


#: The kinds that name one item (an event or parameter id) of a stream pattern.
DATA_KINDS = (SubscriptionKind.EVENT, SubscriptionKind.PARAMETER)


class Key(NamedTuple):
    kind: SubscriptionKind
    topic: str
    stream_id: str = ""
    item: str = ""

    @property
    def group(self) -> str:
        if self.kind == SubscriptionKind.ACTIVE_STREAMS:
            return active_streams_group(self.topic)
        return f"{self.kind}{SEP}{self.topic}{SEP}{self.stream_id}{SEP}{self.item}"

    @classmethod
    def parse(cls, group: str) -> "Key":
        kind, *rest = group.split(SEP, 3)
        return cls(SubscriptionKind(kind), *rest)


def active_streams_group(topic: str) -> str:
    """The group name of the active-streams subscriptions of a topic (or of `*`)."""
    return f"{SubscriptionKind.ACTIVE_STREAMS}{SEP}{topic}"


def data_group_prefix(kind: SubscriptionKind, topic: str, stream_id: str) -> str:
    """The group names of one stream pattern without the item: append an id (or `*`)."""
    return f"{kind}{SEP}{topic}{SEP}{stream_id}{SEP}"


def pattern(value: Any, what: str) -> str:
    """A topic or stream id as a subscription names it: `*`, or a valid name."""
    if value == WILDCARD:
        return WILDCARD
    return check_name(value, what)


def item_id(value: Any, what: str) -> str:
    """An event or parameter id as a subscription names it: `*`, or a non-empty string."""
    if type(value) is not str or not value:
        raise ValidationError(what, "expected a non-empty string ('*' for every one)")
    if len(value) > MAX_ID_LENGTH:
        raise ValidationError(what, f"is longer than {MAX_ID_LENGTH} characters")
    return value


class Interest:
    """How many subscriptions name each stream pattern, per kind: answers, on every write, whether
    anyone wants a stream (the store subscription's `where`), and which patterns to look up on
    delivery."""

    def __init__(self) -> None:
        self._data: dict[SubscriptionKind, Counter[tuple[str, str]]] = {kind: Counter() for kind in DATA_KINDS}
        self._topics: Counter[str] = Counter()  # active-streams subscriptions

    def add(self, key: Key) -> None:
        if key.kind == SubscriptionKind.ACTIVE_STREAMS:
            self._topics[key.topic] += 1
        else:
            self._data[key.kind][(key.topic, key.stream_id)] += 1

    def remove(self, key: Key) -> None:
        counter: Counter[Any]
        name: Any
        if key.kind == SubscriptionKind.ACTIVE_STREAMS:
            counter, name = self._topics, key.topic
        else:
            counter, name = self._data[key.kind], (key.topic, key.stream_id)
        counter[name] -= 1
        if counter[name] <= 0:
            del counter[name]

    def __bool__(self) -> bool:
        return bool(self._topics) or any(self._data.values())

    def patterns(self, kind: SubscriptionKind, topic: str, stream_id: str) -> list[tuple[str, str]]:
        """The (topic, stream) patterns of this kind that match the stream and have subscribers."""
        counter = self._data[kind]
        if not counter:
            return []
        found = []
        for candidate in ((topic, stream_id), (topic, WILDCARD), (WILDCARD, stream_id), (WILDCARD, WILDCARD)):
            if candidate in counter:
                found.append(candidate)
        return found

    def wants_topic(self, topic: str) -> bool:
        topics = self._topics
        return bool(topics) and (topic in topics or WILDCARD in topics)

    def wants(self, topic: str, stream_id: str) -> bool:
        """Whether any subscription would get a change of this stream (called on every write)."""
        if self.wants_topic(topic):
            return True
        for counter in self._data.values():
            if counter and (
                (topic, stream_id) in counter
                or (topic, WILDCARD) in counter
                or (WILDCARD, stream_id) in counter
                or (WILDCARD, WILDCARD) in counter
            ):
                return True
        return False
