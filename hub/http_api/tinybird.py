"""Tinybird's Events API as a drop-in route: `POST /v0/events?name=<topic>`, a thin adapter over the
stream service, so a Tinybird sender changes only its URL and token.

Tinybird's semantics: the body is NDJSON whatever the Content-Type (`curl -d` sends a form type),
optionally gzip; no `wait` or `wait=false` -> 202 once accepted, `wait=true` -> 200 once committed;
`{"successful_rows": n, "quarantined_rows": m}`; 403 for a bad token; 400 without `name`.

Each row (any JSON object) becomes an event of stream `default` (or `?streamId=`) of the topic:
id = the row's `id` (a string, or a number as its text) else the topic name; timestamp = the row's
`timestamp` (integer nanoseconds or ISO 8601) else the arrival time; value = the row's JSON text as
sent; tags = the string fields named in `?tags=a,b`. A row that is not a JSON object, or whose id
or timestamp cannot be read, is quarantined. See protocol-notes/http-api.md.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..streams import schema
from ..streams.lenient import LenientRows
from ..streams.service import StreamService
from . import codec
from .acks import Acknowledgements, wait_param
from .errors import ApiError
from .operations import Operation, Param, Reply, error_replies

DEFAULT_STREAM = "default"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_FRACTION = re.compile(r"(?<=:\d\d)[.,](\d+)")  # fractional seconds, kept to the nanosecond
_TIMESTAMP_PROBLEM = "timestamp: expected an integer of nanoseconds or an ISO 8601 date-time"


def _topic(request: Request) -> str | None:
    return request.query_params.get("name") or None


class TinybirdEvents:
    def __init__(self, service: StreamService, *, max_body_size: int, acks: Acknowledgements):
        self.service = service
        self.max_body_size = max_body_size
        self.acks = acks

    @property
    def operations(self) -> list[Operation]:
        row = {"type": "object", "description": "any JSON object; see the mapping in the description"}
        return [
            Operation(
                "POST", "/v0/events", self.send_events, "Send rows (Tinybird Events API)", "Drop-in: Tinybird",
                auth="tinybird", topic=_topic, access="write",
                params=(
                    Param("name", "query", schema.NAME, "the topic (Tinybird: the data source)", required=True),
                    Param("wait", "query", {"type": "boolean", "default": False},
                          "true: reply 200 once committed; false (default): 202 once accepted"),
                    Param("streamId", "query", schema.NAME, f"the stream (default {DEFAULT_STREAM!r})"),
                    Param("tags", "query", {"type": "string"}, "comma-separated names of string fields to copy into tags"),
                ),
                body={"application/x-ndjson": {"type": "array", "items": row, "description": "one JSON object a line"}},
                replies={
                    200: Reply("Stored (wait=true)", schema.BATCH_RESULT),
                    202: Reply("Accepted (default)", schema.BATCH_RESULT),
                    **error_replies(400, 403, 413, 415, 503),
                },
                description=(
                    "NDJSON whatever the Content-Type; gzip with Content-Encoding: gzip. The token as "
                    "`Authorization: Bearer <token>` or `?token=<token>`. Each row becomes an event: id = the "
                    "row's `id` (string or number) or the topic name; timestamp = its `timestamp` (integer ns or "
                    "ISO 8601) or the arrival time; value = the row's JSON text; tags = the string fields named "
                    "by `tags`. Rows that are not JSON objects, or whose id or timestamp cannot be read, go to "
                    "the topic's quarantine."
                ),
                operation_id="tinybird_send_events",
            )
        ]

    async def send_events(self, request: Request) -> Response:
        topic = _topic(request)
        if topic is None:
            raise ApiError(400, "name: required, the topic (Tinybird's data source) to write to, e.g. /v0/events?name=cars")
        stream_id = request.query_params.get("streamId") or DEFAULT_STREAM
        tags = [t.strip() for t in request.query_params.get("tags", "").split(",") if t.strip()]
        wait = wait_param(request, default=False)
        body = await codec.read_body(request, self.max_body_size)
        if not body.strip():
            raise ApiError(400, "Request body is empty; expected NDJSON, one JSON object a line.")
        arrival = time.time_ns()
        rows = to_event_rows(codec.ndjson_rows(body), topic, tags, arrival)
        batch = self.service.send_event_rows(topic, stream_id, rows)
        status = await self.acks.settle(batch.written, wait=wait, what=f"/v0/events rows for {topic}/{stream_id}")
        return codec.json_response(
            {"successful_rows": batch.successful_rows, "quarantined_rows": batch.quarantined_rows}, status=status
        )


def to_event_rows(rows: LenientRows, topic: str, tags: list[str], arrival_ns: int) -> LenientRows:
    """Decoded NDJSON rows -> the same rows holding raw events (or why a row cannot be one)."""
    values: list[Any] = []
    errors = dict(rows.errors)
    for index, value in enumerate(rows.values):
        event = None
        if index in errors:
            values.append(None)  # not JSON: stays as it is
            continue
        if isinstance(value, dict):
            try:
                event = _to_event(value, rows.raw_of(index), topic, tags, arrival_ns)
            except ValueError as exc:
                errors[index] = str(exc)
        else:
            errors[index] = "expected a JSON object"
        values.append(event)
    return LenientRows(values, errors, rows.line_of, rows.raw_of)


def _to_event(value: dict[str, Any], raw: str, topic: str, tags: list[str], arrival_ns: int) -> dict[str, Any]:
    return {
        "id": _event_id(value.get("id"), topic),
        "timestamp": _timestamp(value.get("timestamp"), arrival_ns),
        "value": raw,
        "tags": {name: value[name] for name in tags if type(value.get(name)) is str},
    }


def _event_id(raw: Any, topic: str) -> str:
    if raw is None or raw == "":
        return topic
    if type(raw) is str:
        return raw
    if type(raw) in (int, float):
        return codec.dumps(raw).decode()
    raise ValueError("id: expected a string or a number")


def _timestamp(raw: Any, arrival_ns: int) -> int:
    if raw is None:
        return arrival_ns
    if type(raw) is int:
        return raw
    if type(raw) is float and raw.is_integer():
        return int(raw)
    if type(raw) is str:
        return parse_iso8601_ns(raw)
    raise ValueError(_TIMESTAMP_PROBLEM)


def parse_iso8601_ns(text: str) -> int:
    """ISO 8601 -> nanoseconds since the epoch, to the nanosecond; no offset means UTC."""
    fraction = _FRACTION.search(text)
    nanos = 0
    if fraction is not None:
        digits = fraction.group(1)
        nanos = int(digits[:9].ljust(9, "0"))
        text = text[: fraction.start()] + text[fraction.end() :]
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" and text else text)
    except ValueError:
        raise ValueError(_TIMESTAMP_PROBLEM) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + nanos
