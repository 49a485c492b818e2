"""The kinds are StrEnums whose values are the strings they replaced: group names, store columns and
Redis keys built from them keep their bytes."""

from __future__ import annotations

from hub.reader.subscriptions import Key, SubscriptionKind, active_streams_group, data_group_prefix
from hub.streams.store.base import DefinitionKind
from hub.streams.store.broadcast import Change, ChangeKind


def test_values_are_the_strings_they_replaced() -> None:
    assert [str(k) for k in SubscriptionKind] == ["e", "p", "a"]
    assert [str(k) for k in ChangeKind] == ["events", "parameters", "stream"]
    assert [str(k) for k in DefinitionKind] == ["events", "parameters"]
    assert {"events": 1}[DefinitionKind.EVENTS] == 1 and ChangeKind.STREAM == "stream"


def test_subscription_group_names_keep_their_bytes_and_parse_back() -> None:
    keys = [
        Key(SubscriptionKind.EVENT, "cars", "c1", "Alert"),
        Key(SubscriptionKind.PARAMETER, "*", "c1", "*"),
        Key(SubscriptionKind.ACTIVE_STREAMS, "cars"),
    ]
    assert [key.group for key in keys] == ["e\0cars\0c1\0Alert", "p\0*\0c1\0*", "a\0cars"]
    assert data_group_prefix(SubscriptionKind.EVENT, "cars", "*") == "e\0cars\0*\0"
    assert active_streams_group("*") == "a\0*"
    for key in keys:
        parsed = Key.parse(key.group)
        assert parsed == key and type(parsed.kind) is SubscriptionKind


def test_a_change_made_with_the_plain_string_is_the_same_change() -> None:
    # the store backends may still spell the kind as its string
    assert Change("events", "t", "s") == Change(ChangeKind.EVENTS, "t", "s")
    assert Change("stream", "t", "s").empty is False and Change("events", "t", "s").empty is True
