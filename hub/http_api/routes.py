"""The Quix Writer and read API over HTTP: a thin adapter over the stream service.

Writes answer 200 once the store has the data (its awaitable resolved), or with `?wait=false` 202
once the batch is validated and queued in order (acks.py). Events come as a JSON array (all or
nothing: 400 naming the index and field) or as NDJSON (each bad line quarantined, the rest stored);
any body may be gzip. Errors are `{"error": "…"}` (errors.py). Every operation is declared once
(operations.py) for the router, the guard and the OpenAPI document.
"""

from __future__ import annotations

import functools
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from ..streams import schema
from ..streams.service import StreamService
from ..streams.errors import ValidationError
from ..streams.models import DEFAULT_PAGE, MAX_PAGE, ReadWindow
from . import codec
from .access import may_read
from .acks import Acknowledgements, wait_param
from .errors import ApiError
from .operations import Operation, Param, Reply, error_replies, path_topic


TOPIC = Param("topic", "path", schema.NAME, "the topic", required=True)
STREAM = Param("streamId", "path", schema.NAME, "the stream (created on first write)", required=True)
WAIT = Param(
    "wait", "query", {"type": "boolean", "default": True},
    "true (default): reply 200 once the store committed the write; false: reply 202 once it is accepted in order",
)
PAGE = (
    Param("limit", "query", {"type": "integer", "minimum": 1, "default": DEFAULT_PAGE}, f"items a page (above {MAX_PAGE} reads as {MAX_PAGE})"),
    Param("after", "query", {"type": "string"}, "the X-Next-Cursor of the previous page"),
)
RANGE = (
    Param("from", "query", schema.NANOSECONDS, "only items with timestamp >= from"),
    Param("to", "query", schema.NANOSECONDS, "only items with timestamp < to"),
)
ORDER = Param("order", "query", {"type": "string", "enum": ["asc", "desc"], "default": "asc"},
              "asc: oldest first; desc: newest first (a cursor then continues with older rows)")
GZIP_NOTE = "The body may be gzip-compressed (Content-Encoding: gzip)."

BATCH_REPLIES = {
    200: Reply("Stored: the store committed the write.", schema.BATCH_RESULT),
    202: Reply("Accepted (wait=false): validated and queued in order; stored shortly.", schema.BATCH_RESULT),
}
STREAM_INFO = Reply("The stream", schema.STREAM_INFO)
READ_ERRORS = error_replies(400, 401)
WRITE_ERRORS = error_replies(400, 401, 413, 415, 503)


