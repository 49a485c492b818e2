"""The Quix Writer and read API over HTTP: a thin adapter over the ingestion service.

Writes answer 200 only once the store has the data (its awaitable resolved). Errors are
`{"error": "…"}` (see errors.py).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..auth import TokenAuth
from ..streams.service import IngestionService
from ..streams.store.base import StoreUnavailable
from ..streams.validation import ValidationError
from . import codec
from .errors import ApiError

DEFAULT_LIMIT = 1000
MAX_LIMIT = 100_000

Handler = Callable[[Request], Awaitable[Response]]


class HttpApi:
    def __init__(self, service: IngestionService, auth: TokenAuth, *, max_body_size: int):
        self.service = service
        self.auth = auth
        self.max_body_size = max_body_size

    @property
    def routes(self) -> list[BaseRoute]:
        s = "/topics/{topic}/streams/{stream_id}"
        g = self._guarded
        return [
            Route("/topics", g(self.list_topics), methods=["GET"]),
            Route("/topics/{topic}/streams", g(self.list_streams), methods=["GET"]),
            Route("/topics/{topic}/streams", g(self.create_stream), methods=["POST"]),
            Route(s, g(self.get_stream), methods=["GET"]),
            Route(s, g(self.update_stream), methods=["PUT"]),
            Route(f"{s}/close", g(self.close_stream), methods=["POST"]),
            Route(f"{s}/events/data", g(self.read_events), methods=["GET"]),
            Route(f"{s}/events/data", g(self.send_events), methods=["POST"]),
            Route(f"{s}/parameters/data", g(self.read_parameter_data), methods=["GET"]),
            Route(f"{s}/parameters/data", g(self.send_parameter_data), methods=["POST"]),
            Route(f"{s}/events", g(self.set_event_definitions), methods=["PUT"]),
            Route(f"{s}/parameters", g(self.set_parameter_definitions), methods=["PUT"]),
        ]

    def _guarded(self, handler: Handler) -> Handler:
        """Auth first, then map domain errors to HTTP once, here."""

        async def guarded(request: Request) -> Response:
            if self.auth(request) is None:
                raise ApiError(401, headers={"WWW-Authenticate": "Bearer"})
            try:
                return await handler(request)
            except ValidationError as exc:
                raise ApiError(400, str(exc)) from None
            except StoreUnavailable as exc:
                raise ApiError(503, f"The store is unavailable, retry later: {exc}", {"Retry-After": "1"}) from None

        guarded.__name__ = handler.__name__
        return guarded

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
        events = await codec.read_json(request, self.max_body_size)
        stored = await self.service.send_events(*_ids(request), events)
        return codec.json_response({"successful_rows": stored, "quarantined_rows": 0})

    async def send_parameter_data(self, request: Request) -> Response:
        data = await codec.read_json(request, self.max_body_size)
        stored = await self.service.send_parameter_data(*_ids(request), data)
        return codec.json_response({"successful_rows": stored, "quarantined_rows": 0})

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
        return codec.json_response([t.to_json() for t in await self.service.list_topics()])

    async def list_streams(self, request: Request) -> Response:
        streams = await self.service.list_streams(request.path_params["topic"])
        return codec.json_response([s.to_json() for s in streams])

    async def get_stream(self, request: Request) -> Response:
        return codec.json_response((await self._stream(request)).to_json())

    async def read_events(self, request: Request) -> Response:
        await self._stream(request)
        page = await self._read(self.service.read_events, request)
        return codec.json_response([e.to_json() for e in page.items], _cursor(page.next_cursor))

    async def read_parameter_data(self, request: Request) -> Response:
        await self._stream(request)
        page = await self._read(self.service.read_parameter_data, request)
        data = page.items[0].to_json() if page.items else _EMPTY_PARAMETERS
        return codec.json_response(data, _cursor(page.next_cursor))

    async def _stream(self, request: Request):
        topic, stream_id = _ids(request)
        info = await self.service.get_stream(topic, stream_id)
        if info is None:
            raise ApiError(404, f"No stream '{stream_id}' in topic '{topic}'.")
        return info

    async def _read(self, read: Callable[..., Awaitable[Any]], request: Request) -> Any:
        q = request.query_params
        limit = _int_query(request, "limit")
        if limit is None:
            limit = DEFAULT_LIMIT
        elif limit < 1:
            raise ApiError(400, f"limit: expected a positive integer, got {q['limit']}")
        try:
            return await read(
                *_ids(request),
                from_ts=_int_query(request, "from"),
                to_ts=_int_query(request, "to"),
                limit=min(limit, MAX_LIMIT),
                after=q.get("after") or None,
            )
        except ValueError as exc:
            if isinstance(exc, ValidationError):
                raise
            raise ApiError(400, f"after: {exc}") from None


_EMPTY_PARAMETERS = {"timestamps": [], "numericValues": {}, "stringValues": {}, "binaryValues": {}, "tagValues": {}}


def _ids(request: Request) -> tuple[str, str]:
    return request.path_params["topic"], request.path_params["stream_id"]


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
