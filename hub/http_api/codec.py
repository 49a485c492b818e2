"""Request bodies in, JSON out: size limits, content encodings, content types, JSON and NDJSON.

The limit (`--max-body-size`) holds twice: on the bytes received (a Content-Length above it is
refused before a byte of the body is read) and on the bytes after decompression, counted while
decompressing, so a gzip bomb is stopped at the limit instead of filling memory. GzipDecoder is
sans-I/O (bytes in, bytes out), tested with plain bytes; read_body is the thin async pump.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..signalr.protocols.json import BELOW_INT64, StdlibJson
from ..streams.lenient import LenientRows
from .errors import ApiError


# The SignalR JSON protocol's strict reader serves HTTP bodies too: the standard module, as strict as
# orjson (no NaN, no infinity, no BOM, no lone surrogate), with integers of any size kept exact.
exact_loads = StdlibJson().loads
dumps = orjson.dumps
JSONDecodeError = orjson.JSONDecodeError


def loads(data: bytes) -> Any:
    """orjson, several times faster than the standard module on large event lists; a body holding
    an integer below int64 is read exactly, so that -2^63 - 1 stays outside int64 (and is refused)."""
    if BELOW_INT64 in data:
        return exact_loads(data)
    return orjson.loads(data)


_MISSING = object()

JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines")
GZIP = "gzip"
_GZIP_NAMES = ("gzip", "x-gzip")
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer around deflate


def json_response(value: Any, headers: dict[str, str] | None = None, status: int = 200) -> Response:
    return Response(dumps(value), status_code=status, media_type="application/json", headers=headers)


# --- headers ---------------------------------------------------------------------------------------


def media_type(request: Request) -> str:
    """The Content-Type without parameters, lower-cased; "" when absent."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def is_json(media: str) -> bool:
    return media in JSON_TYPES or media.endswith("+json")


def is_ndjson(media: str) -> bool:
    return media in NDJSON_TYPES


def content_encoding(request: Request) -> str | None:
    """"gzip" or None (identity). Anything else is a 415 naming what is supported."""
    header = request.headers.get("content-encoding")
    if header is None:
        return None
    codings = [c.strip().lower() for c in header.split(",") if c.strip() and c.strip().lower() != "identity"]
    if not codings:
        return None
    if len(codings) == 1 and codings[0] in _GZIP_NAMES:
        return GZIP
    raise ApiError(415, f"Content-Encoding {header!r} is not supported; send gzip or no Content-Encoding.")


def declared_length(request: Request, limit: int) -> int | None:
    """Content-Length, refused with 413 when above `limit` (before any of the body is read)."""
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    if not declared.strip().isdigit():
        raise ApiError(400, f"Content-Length: not a number: {declared!r}")
    size = int(declared)
    if size > limit:
        raise too_large(f"Request body is {size} bytes; the limit is {limit} bytes.")
    return size


def too_large(message: str) -> ApiError:
    # Connection: close, so the server does not go on receiving (and discarding) the rest.
    return ApiError(413, message, {"Connection": "close"})


# --- decompression -------------------------------------------------------------------------------


