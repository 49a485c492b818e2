"""HTTP errors: raised where bad input enters, mapped once to `{"error": "…"}` with a status."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

_DEFAULT_TEXT = {
    400: "Bad request.",
    401: "Unauthorized: a valid token is required (Authorization: Bearer <token> or ?access_token=<token>).",
    403: "Forbidden: a valid token is required (Authorization: Bearer <token> or ?token=<token>).",
    404: "Not found.",
    405: "Method not allowed.",
    413: "Request body too large.",
    415: "Unsupported media type.",
    429: "Too many requests.",
    503: "Service unavailable, retry later.",
}


class ApiError(Exception):
    def __init__(self, status: int, message: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message or _DEFAULT_TEXT.get(status, "Error."))
        self.status = status
        self.headers = headers or {}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, str(exc), exc.headers)


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    text = _DEFAULT_TEXT.get(exc.status_code) or exc.detail
    if exc.status_code == 405:
        text = f"Method {request.method} is not allowed on {request.url.path}."
    elif exc.status_code == 404:
        text = f"No route {request.url.path}."
    return error_response(exc.status_code, text, dict(exc.headers or {}))


async def _client_disconnect(request: Request, exc: Exception) -> Response:
    # The client left before its request body was read: its mistake (or its network's), not the
    # server's, so no traceback at ERROR. Nobody is there to read this answer, and nothing was stored.
    return Response(status_code=400)


HANDLERS = {ApiError: _api_error, HTTPException: _http_exception, ClientDisconnect: _client_disconnect}
