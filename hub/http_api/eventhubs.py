"""Azure Event Hubs' REST send as a drop-in route: `POST /{hub}/messages`, a thin adapter over the
stream service, so an Event Hubs sender changes only its URL and key (a hub token).

- The body is one event's value (UTF-8 text) whatever the Content-Type (senders use
  `application/atom+xml;type=entry;charset=utf-8`); `Content-Type: application/vnd.microsoft.servicebus.json`
  is a batch: a JSON array of `{"Body": …, "UserProperties": {…}, "BrokerProperties": {…}}`.
- Custom request headers (not standard HTTP ones) become tags, their names lower-cased and
  surrounding double quotes dropped from values; in a batch, each item's UserProperties do.
- BrokerProperties (a JSON header, or per batch item): PartitionKey selects the stream (default
  `default`), Label the event id (default: the hub name). The timestamp is the arrival time.
- Query `timeout` and `api-version` are accepted and ignored. Reply 201 with an empty body, once
  the store committed the write (Event Hubs' send is synchronous).
- Auth: `Authorization: Bearer <token>`, or Event Hubs' SharedAccessSignature signed with a hub
  token (sas.py; checked by the guard).
See protocol-notes/http-api.md.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..streams import schema
from ..streams.service import StreamService
from . import codec
from .errors import ApiError
from .operations import Operation, Param, Reply, error_replies

DEFAULT_STREAM = "default"
BATCH_TYPE = "application/vnd.microsoft.servicebus.json"
ATOM_TYPE = "application/atom+xml;type=entry;charset=utf-8"

# Request headers that are HTTP's (or proxies', or this hub's), not a sender's custom properties.
_NOT_PROPERTIES = frozenset(
    """accept accept-charset accept-encoding accept-language authorization brokerproperties cache-control connection
    content-encoding content-length content-md5 content-type cookie date expect forwarded from host idempotency-key
    if-match if-modified-since if-none-match if-range if-unmodified-since keep-alive max-forwards origin pragma
    proxy-authorization proxy-connection range referer request-id te trailer traceparent tracestate
    transfer-encoding upgrade user-agent via warning x-real-ip""".split()
)
_NOT_PROPERTY_PREFIXES = ("x-forwarded-", "x-ms-", "sec-", "access-control-request-")

_BATCH_ITEM: dict[str, Any] = {
    "type": "object",
    "required": ["Body"],
    "properties": {
        "Body": {"description": "the event's value: a string as is, any other JSON as its text"},
        "UserProperties": {
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
            "description": "become tags (numbers and booleans as their JSON text; null skipped)",
        },
        "BrokerProperties": {
            "type": "object",
            "properties": {"PartitionKey": schema.NAME, "Label": {"type": "string", "minLength": 1}},
        },
    },
}


def _topic(request: Request) -> str | None:
    return request.path_params.get("hub")


class EventHubsMessages:
    def __init__(self, service: StreamService, *, max_body_size: int):
        self.service = service
        self.max_body_size = max_body_size

    @property
    def operations(self) -> list[Operation]:
        return [
            Operation(
                "POST", "/{hub}/messages", self.send_messages, "Send an event or a batch (Event Hubs REST)",
                "Drop-in: Event Hubs", auth="eventhubs", topic=_topic, access="write",
                params=(
                    Param("hub", "path", schema.NAME, "the topic (Event Hubs: the event hub)", required=True),
                    Param("timeout", "query", {"type": "integer"}, "accepted and ignored"),
                    Param("api-version", "query", {"type": "string"}, "accepted and ignored"),
                    Param("BrokerProperties", "header", {"type": "string"},
                          'JSON, e.g. {"PartitionKey": "car-1"}: PartitionKey = the stream, Label = the event id'),
                ),
                body={
                    ATOM_TYPE: {"type": "string", "description": "the event's value (any Content-Type but the batch one)"},
                    BATCH_TYPE: {"type": "array", "items": _BATCH_ITEM},
                },
                replies={201: Reply("Stored", None), **error_replies(400, 401, 413, 415, 503)},
                description=(
                    "Custom request headers become the event's tags; the token as `Authorization: Bearer <token>` "
                    "or `Authorization: SharedAccessSignature sr=<uri>&sig=<sig>&se=<expiry>&skn=<name>` with "
                    "sig = base64(HMAC-SHA256(key = a hub token, url-encoded sr + \"\\n\" + se))."
                ),
                operation_id="eventhubs_send_messages",
            )
        ]

    async def send_messages(self, request: Request) -> Response:
        hub = request.path_params["hub"]
        broker = _broker_properties(request.headers.get("brokerproperties"))
        body = await codec.read_body(request, self.max_body_size)
        arrival = time.time_ns()
        stream_id, event_id = _routing(broker, hub, "BrokerProperties")
        if codec.media_type(request) == BATCH_TYPE:
            batches = events_by_stream(codec.parse_json(body), hub, stream_id, event_id, arrival)
        else:
            try:
                value = body.decode("utf-8")
            except UnicodeDecodeError as bad:
                raise ApiError(400, f"Request body is not valid UTF-8 ({bad.reason} at byte {bad.start}); an event's value is text.") from None
            event = {"id": event_id, "timestamp": arrival, "value": value, "tags": _header_tags(request)}
            batches = [(stream_id, [event])]
        await self.service.send_event_batches(hub, batches)
        return Response(status_code=201)


def _broker_properties(raw: str | None) -> dict[str, Any]:
    if raw is None or not raw.strip():
        return {}
    try:
        value = codec.loads(raw.encode())
    except (codec.JSONDecodeError, ValueError) as exc:
        raise ApiError(400, f"BrokerProperties: not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "BrokerProperties: expected a JSON object, e.g. {\"PartitionKey\": \"car-1\"}")
    return value


def _routing(broker: dict[str, Any], default_id: str, path: str, default_stream: str = DEFAULT_STREAM) -> tuple[str, str]:
    """(stream id, event id) from BrokerProperties' PartitionKey and Label."""
    stream_id = broker.get("PartitionKey", default_stream)
    if stream_id is None:
        stream_id = default_stream
    if type(stream_id) is not str or not stream_id:
        raise ApiError(400, f"{path}.PartitionKey: expected a non-empty string")
    label = broker.get("Label", default_id)
    if label is None or label == "":
        label = default_id
    if type(label) is not str:
        raise ApiError(400, f"{path}.Label: expected a string")
    return stream_id, label