class GzipDecoder:
    """Incremental gzip decompression that never produces more than `limit` bytes in total.

    feed() each received chunk and use what it returns; finish() once the body has ended. Output is
    asked of zlib with max_length, so a bomb costs at most `limit` bytes of memory before the 413.
    Concatenated gzip members (what `cat a.gz b.gz` makes) decode as one body, as gzip(1) does.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.size = 0  # bytes produced so far
        self._zlib = zlib.decompressobj(_GZIP_WBITS)
        self._member_started = False

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        while data:
            self._member_started = True
            try:
                piece = self._zlib.decompress(data, self.limit - self.size + 1)
            except zlib.error as exc:
                raise ApiError(400, f"Request body is not valid gzip: {exc}") from None
            self._count(piece)
            out.append(piece)
            if self._zlib.eof:  # a member ended: what follows is the next member (or nothing)
                data = self._zlib.unused_data
                self._zlib = zlib.decompressobj(_GZIP_WBITS)
                self._member_started = False
            else:
                data = self._zlib.unconsumed_tail
        return b"".join(out)

    def finish(self) -> bytes:
        if not self._member_started:
            return b""
        try:
            rest = self._zlib.flush()
        except zlib.error as exc:  # pragma: no cover - flush reports errors decompress already did
            raise ApiError(400, f"Request body is not valid gzip: {exc}") from None
        self._count(rest)
        if not self._zlib.eof:
            raise ApiError(400, "Request body is not valid gzip: it ends before the gzip stream does (truncated).")
        return rest

    def _count(self, piece: bytes) -> None:
        self.size += len(piece)
        if self.size > self.limit:
            raise too_large(f"Request body is over the limit of {self.limit} bytes once decompressed.")


# --- reading -------------------------------------------------------------------------------------


async def read_body(request: Request, limit: int) -> bytes:
    """The body, decompressed, refused with 413 as soon as it is known to pass `limit` on the wire
    or decompressed, 415 for an unsupported Content-Encoding, 400 for broken gzip. Read once a
    request: a layer around the endpoint (idempotency.py) and the endpoint get the same bytes."""
    decoded = getattr(request.state, "decoded_body", None)
    if decoded is not None:
        return decoded
    encoding = content_encoding(request)
    declared_length(request, limit)
    decoder = GzipDecoder(limit) if encoding == GZIP else None
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        if not chunk:
            continue
        received += len(chunk)
        if received > limit:
            raise too_large(f"Request body is over the limit of {limit} bytes.")
        chunks.append(decoder.feed(chunk) if decoder is not None else chunk)
    if decoder is not None:
        chunks.append(decoder.finish())
    body = request.state.decoded_body = b"".join(chunks)
    return body


def check_json_type(request: Request, *, ndjson: bool = False) -> str:
    """The media type when it is JSON (or, with `ndjson`, NDJSON); 415 otherwise. An absent
    Content-Type is left to the caller (an empty body may not need one)."""
    media = media_type(request)
    if media and not (is_json(media) or (ndjson and is_ndjson(media))):
        wanted = "application/json or application/x-ndjson" if ndjson else "application/json"
        raise ApiError(415, f"Content-Type must be {wanted}, got {media!r}.")
    return media


async def read_json(request: Request, limit: int, empty: Any = _MISSING) -> Any:
    """A JSON body. `empty` is what an empty body means (when allowed); otherwise it is a 400."""
    media = check_json_type(request)
    body = await read_body(request, limit)
    if not body.strip():
        if empty is _MISSING:
            raise ApiError(400, "Request body is empty; expected JSON.")
        return empty
    if not media:
        raise ApiError(415, "Content-Type must be application/json, got none.")
    return parse_json(body)


# --- parsing -------------------------------------------------------------------------------------


def json_problem(data: bytes, exc: Exception) -> str:
    """Why `data` is not JSON, precisely: the first bad UTF-8 byte, or the parser's position."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"not valid UTF-8: {bad.reason} at byte {bad.start}"
    return f"not valid JSON: {exc}"


def parse_json(body: bytes) -> Any:
    try:
        return loads(body)
    except (JSONDecodeError, ValueError) as exc:
        raise ApiError(400, f"Request body is {json_problem(body, exc)}") from None


def ndjson_rows(body: bytes) -> LenientRows:
    """One row a non-blank line (numbered from 1, blank lines counted): its decoded value, or why it
    is not JSON. Never raises for a bad line: the caller quarantines it.

    The usual body (every line JSON) costs one decode a line and nothing else; a line's number and
    text are worked out only for a row that is quarantined. Any line that does not decode sends the
    whole body down the line-by-line path, which says why for each."""
    lines = body.split(b"\n")
    try:
        values = [loads(line) for line in lines if line]  # JSON whitespace (\r, spaces) is loads' to skip
    except (JSONDecodeError, ValueError):
        return ndjson_rows_line_by_line(lines)
    blank = len(lines) - len(values)
    if blank == 0 or (blank == 1 and not lines[-1]):  # row i is line i + 1
        return LenientRows(values, {}, _next_line, lambda i: _text(lines[i]))
    kept = [index for index, line in enumerate(lines) if line]
    return LenientRows(values, {}, lambda i: kept[i] + 1, lambda i: _text(lines[kept[i]]))


def ndjson_rows_line_by_line(lines: list[bytes]) -> LenientRows:
    """ndjson_rows read one line at a time, each bad line with why: what ndjson_rows falls back to
    when a line does not decode, and what it must agree with (tests/http/test_http_codec.py)."""
    values: list[Any] = []
    errors: dict[int, str] = {}
    kept: list[int] = []  # the index in `lines` of each row
    for index, line in enumerate(lines):
        text = line.strip()
        if not text:
            continue
        try:
            value = loads(text)
        except (JSONDecodeError, ValueError) as exc:
            errors[len(values)] = json_problem(text, exc).replace("line 1 column", "column")
            value = None
        values.append(value)
        kept.append(index)
    return LenientRows(values, errors, lambda i: kept[i] + 1, lambda i: _text(lines[kept[i]]))


def _next_line(index: int) -> int:
    return index + 1


def _text(line: bytes) -> str:
    """A row's text as sent: the line without surrounding whitespace, invalid UTF-8 replaced."""
    return line.strip().decode("utf-8", "replace")
