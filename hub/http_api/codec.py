"""Request bodies in, JSON out: size limits, content types, fast JSON."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .errors import ApiError

try:  # orjson: several times faster than the standard library on large event lists
    import orjson

    def dumps(value: Any) -> bytes:
        return orjson.dumps(value)

    def loads(data: bytes) -> Any:
        return orjson.loads(data)

    JSONDecodeError: type[Exception] = orjson.JSONDecodeError
except ImportError:  # pragma: no cover - exercised when orjson is absent
    import json

    def dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()

    def loads(data: bytes) -> Any:
        return json.loads(data)

    JSONDecodeError = ValueError

_MISSING = object()


def json_response(value: Any, headers: dict[str, str] | None = None, status: int = 200) -> Response:
    return Response(dumps(value), status_code=status, media_type="application/json", headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to pass `limit` (Content-Length first, then
    counting), so a huge upload is never held in memory."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, f"Content-Length: not a number: {declared!r}") from None
        if size > limit:
            raise ApiError(413, f"Request body is {size} bytes; the limit is {limit} bytes.")
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise ApiError(413, f"Request body is over the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


async def read_json(request: Request, limit: int, empty: Any = _MISSING) -> Any:
    """A JSON body. `empty` is what an empty body means (when allowed); otherwise it is a 400."""
    body = await read_body(request, limit)
    if not body.strip():
        if empty is _MISSING:
            raise ApiError(400, "Request body is empty; expected JSON.")
        return empty
    content_type = request.headers.get("content-type", "")
    if not is_json(content_type):
        raise ApiError(415, f"Content-Type must be application/json, got {content_type or 'none'!r}.")
    try:
        return loads(body)
    except (JSONDecodeError, ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"Request body is not valid JSON: {exc}") from None