class HttpApi:
    def __init__(self, service: StreamService, *, max_body_size: int, acks: Acknowledgements | None = None):
        self.service = service
        self.max_body_size = max_body_size
        self.acks = acks or Acknowledgements()

    @property
    def operations(self) -> list[Operation]:
        s = "/topics/{topic}/streams/{streamId}"
        t = "Quix Writer and read API"
        topic = path_topic
        return [
            Operation("GET", "/health", self.health, "Liveness", "Service", auth="none", access="none",
                      replies={200: Reply("Up", {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}})}),
            Operation("GET", "/topics", self.list_topics, "List topics", t, access="listing",
                      replies={200: Reply("Topics with at least one stream, by name", {"type": "array", "items": schema.TOPIC_SUMMARY}),
                               **error_replies(401)}),
            Operation("GET", "/topics/{topic}/streams", self.list_streams, "List the streams of a topic", t, access="listing", topic=topic,
                      params=(TOPIC,),
                      replies={200: Reply("In creation order", {"type": "array", "items": schema.STREAM_INFO}), **READ_ERRORS}),
            Operation("POST", "/topics/{topic}/streams", self.create_stream, "Create a stream", t, topic=topic, access="write",
                      params=(TOPIC,), body={"application/json": schema.STREAM_PROPERTIES}, body_required=False,
                      replies={200: Reply("Created", {"type": "object", "required": ["streamId"], "properties": {"streamId": {"type": "string", "format": "uuid"}}}),
                               **WRITE_ERRORS}),
            Operation("GET", s, self.get_stream, "One stream's properties and counters", t, topic=topic, access="read",
                      params=(TOPIC, STREAM), replies={200: STREAM_INFO, **error_replies(400, 401, 404)}),
            Operation("PUT", s, self.update_stream, "Replace a stream's properties (creating it if new)", t, topic=topic, access="write",
                      params=(TOPIC, STREAM), body={"application/json": schema.STREAM_PROPERTIES}, body_required=False,
                      replies={200: STREAM_INFO, **WRITE_ERRORS}),
            Operation("POST", f"{s}/close", self.close_stream, "Close a stream (a later write reopens it)", t, topic=topic, access="write",
                      params=(TOPIC, STREAM), replies={200: STREAM_INFO, **error_replies(400, 401, 503)}),
            Operation("GET", f"{s}/events/data", self.read_events, "Read events in arrival order", t, topic=topic, access="read",
                      params=(TOPIC, STREAM, *RANGE, *PAGE),
                      replies={200: Reply("A page of events", {"type": "array", "items": schema.EVENT_OUT}, headers=("X-Next-Cursor",)),
                               **error_replies(400, 401, 404)}),
            Operation("POST", f"{s}/events/data", self.send_events, "Send events", t, topic=topic, access="write",
                      params=(TOPIC, STREAM, WAIT),
                      body={"application/json": schema.EVENTS,
                            "application/x-ndjson": {**schema.EVENTS, "description": "one event a line (NDJSON)"}},
                      replies={**BATCH_REPLIES, **WRITE_ERRORS},
                      description="A JSON array is all or nothing: one bad event is a 400 naming its index and field, "
                                  "and nothing is stored. NDJSON (one event a line) is lenient: a line that is not JSON or "
                                  "not a valid event goes to the topic's quarantine (GET /topics/{topic}/quarantine) with "
                                  "its line number and reason, is counted in quarantined_rows, and the other lines are "
                                  "stored. " + GZIP_NOTE),
            Operation("GET", f"{s}/parameters/data", self.read_parameter_data, "Read parameter data in arrival order", t, topic=topic, access="read",
                      params=(TOPIC, STREAM, *RANGE, *PAGE),
                      replies={200: Reply("A page of rows", schema.PARAMETER_DATA_OUT, headers=("X-Next-Cursor",)),
                               **error_replies(400, 401, 404)}),
            Operation("POST", f"{s}/parameters/data", self.send_parameter_data, "Send parameter data", t, topic=topic, access="write",
                      params=(TOPIC, STREAM, WAIT), body={"application/json": schema.PARAMETER_DATA},
                      replies={**BATCH_REPLIES, **WRITE_ERRORS},
                      description="All or nothing; every section's arrays line up with timestamps. " + GZIP_NOTE),
            Operation("GET", f"{s}/events", self.get_event_definitions, "Read the event definitions", t, topic=topic, access="read",
                      params=(TOPIC, STREAM), replies={200: Reply("As last replaced (empty if never set)", schema.EVENT_DEFINITIONS),
                                                      **error_replies(400, 401, 404)}),
            Operation("GET", f"{s}/parameters", self.get_parameter_definitions, "Read the parameter definitions", t, topic=topic,
                      access="read", params=(TOPIC, STREAM),
                      replies={200: Reply("As last replaced (empty if never set)", schema.PARAMETER_DEFINITIONS),
                               **error_replies(400, 401, 404)}),
            Operation("PUT", f"{s}/events", self.set_event_definitions, "Replace the event definitions", t, topic=topic, access="write",
                      params=(TOPIC, STREAM), body={"application/json": schema.EVENT_DEFINITIONS},
                      replies={200: STREAM_INFO, **WRITE_ERRORS}),
            Operation("PUT", f"{s}/parameters", self.set_parameter_definitions, "Replace the parameter definitions", t, topic=topic,
                      access="write", params=(TOPIC, STREAM), body={"application/json": schema.PARAMETER_DEFINITIONS},
                      replies={200: STREAM_INFO, **WRITE_ERRORS}),
            Operation("GET", "/topics/{topic}/quarantine", self.read_quarantine, "Read the topic's quarantined rows", t, topic=topic, access="read",
                      params=(TOPIC, *PAGE, ORDER),
                      replies={200: Reply("A page of quarantined rows, in arrival order (newest first with order=desc)",
                                          {"type": "array", "items": schema.QUARANTINED_ROW}, headers=("X-Next-Cursor",)),
                               **READ_ERRORS},
                      description="NDJSON lines (here and from /v0/events) that were not valid events: kept, not lost."),
        ]

    async def health(self, request: Request) -> Response:
        return codec.json_response({"status": "ok"})

    # --- writes --------------------------------------------------------------------------------------

    async def create_stream(self, request: Request) -> Response:
        properties = await codec.read_json(request, self.max_body_size, empty=None)
        stream_id = await self.service.create_stream(request.path_params["topic"], properties)
        return codec.json_response({"streamId": stream_id})

    async def update_stream(self, request: Request) -> Response:
        topic, stream_id = _ids(request)
        properties = await codec.read_json(request, self.max_body_size, empty=None)
        info = await self.service.update_stream(topic, stream_id, properties)
        return codec.json_response(info.to_json())

    async def close_stream(self, request: Request) -> Response:
        info = await self.service.close_stream(*_ids(request))
        return codec.json_response(info.to_json())

    async def send_events(self, request: Request) -> Response:
        topic, stream_id = _ids(request)
        wait = wait_param(request, default=True)
        media = codec.check_json_type(request, ndjson=True)
        if codec.is_ndjson(media):
            body = await codec.read_body(request, self.max_body_size)
            if not body.strip():
                raise ApiError(400, "Request body is empty; expected NDJSON, one event a line.")
            batch = self.service.send_event_rows(topic, stream_id, codec.ndjson_rows(body))
            status = await self.acks.settle(batch.written, wait=wait, what=f"events for {topic}/{stream_id}")
            return _batch_reply(batch.successful_rows, batch.quarantined_rows, status)
        events = await codec.read_json(request, self.max_body_size)
        written = self.service.send_events(topic, stream_id, events)
        status = await self.acks.settle(written, wait=wait, what=f"events for {topic}/{stream_id}")
        return _batch_reply(len(events), 0, status)

    async def send_parameter_data(self, request: Request) -> Response:
        topic, stream_id = _ids(request)
        wait = wait_param(request, default=True)
        data = await codec.read_json(request, self.max_body_size)
        written = self.service.send_parameter_data(topic, stream_id, data)
        status = await self.acks.settle(written, wait=wait, what=f"parameter data for {topic}/{stream_id}")
        rows = len(data["timestamps"] if "timestamps" in data else data["Timestamps"])  # validated above
        return _batch_reply(rows, 0, status)

    async def set_event_definitions(self, request: Request) -> Response:
        definitions = await codec.read_json(request, self.max_body_size)
        info = await self.service.set_event_definitions(*_ids(request), definitions)
        return codec.json_response(info.to_json())

    async def set_parameter_definitions(self, request: Request) -> Response:
        definitions = await codec.read_json(request, self.max_body_size)
        info = await self.service.set_parameter_definitions(*_ids(request), definitions)
        return codec.json_response(info.to_json())

    # --- reads ----------------------------------------------------------------------------------------

    async def list_topics(self, request: Request) -> Response:
        topics = await self.service.list_topics()
        return codec.json_response([t.to_json() for t in topics if may_read(request, t.topic)])

    async def list_streams(self, request: Request) -> Response:
        topic = request.path_params["topic"]
        streams = await self.service.list_streams(topic)  # a bad name is a 400 whoever asks
        return codec.json_response([s.to_json() for s in streams] if may_read(request, topic) else [])

    async def get_stream(self, request: Request) -> Response:
        return codec.json_response((await self._stream(request)).to_json())

    async def get_event_definitions(self, request: Request) -> Response:
        return codec.json_response((await self._stream(request)).event_definitions)

    async def get_parameter_definitions(self, request: Request) -> Response:
        return codec.json_response((await self._stream(request)).parameter_definitions)

    async def read_events(self, request: Request) -> Response:
        await self._stream(request)
        page = await self._read(self.service.read_events, request, *_ids(request))
        return codec.json_response([e.to_json() for e in page.items], _cursor(page.next_cursor))

    async def read_parameter_data(self, request: Request) -> Response:
        await self._stream(request)
        page = await self._read(self.service.read_parameter_data, request, *_ids(request))
        data = page.items[0].to_json() if page.items else _EMPTY_PARAMETERS
        return codec.json_response(data, _cursor(page.next_cursor))

    async def read_quarantine(self, request: Request) -> Response:
        order = request.query_params.get("order", "asc")
        if order not in ("asc", "desc"):
            raise ApiError(400, f"order: expected 'asc' or 'desc', got {order!r}")
        read = functools.partial(self.service.read_quarantine, newest_first=order == "desc")
        page = await self._read(read, request, request.path_params["topic"], ranged=False)
        return codec.json_response([r.to_json() for r in page.items], _cursor(page.next_cursor))

    async def _stream(self, request: Request):
        topic, stream_id = _ids(request)
        info = await self.service.get_stream(topic, stream_id)
        if info is None:
            raise ApiError(404, f"No stream '{stream_id}' in topic '{topic}'.")
        return info

    async def _read(self, read: Callable[..., Awaitable[Any]], request: Request, *ids: str, ranged: bool = True) -> Any:
        q = request.query_params
        limit = _int_query(request, "limit")
        if limit is None:
            limit = DEFAULT_PAGE
        elif limit < 1:
            raise ApiError(400, f"limit: expected a positive integer, got {q['limit']}")
        from_ts, to_ts = (_int_query(request, "from"), _int_query(request, "to")) if ranged else (None, None)
        try:
            window = ReadWindow(from_ts, to_ts, min(limit, MAX_PAGE), q.get("after") or None)
            return await read(*ids, window)
        except ValueError as exc:
            if isinstance(exc, ValidationError):
                raise
            raise ApiError(400, f"after: {exc}") from None


_EMPTY_PARAMETERS: dict[str, Any] = {"timestamps": [], "numericValues": {}, "stringValues": {}, "binaryValues": {}, "tagValues": {}}


def _batch_reply(successful: int, quarantined: int, status: int) -> Response:
    return codec.json_response({"successful_rows": successful, "quarantined_rows": quarantined}, status=status)


def _ids(request: Request) -> tuple[str, str]:
    return request.path_params["topic"], request.path_params["streamId"]


def _cursor(next_cursor: str | None) -> dict[str, str] | None:
    return {"X-Next-Cursor": next_cursor} if next_cursor else None


def _int_query(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, f"{name}: expected an integer, got {raw!r}") from None