def _header_tags(request: Request) -> dict[str, str]:
    tags: dict[str, str] = {}
    for name, value in request.headers.items():
        if name in _NOT_PROPERTIES or name.startswith(_NOT_PROPERTY_PREFIXES):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        tags[name] = f"{tags[name]},{value}" if name in tags else value
    return tags


def events_by_stream(
    items: Any, hub: str, stream_id: str, event_id: str, arrival: int
) -> list[tuple[str, list[dict[str, Any]]]]:
    """A servicebus.json batch -> events grouped by stream, in order; all or nothing."""
    if not isinstance(items, list):
        raise ApiError(400, "Request body: expected a JSON array of {\"Body\": …, \"UserProperties\": {…}}")
    by_stream: dict[str, list[dict[str, Any]]] = {}
    for i, item in enumerate(items):
        path = f"[{i}]"
        if not isinstance(item, dict):
            raise ApiError(400, f"{path}: expected an object with Body")
        if "Body" not in item:
            raise ApiError(400, f"{path}.Body: required")
        body = item["Body"]
        value = body if type(body) is str else codec.dumps(body).decode()
        broker = item.get("BrokerProperties") or {}
        if not isinstance(broker, dict):
            raise ApiError(400, f"{path}.BrokerProperties: expected an object")
        item_stream, item_id = _routing(broker, event_id, f"{path}.BrokerProperties", stream_id)
        event = {"id": item_id, "timestamp": arrival, "value": value, "tags": _user_properties(item.get("UserProperties"), path)}
        by_stream.setdefault(item_stream, []).append(event)
    return list(by_stream.items())


def _user_properties(raw: Any, path: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ApiError(400, f"{path}.UserProperties: expected an object")
    tags: dict[str, str] = {}
    for name, value in raw.items():
        if value is None:
            continue
        if type(value) is str:
            tags[name] = value
        elif type(value) in (int, float, bool):
            tags[name] = codec.dumps(value).decode()
        else:
            raise ApiError(400, f"{path}.UserProperties.{name}: expected a string, number or boolean")
    return tags
