"""The HTTP body codec with plain bytes: gzip decoding under a limit, NDJSON rows, precise JSON errors,
and the drop-in routes' row mappings."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.http_api import codec, eventhubs, tinybird
from hub.http_api.errors import ApiError
from hub.streams.lenient import RawRow

# --- gzip ---------------------------------------------------------------------------------------------


def feed_all(decoder: codec.GzipDecoder, data: bytes, chunk: int = 997) -> bytes:
    out = [decoder.feed(data[i : i + chunk]) for i in range(0, len(data), chunk)]
    return b"".join(out) + decoder.finish()


@pytest.mark.parametrize("chunk", [1, 7, 4096, 10**6])
def test_gzip_round_trip_in_any_chunking(chunk: int) -> None:
    plain = b"".join(json.dumps({"id": "e", "timestamp": i}).encode() + b"\n" for i in range(2000))
    assert feed_all(codec.GzipDecoder(len(plain)), gzip.compress(plain), chunk) == plain


def test_concatenated_gzip_members_decode_as_one_body() -> None:
    data = gzip.compress(b"line 1\n") + gzip.compress(b"line 2\n")
    assert feed_all(codec.GzipDecoder(1000), data, 5) == b"line 1\nline 2\n"


def test_a_gzip_bomb_is_stopped_at_the_limit_without_inflating_it() -> None:
    bomb = gzip.compress(b"\0" * 10_000_000) * 20  # 200 MB of zeros in ~200 kB (20 gzip members)
    assert len(bomb) < 300_000
    decoder = codec.GzipDecoder(1_000_000)
    with pytest.raises(ApiError) as raised:
        feed_all(decoder, bomb, 65536)
    assert raised.value.status == 413
    assert "once decompressed" in str(raised.value)
    assert decoder.size <= 1_000_001  # zlib was never asked for more than the limit (+1 to notice)
    assert raised.value.headers.get("Connection") == "close"


def test_exactly_the_limit_is_fine() -> None:
    plain = b"x" * 1000
    assert feed_all(codec.GzipDecoder(1000), gzip.compress(plain)) == plain
    with pytest.raises(ApiError):
        feed_all(codec.GzipDecoder(999), gzip.compress(plain))


def test_not_gzip_is_a_400() -> None:
    with pytest.raises(ApiError) as raised:
        feed_all(codec.GzipDecoder(1000), b'[{"id": "plain json"}]')
    assert raised.value.status == 400 and "not valid gzip" in str(raised.value)


def test_truncated_gzip_is_a_400() -> None:
    data = gzip.compress(b"x" * 10_000)
    with pytest.raises(ApiError) as raised:
        feed_all(codec.GzipDecoder(100_000), data[: len(data) // 2])
    assert raised.value.status == 400 and "truncated" in str(raised.value)


def test_corrupt_gzip_is_a_400() -> None:
    data = bytearray(gzip.compress(b"hello world" * 100))
    data[20] ^= 0xFF
    with pytest.raises(ApiError) as raised:
        feed_all(codec.GzipDecoder(100_000), bytes(data))
    assert raised.value.status == 400


def test_empty_gzip_body_is_empty() -> None:
    assert feed_all(codec.GzipDecoder(10), b"") == b""


def test_raw_deflate_is_not_gzip() -> None:
    with pytest.raises(ApiError):
        feed_all(codec.GzipDecoder(1000), zlib.compress(b"data"))


# --- JSON and NDJSON ----------------------------------------------------------------------------------


def test_json_errors_say_where() -> None:
    with pytest.raises(ApiError) as raised:
        codec.parse_json(b'[{"id": "a", "timestamp": 1}, {"id": ]')
    assert raised.value.status == 400
    assert "not valid JSON" in str(raised.value) and "column 38" in str(raised.value)


def test_bad_utf8_names_the_byte() -> None:
    with pytest.raises(ApiError) as raised:
        codec.parse_json(b'[{"id": "caf\xe9"}]')
    assert str(raised.value) == "Request body is not valid UTF-8: invalid continuation byte at byte 12"


def test_ndjson_rows_keep_line_numbers_skip_blank_lines_and_take_crlf() -> None:
    body = b'{"id": "a"}\r\n\n   \nnot json\n{"id": "caf\xe9"}\n[1, 2]'
    rows = codec.ndjson_rows(body)
    assert [(r.line, r.error is None) for r in rows] == [(1, True), (4, False), (5, False), (6, True)]
    assert rows[0] == RawRow(1, '{"id": "a"}', {"id": "a"})
    assert rows[1].raw == "not json" and rows[1].error.startswith("not valid JSON: ")
    assert "column 1" in rows[1].error and "line 1" not in rows[1].error
    assert rows[2].error == "not valid UTF-8: invalid continuation byte at byte 11"
    assert rows[2].raw == '{"id": "caf\ufffd"}'
    assert rows[3].value == [1, 2]


def test_ndjson_rows_of_a_body_that_decodes_whole_keep_line_numbers_and_text() -> None:
    # every line is JSON, so the one-decode-a-line path reads it; blank lines still count
    body = b'{"id": "a", "timestamp": 1}\r\n\n[1]\n\n  {"id": "b"}  \n'
    rows = codec.ndjson_rows(body)
    assert rows.errors == {}
    assert list(rows) == [
        RawRow(1, '{"id": "a", "timestamp": 1}', {"id": "a", "timestamp": 1}),
        RawRow(3, "[1]", [1]),
        RawRow(5, '{"id": "b"}', {"id": "b"}),
    ]


_LINES = st.sampled_from(
    [b'{"id": "a", "timestamp": 1}', b"[1, 2]", b"null", b"", b"  ", b"\r", b"oops", b'{"id": "caf\xe9"}',
     b'  {"id": "b"}\r', b"\x0b1", b'"\\ud800"', b"{", b"}"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_LINES, max_size=8), st.booleans())
def test_ndjson_rows_match_the_line_by_line_reading_of_any_body(lines: list[bytes], final_newline: bool) -> None:
    body = b"\n".join(lines) + (b"\n" if final_newline else b"")
    assert list(codec.ndjson_rows(body)) == list(codec.ndjson_rows_line_by_line(body.split(b"\n")))


# --- Tinybird rows -> events -----------------------------------------------------------------------------


def tinybird_row(line: str, tags=(), arrival: int = 123) -> RawRow:
    [row] = tinybird.to_event_rows(codec.ndjson_rows(line.encode()), "flights", list(tags), arrival)
    return row


def test_tinybird_row_mapping() -> None:
    line = '{"timestamp":"2022-10-27T11:43:02.099Z","transaction_id":"8d1e","name":"Bobby Drake","age":42,"flight_class":"economy"}'
    row = tinybird_row(line, tags=["flight_class", "age", "missing"])
    assert row.error is None
    assert row.value == {
        "id": "flights",
        "timestamp": 1666870982_099_000_000,
        "value": line,
        "tags": {"flight_class": "economy"},  # age is a number: only string fields become tags
    }


@pytest.mark.parametrize(
    ("line", "event_id", "timestamp"),
    [
        ('{"id": "Alert", "timestamp": 1618133869000000000}', "Alert", 1618133869000000000),
        ('{"id": 42}', "42", 123),
        ('{"id": ""}', "flights", 123),
        ('{"id": null, "timestamp": null}', "flights", 123),
        ('{"timestamp": "2024-05-01 12:00:00"}', "flights", 1714564800_000_000_000),
        ('{"timestamp": "2024-05-01T14:00:00.123456789+02:00"}', "flights", 1714564800_123_456_789),
        ('{"timestamp": 1.5e9}', "flights", 1_500_000_000),
    ],
)
def test_tinybird_id_and_timestamp(line: str, event_id: str, timestamp: int) -> None:
    row = tinybird_row(line)
    assert (row.value["id"], row.value["timestamp"]) == (event_id, timestamp)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("[1, 2]", "expected a JSON object"),
        ('"text"', "expected a JSON object"),
        ('{"id": {"a": 1}}', "id: expected a string or a number"),
        ('{"timestamp": "yesterday"}', "timestamp: expected an integer of nanoseconds or an ISO 8601 date-time"),
        ('{"timestamp": true}', "timestamp: expected an integer of nanoseconds or an ISO 8601 date-time"),
        ("{oops", "not valid JSON"),
    ],
)
def test_tinybird_rows_that_cannot_be_events(line: str, problem: str) -> None:
    row = tinybird_row(line)
    assert row.error is not None and row.error.startswith(problem), row


# --- Event Hubs batches ------------------------------------------------------------------------------------


def test_event_hubs_batch_groups_by_partition_key_in_order() -> None:
    items = [
        {"Body": "Message1"},
        {"Body": "Message2", "UserProperties": {"Alert": "Strong Wind", "Level": 3, "Gust": True, "None": None}},
        {"Body": {"temp": 37}, "BrokerProperties": {"PartitionKey": "car-2", "Label": "Reading"}},
        {"Body": "Message4"},
    ]
    batches = eventhubs.events_by_stream(items, "myhub", "default", "myhub", 7)
    assert [(s, [e["value"] for e in events]) for s, events in batches] == [
        ("default", ["Message1", "Message2", "Message4"]),
        ("car-2", ['{"temp":37}']),
    ]
    assert batches[0][1][1]["tags"] == {"Alert": "Strong Wind", "Level": "3", "Gust": "true"}
    assert batches[1][1][0]["id"] == "Reading" and batches[0][1][0]["id"] == "myhub"


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ({"Body": "x"}, "expected a JSON array"),
        ([{"Body": "x"}, "y"], "[1]: expected an object with Body"),
        ([{"UserProperties": {}}], "[0].Body: required"),
        ([{"Body": "x", "UserProperties": {"a": [1]}}], "[0].UserProperties.a: expected a string, number or boolean"),
        ([{"Body": "x", "BrokerProperties": {"PartitionKey": 5}}], "[0].BrokerProperties.PartitionKey: expected a non-empty string"),
    ],
)
def test_event_hubs_bad_batches_name_the_item(items, message: str) -> None:
    with pytest.raises(ApiError) as raised:
        eventhubs.events_by_stream(items, "h", "default", "h", 1)
    assert raised.value.status == 400 and message in str(raised.value)
